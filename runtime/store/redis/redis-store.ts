/**
 * `RedisStore`: the {@link Store} for several hosts, on one Redis server (6.2 or later) through ioredis.
 *
 * Every call is one command or one Lua script (`./scripts.ts`), so it is atomic on the server
 * whatever other agents do. Key layout under the namespace `prefix` (default `kiln:`):
 * - `<prefix>k:<key>`            keys and lists (one namespace, as the interface settles)
 * - `<prefix>q:<queue>:<part>`   a work queue (parts and scripts: see `./scripts.ts`)
 * - `<prefix>l:<name>`           locks, valued `<token>:<owner>`
 * - `<prefix>seq`                fences and lock tokens (one counter, strictly increasing)
 * - `<prefix>due`                queues with delays or leases, by their earliest deadline
 * - `<prefix>h:<hash>:<part>`    a hash (dict): values, deadlines, fixed TTLs (see `./scripts.ts`)
 * - `<prefix>p:<group>\0<part>`  one list per partition of a group (queue), `<prefix>pi:<group>` its index
 * - channels `<prefix>c:<channel>` (publish/subscribe) and `<prefix>wake` (queue wake-ups)
 *
 * Connections: one for commands; one subscriber, shared by every `subscribe` and by the wake
 * channel, fanning out in process; and a small pool for blocking list pops (BLMPOP / BLPOP), one
 * per waiting `listPop`, unblocked with CLIENT UNBLOCK on abort or close.
 *
 * Blocked claims hold no connection: a waiter is woken by a wake-up message for one of its
 * queues (an enqueue, release or lapse that made the queue's ready list non-empty, in any agent)
 * and then runs the claim script. Waiters of one agent are served in arrival order. As a bound
 * against missed messages (a subscriber reconnecting), a waiter also re-checks after at most
 * `sweepMs`, and exactly when the earliest delay or lease among its queues ends.
 *
 * Lapsed leases and ended delays are recovered by every script that touches the queue (claim,
 * enqueue, stats, ...) and by a periodic sweep in each agent, driven by the `due` index, so other
 * agents' waiters hear of them within `sweepMs`.
 *
 * Redis unreachable: calls fail at once with `UnavailableError` naming the URL (no offline queue;
 * a command in flight when the connection drops fails too, and may or may not have been applied;
 * a command with no reply within `commandTimeoutMs` fails as well). The connections reconnect
 * with capped exponential backoff, and the subscriber re-subscribes.
 *
 * Not promised, beyond the interface: deadlines use the Redis server's clock (`TIME`), so the
 * `clock` option only drives local timers (waits, re-checks, the sweep). Delayed items that end at
 * the same millisecond become claimable in id order, not enqueue order. `remove` of a pending
 * item is O(pending) (LREM). Redis Cluster is not supported (scripts span a queue's keys and the
 * global counter).
 */
import { Redis, type RedisOptions } from "ioredis";
import { systemClock, type Clock, type Timer } from "../../clock.js";
import {
  InternalError,
  InvalidError,
  UnavailableError,
  isKilnError,
  messageOf,
  type KilnError,
} from "../../errors.js";
import type {
  Claim,
  ClaimOptions,
  ClaimRef,
  Effects,
  SettleResult,
  EnqueueManyResult,
  EnqueueOptions,
  EnqueueResult,
  HashReadOptions,
  HashScanPage,
  HashSetOptions,
  HashSetResult,
  IncrOptions,
  ListPopOptions,
  PartitionPushOptions,
  PartitionPushResult,
  PartitionStats,
  QueueStats,
  ReleaseOptions,
  SetOptions,
  Store,
  Unsubscribe,
  WorkItem,
} from "../store.js";
import {
  addTo,
  atLeastOne,
  atLeastZero,
  checkEffects,
  nonNegative,
  positive,
  removeFrom,
  waitOptions,
} from "../checks.js";
import { KeyLayout } from "./keys.js";
import * as lua from "./scripts.js";
import type { ClaimInfo } from "./scripts.js";

export type { ClaimInfo } from "./scripts.js";

export interface RedisStoreOptions {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://`). */
  url: string;
  /** Namespace of every key and channel. Default `kiln:`. */
  prefix?: string;
  /** Local timers (waits, re-checks, the sweep). Deadlines themselves use the server's clock. */
  clock?: Clock;
  /** A command without a reply after this many ms fails with UnavailableError. Default 5000. */
  commandTimeoutMs?: number;
  /** Give up a connection attempt after this many ms. Default 5000. */
  connectTimeoutMs?: number;
  /** Longest wait between sweeps for lapsed leases and ended delays, and between a waiter's re-checks. Default 1000. */
  sweepMs?: number;
  /** Called when a subscriber's listener throws (the publisher is not affected). Default: ignored. */
  onListenerError?: (error: unknown) => void;
}

const DEFAULT_PREFIX = "kiln:";
const DEFAULT_COMMAND_TIMEOUT_MS = 5000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
const DEFAULT_SWEEP_MS = 1000;
/** How often a hand-over whose reply was lost asks whether it ran, while the server does not answer. */
const HAND_OVER_RECHECK_MS = 200;
/** Idle blocking connections kept for the next blocking pop. */
const MAX_IDLE_BLOCKING = 4;
/** How long `close` waits for blocked pops to unblock and connections to quit. */
const CLOSE_GRACE_MS = 1000;

/** Reply-error codes that mean "the server cannot serve now", not "the request is wrong". */
const TRANSIENT_CODES = new Set([
  "LOADING",
  "BUSY",
  "MASTERDOWN",
  "READONLY",
  "TRYAGAIN",
  "CLUSTERDOWN",
  "NOREPLICAS",
  "OOM",
  "NOAUTH",
]);

/** Queues handled per sweep pass. */
const SWEEP_LIMIT = 100;

interface ClaimWaiter {
  readonly queues: readonly string[];
  readonly owner: string;
  readonly leaseMs: number;
  readonly max: number;
  /** Whether it takes an item before the store recorded its claim, now (ClaimOptions.eager). */
  readonly eager: (() => boolean) | undefined;
  /** waiting; stopping: asked to end while a claim attempt is in flight (its result is returned). */
  state: "waiting" | "stopping" | "done";
  /** The claim attempt in flight; resolves true when it claimed something. */
  running: Promise<boolean> | null;
  /** Another attempt was asked for while one was in flight (a wake-up arrived meanwhile). */
  rerun: boolean;
  deadline: Timer | null;
  recheck: Timer | null;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
  resolve(claims: Claim[]): void;
  reject(error: unknown): void;
}

interface PopWaiter {
  readonly conn: Redis;
  /** CLIENT ID of `conn`, asked for right before the blocking pop. */
  readonly clientId: Promise<number>;
  settled: boolean;
  unblocking: boolean;
}

interface Channel {
  readonly listeners: Set<(message: string) => void>;
  subscribed: boolean;
  /** SUBSCRIBE / UNSUBSCRIBE of this channel run one after the other. */
  chain: Promise<void>;
}

interface ClaimAttempt {
  claims: Claim[];
  /** ms until the earliest delay or lease among the queues ends; -1 when none. */
  dueInMs: number;
  /** No ready item was left in any of the queues when the attempt ran. */
  drained: boolean;
}

/**
 * A set of queues a claim attempt left with no ready item: until a wake-up for one of them is
 * heard (or the subscriber reconnects, or `dueAt` passes), a claimer may wait without asking.
 */
interface Drained {
  /** {@link RedisStore.wakeMark} when the attempt was sent. */
  mark: string;
  /** clock.now() when the earliest delay or lease among them ends; Infinity when none. */
  dueAt: number;
}

export class RedisStore implements Store {
  readonly kind = "redis";

  private readonly url: string;
  private readonly ns: string;
  private readonly clock: Clock;
  private readonly commandTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly sweepMs: number;
  private readonly onListenerError: (error: unknown) => void;
  private readonly layout: KeyLayout;

  private cmd!: Redis;
  private sub!: Redis;
  /** The last connection error ioredis reported (ECONNREFUSED ...), for messages. */
  private lastConnectionError: string | null = null;
  /** Redis >= 7: BLMPOP pops up to `max` atomically; older servers BLPOP one, then LPOP the rest. */
  private hasBlmpop = false;
  private closed = false;

  private readonly idleBlocking: Redis[] = [];
  private readonly popWaiters = new Set<PopWaiter>();
  private readonly claimWaiters = new Map<string, Set<ClaimWaiter>>();
  /** Wake-ups heard per queue; `wakeEpoch` moves for every queue when the subscriber reconnects. */
  private readonly wakesHeard = new Map<string, number>();
  private wakeEpoch = 0;
  /** By {@link queueSetKey}: queue sets the last claim attempt on them left with nothing ready. */
  private readonly drained = new Map<string, Drained>();
  /** Queues with a wake-up round in progress, and those that got another wake-up meanwhile. */
  private readonly rounds = new Set<string>();
  private readonly roundAgain = new Set<string>();
  private readonly channels = new Map<string, Channel>();

  private sweepTimer: Timer | null = null;
  private sweepAt = Infinity;
  private sweeping: Promise<void> | null = null;
  private sweepAgain = false;

  private constructor(options: RedisStoreOptions) {
    this.url = options.url;
    this.ns = options.prefix ?? DEFAULT_PREFIX;
    this.clock = options.clock ?? systemClock;
    this.commandTimeoutMs = positive(
      "commandTimeoutMs",
      options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    );
    this.connectTimeoutMs = positive(
      "connectTimeoutMs",
      options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    );
    this.sweepMs = positive("sweepMs", options.sweepMs ?? DEFAULT_SWEEP_MS);
    this.onListenerError = options.onListenerError ?? (() => {});
    this.layout = new KeyLayout(this.ns);
  }

  /** Connect (failing with UnavailableError when the server cannot be reached) and start the sweep. */
  static async open(options: RedisStoreOptions): Promise<RedisStore> {
    if (typeof options.url !== "string" || options.url.length === 0)
      throw new InvalidError("redis store: url is required");
    const store = new RedisStore(options);
    try {
      await store.connect();
    } catch (error) {
      const failure = store.fail(error);
      store.closed = true;
      store.cmd?.disconnect();
      store.sub?.disconnect();
      throw failure;
    }
    store.scheduleSweep(0);
    return store;
  }

  // ---- keys -------------------------------------------------------------------------------

  async get(key: string): Promise<string | null> {
    this.check();
    return this.exec(() => this.cmd.get(this.layout.key(key)));
  }

  async getMany(keys: readonly string[]): Promise<(string | null)[]> {
    this.check();
    if (keys.length === 0) return [];
    return this.run(lua.GET_MANY, { keys });
  }

  async set(key: string, value: string, options: SetOptions = {}): Promise<boolean> {
    this.check();
    const ttlMs = options.ttlMs === undefined ? undefined : positiveInt("ttlMs", options.ttlMs);
    const k = this.layout.key(key);
    const reply = await this.exec(() => {
      if (ttlMs !== undefined && options.ifAbsent) return this.cmd.set(k, value, "PX", ttlMs, "NX");
      if (ttlMs !== undefined) return this.cmd.set(k, value, "PX", ttlMs);
      if (options.ifAbsent) return this.cmd.set(k, value, "NX");
      return this.cmd.set(k, value);
    });
    return reply === "OK";
  }

  async delete(key: string): Promise<boolean> {
    this.check();
    return (await this.exec(() => this.cmd.del(this.layout.key(key)))) > 0;
  }

  async keys(prefix: string): Promise<string[]> {
    this.check();
    const base = this.layout.keyPrefix;
    const match = `${escapeGlob(base + prefix)}*`;
    const found = new Set<string>();
    let cursor = "0";
    do {
      const [next, batch] = await this.exec(() =>
        this.cmd.scan(cursor, "MATCH", match, "COUNT", 1000),
      );
      for (const key of batch) found.add(key.slice(base.length));
      cursor = next;
    } while (cursor !== "0");
    return [...found].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  async ttl(key: string): Promise<number | null> {
    this.check();
    const ms = await this.exec(() => this.cmd.pttl(this.layout.key(key)));
    return ms < 0 ? null : ms;
  }

  // ---- counters ---------------------------------------------------------------------------

  async incr(key: string, by: number, options: IncrOptions = {}): Promise<number | null> {
    this.check();
    if (!Number.isSafeInteger(by)) throw new InvalidError(`incr: by must be an integer, got ${by}`);
    const bound = (name: string, value: number | undefined): number | undefined => {
      if (value !== undefined && !Number.isFinite(value))
        throw new InvalidError(`incr: ${name} must be a finite number, got ${value}`);
      return value;
    };
    return this.run(lua.INCR, {
      key,
      by,
      max: bound("max", options.max),
      min: bound("min", options.min),
    });
  }

  // ---- work queues ------------------------------------------------------------------------

  async enqueue(
    queue: string,
    item: WorkItem,
    options: EnqueueOptions = {},
  ): Promise<EnqueueResult> {
    const { refused } = await this.enqueueMany(queue, [item], options);
    return refused ? { ok: false, ...refused } : { ok: true };
  }

  async enqueueMany(
    queue: string,
    items: readonly WorkItem[],
    options: EnqueueOptions = {},
  ): Promise<EnqueueManyResult> {
    this.check();
    const delayMs = nonNegativeInt("delayMs", options.delayMs ?? 0);
    const cap = (name: string, value: number | undefined): number | undefined => {
      if (value !== undefined && !Number.isFinite(value))
        throw new InvalidError(`${name} must be a finite number, got ${value}`);
      return value;
    };
    const maxPending = cap("maxPending", options.maxPending);
    const maxTotal = cap("maxTotal", options.maxTotal);
    if (items.length === 0) return { accepted: 0 };
    const records = options.records ?? [];
    const eager =
      options.eager && delayMs === 0 && items.length === 1 ? this.eagerWaiter(queue) : null;
    if (eager) return this.handOver(eager, queue, items[0]!, records);
    // A claimer of this store waiting on the queue, and not mid-attempt: enqueue and claim for it
    // in one script (poke runs the first attempt synchronously up to its first await).
    const waiter = delayMs === 0 ? this.idleWaiter(queue) : null;
    if (waiter) {
      let enqueued: EnqueueManyResult | null = null;
      let failure: unknown = null;
      await this.poke(waiter, async () => {
        try {
          return await this.attempt(waiter.queues, async () => {
            const reply = await this.run(lua.ENQUEUE_CLAIM, {
              queue,
              items,
              records,
              maxPending,
              maxTotal,
              claimer: waiter,
            });
            enqueued = reply.enqueued;
            return reply.claimed;
          });
        } catch (error) {
          failure = error;
          throw error;
        }
      });
      if (failure !== null) throw this.fail(failure);
      if (enqueued !== null) return enqueued;
    }
    const result = await this.run(lua.ENQUEUE, {
      queue,
      items,
      delayMs,
      maxPending,
      maxTotal,
      records,
    });
    if (result.accepted > 0 && delayMs > 0) this.scheduleSweep(delayMs);
    return result;
  }

  /**
   * An eager claimer of this store idle on `queue`, when the queue is known to hold nothing ready
   * (its last attempt drained it and no wake-up came since), so the item jumps no one. Only while
   * both connections are up: the command one, or the recording step is doomed from the start; the
   * subscriber, or wake-ups for items queued elsewhere go unheard.
   */
  private eagerWaiter(queue: string): ClaimWaiter | null {
    if (this.cmd.status !== "ready" || this.sub.status !== "ready") return null;
    const waiter = this.idleWaiter(queue);
    return waiter?.eager?.() && this.stillDrained(waiter.queues) !== null ? waiter : null;
  }

  /**
   * Hand `item` to `waiter` now and record it as claimed by it in the same step as its enqueue
   * (ENQUEUE_TAKE, sent before the waiter's owner gets the claim): the work and the round trip
   * overlap. See Claim.recorded.
   */
  private async handOver(
    waiter: ClaimWaiter,
    queue: string,
    item: WorkItem,
    records: readonly lua.EnqueueRecord[],
  ): Promise<EnqueueManyResult> {
    const claim: Claim = { queue, id: item.id, payload: item.payload, fence: 0, deliveries: 0 };
    const taken = this.run(lua.ENQUEUE_TAKE, {
      queue,
      item,
      owner: waiter.owner,
      leaseMs: waiter.leaseMs,
      records,
    });
    claim.recorded = taken
      .then(
        (reply) => {
          if (!reply.taken)
            throw new InternalError(`input ${item.id} is already queued; the queued copy runs`);
          return reply.fence;
        },
        (error: unknown) => this.handedOver(queue, item.id, waiter.owner, waiter.leaseMs, error),
      )
      .then((fence) => {
        claim.fence = fence;
        delete claim.recorded;
      });
    claim.recorded.catch(() => {});
    this.settleClaimWaiter(waiter, [claim]);
    await taken;
    // An id already queued counts as accepted, as ENQUEUE counts it.
    return { accepted: 1 };
  }

  /**
   * The reply to a hand-over's ENQUEUE_TAKE never came (command timeout, dropped connection), so
   * whether it ran is unknown. Ask (HANDED_OVER) once the server answers, for up to half the lease
   * (nobody renews the claim meanwhile): when it did run, its fence, so the run that already
   * happened is settled rather than repeated once the claim lapses. Throws `error` when it did not
   * run, or when that cannot be found out in time.
   */
  private async handedOver(
    queue: string,
    id: string,
    owner: string,
    leaseMs: number,
    error: unknown,
  ): Promise<number> {
    if (!(error instanceof UnavailableError)) throw error;
    // Real time, as the pauses between asks: the lease runs on the server whatever `clock` says.
    const deadline = performance.now() + leaseMs / 2;
    while (!this.closed && performance.now() < deadline) {
      try {
        const reply = await this.run(lua.HANDED_OVER, { queue, id, owner });
        if (reply.ran) return reply.fence;
        break;
      } catch (retry) {
        if (!(retry instanceof UnavailableError)) break;
      }
      await sleep(HAND_OVER_RECHECK_MS);
    }
    throw error;
  }

  /** This store's first claimer waiting on `queue` with no attempt in flight. */
  private idleWaiter(queue: string): ClaimWaiter | null {
    for (const waiter of this.claimWaiters.get(queue) ?? []) {
      if (waiter.state === "waiting" && waiter.running === null) return waiter;
    }
    return null;
  }

  async claim(queues: readonly string[], options: ClaimOptions): Promise<Claim[]> {
    this.check();
    const leaseMs = positiveInt("leaseMs", options.leaseMs);
    const { max, waitMs, signal } = waitOptions(options);
    if (signal?.aborted) return [];
    if (waitMs === 0) return (await this.claimNow(queues, options.owner, leaseMs, max)).claims;
    return new Promise<Claim[]>((resolve, reject) => {
      const waiter: ClaimWaiter = {
        queues,
        owner: options.owner,
        leaseMs,
        max,
        eager: options.eager,
        state: "waiting",
        running: null,
        rerun: false,
        deadline: null,
        recheck: null,
        signal,
        onAbort: () => this.stopClaimWaiter(waiter),
        resolve,
        reject,
      };
      // Registered before the first attempt, so a wake-up that races it is not missed.
      for (const queue of queues) addTo(this.claimWaiters, queue, waiter);
      waiter.deadline = this.clock.setTimeout(() => this.stopClaimWaiter(waiter), waitMs);
      signal?.addEventListener("abort", waiter.onAbort, { once: true });
      // The last attempt on these queues left nothing ready and no wake-up came since: nothing to
      // ask for until one comes (or the re-check). A waiting agent's next call is then an
      // enqueue-and-claim, not a claim that finds nothing first.
      const dueInMs = this.stillDrained(queues);
      if (dueInMs === null) void this.poke(waiter);
      else this.armRecheck(waiter, dueInMs);
    });
  }

  async renew(claims: readonly ClaimRef[], leaseMs: number): Promise<boolean[]> {
    this.check();
    positiveInt("leaseMs", leaseMs);
    if (claims.length === 0) return [];
    return this.run(lua.RENEW, { claims, leaseMs });
  }

  async complete(claim: ClaimRef): Promise<boolean> {
    this.check();
    return this.run(lua.COMPLETE, { claim });
  }

  async settle(claim: ClaimRef, effects: Effects): Promise<SettleResult> {
    const [result] = await this.settleMany([{ claim, effects }]);
    return result!;
  }

  async settleMany(
    entries: readonly { claim: ClaimRef; effects: Effects }[],
  ): Promise<SettleResult[]> {
    this.check();
    if (entries.length === 0) return [];
    return this.run(lua.SETTLE, { entries });
  }

  async release(claim: ClaimRef, options: ReleaseOptions = {}): Promise<boolean> {
    this.check();
    const delayMs = nonNegativeInt("delayMs", options.delayMs ?? 0);
    const released = await this.run(lua.RELEASE, {
      claim,
      delayMs,
      front: options.front ?? true,
      payload: options.payload,
    });
    if (released && delayMs > 0) this.scheduleSweep(delayMs);
    return released;
  }

  async remove(queue: string, id: string): Promise<"pending" | "claimed" | null> {
    this.check();
    return this.run(lua.REMOVE, { queue, id });
  }

  async stats(queue: string): Promise<QueueStats> {
    this.check();
    return this.run(lua.STATS, { queue });
  }

  async dropQueue(queue: string): Promise<number> {
    this.check();
    return this.run(lua.DROP_QUEUE, { queue });
  }

  /**
   * Redis only: every claim held on `queue`, with its owner, fence and time left on its lease, by
   * deadline. For status and stalled-work sweeps across agents; not part of the Store interface.
   */
  async listClaims(queue: string): Promise<ClaimInfo[]> {
    this.check();
    return this.run(lua.LIST_CLAIMS, { queue });
  }

  // ---- lists ------------------------------------------------------------------------------

  async listPush(
    key: string,
    values: readonly string[],
    options: { ttlMs?: number } = {},
  ): Promise<number> {
    this.check();
    const ttlMs = options.ttlMs === undefined ? undefined : positiveInt("ttlMs", options.ttlMs);
    return this.run(lua.LIST_PUSH, { key, values, ttlMs });
  }

  async listPop(key: string, options: ListPopOptions = {}): Promise<string[]> {
    this.check();
    const { max, waitMs, signal } = waitOptions(options);
    if (signal?.aborted) return [];
    const k = this.layout.key(key);
    const values = await this.exec(() => this.cmd.lpop(k, max));
    if ((values && values.length > 0) || waitMs === 0) return values ?? [];
    return this.blockingPop(k, max, waitMs, signal);
  }

  async listLength(key: string): Promise<number> {
    this.check();
    return this.exec(() => this.cmd.llen(this.layout.key(key)));
  }

  // ---- hashes -----------------------------------------------------------------------------

  async hashGet(
    hash: string,
    field: string,
    options: HashReadOptions = {},
  ): Promise<string | null> {
    this.check();
    const idleMs = options.idleMs === undefined ? undefined : positiveInt("idleMs", options.idleMs);
    return this.run(lua.HASH_GET, { hash, field, idleMs });
  }

  async hashSet(
    hash: string,
    entries: readonly (readonly [string, string])[],
    options: HashSetOptions = {},
  ): Promise<HashSetResult> {
    this.check();
    const ttlMs = options.ttlMs === undefined ? undefined : positiveInt("ttlMs", options.ttlMs);
    const idleMs = options.idleMs === undefined ? undefined : positiveInt("idleMs", options.idleMs);
    const maxFields =
      options.maxFields === undefined ? undefined : atLeastZero("maxFields", options.maxFields);
    return this.run(lua.HASH_SET, {
      hash,
      entries,
      ifAbsent: options.ifAbsent ?? false,
      ttlMs,
      idleMs,
      maxFields,
    });
  }

  async hashDelete(hash: string, field: string): Promise<string | null> {
    this.check();
    return this.run(lua.HASH_DELETE, { hash, field });
  }

  async hashLength(hash: string): Promise<number> {
    this.check();
    return this.run(lua.HASH_LENGTH, { hash });
  }

  async hashScan(hash: string, cursor: string, count: number): Promise<HashScanPage> {
    this.check();
    if (!/^\d+$/.test(cursor))
      throw new InvalidError(
        `hashScan: cursor must be one returned by a previous page (or "0"), got ${JSON.stringify(cursor)}`,
      );
    return this.run(lua.HASH_SCAN, { hash, cursor, count: atLeastOne("count", count) });
  }

  async hashDrop(hash: string): Promise<number> {
    this.check();
    return this.run(lua.HASH_DROP, { hash });
  }

  // ---- partitioned lists ------------------------------------------------------------------

  async partitionPush(
    group: string,
    partition: string,
    values: readonly string[],
    options: PartitionPushOptions = {},
  ): Promise<PartitionPushResult> {
    this.check();
    const ttlMs = options.ttlMs === undefined ? undefined : positiveInt("ttlMs", options.ttlMs);
    const maxLength =
      options.maxLength === undefined ? undefined : atLeastZero("maxLength", options.maxLength);
    const maxPartitions =
      options.maxPartitions === undefined
        ? undefined
        : atLeastZero("maxPartitions", options.maxPartitions);
    return this.run(lua.PARTITION_PUSH, {
      group,
      partition,
      values,
      ttlMs,
      maxLength,
      maxPartitions,
    });
  }

  async partitionPop(
    group: string,
    partition: string,
    options: ListPopOptions = {},
  ): Promise<string[]> {
    this.check();
    const { max, waitMs, signal } = waitOptions(options);
    if (signal?.aborted) return [];
    const k = this.layout.partition(group, partition);
    const values = await this.exec(() => this.cmd.lpop(k, max));
    if ((values && values.length > 0) || waitMs === 0) return values ?? [];
    return this.blockingPop(k, max, waitMs, signal);
  }

  async partitionRange(
    group: string,
    partition: string,
    start: number,
    count: number,
  ): Promise<string[]> {
    this.check();
    const from = atLeastZero("start", start);
    const n = atLeastOne("count", count);
    return this.exec(() =>
      this.cmd.lrange(this.layout.partition(group, partition), from, from + n - 1),
    );
  }

  async partitionLength(group: string, partition: string): Promise<number> {
    this.check();
    return this.exec(() => this.cmd.llen(this.layout.partition(group, partition)));
  }

  async partitionStats(group: string): Promise<PartitionStats> {
    this.check();
    return this.run(lua.PARTITION_STATS, { group });
  }

  async partitionClear(group: string, partition: string): Promise<number> {
    this.check();
    return this.run(lua.PARTITION_CLEAR, { group, partition });
  }

  async partitionDrop(group: string): Promise<number> {
    this.check();
    return this.run(lua.PARTITION_DROP, { group });
  }

  // ---- several writes at once -------------------------------------------------------------

  async apply(effects: Effects): Promise<boolean> {
    this.check();
    return this.run(lua.APPLY, { effects });
  }

  // ---- locks ------------------------------------------------------------------------------

  async lock(name: string, owner: string, ttlMs: number): Promise<number | null> {
    this.check();
    positiveInt("ttlMs", ttlMs);
    const held = await this.run(lua.LOCK, { name, owner, ttlMs });
    return held === null ? null : held.token;
  }

  async unlock(name: string, owner: string): Promise<boolean> {
    this.check();
    return this.run(lua.UNLOCK, { name, owner });
  }

  // ---- notifications ----------------------------------------------------------------------

  async publish(channel: string, message: string): Promise<void> {
    this.check();
    await this.exec(() => this.cmd.publish(this.layout.channel(channel), message));
  }

  async subscribe(channel: string, listener: (message: string) => void): Promise<Unsubscribe> {
    this.check();
    const name = this.layout.channel(channel);
    let entry = this.channels.get(name);
    if (!entry) {
      entry = { listeners: new Set(), subscribed: false, chain: Promise.resolve() };
      this.channels.set(name, entry);
    }
    const channelEntry = entry;
    // Wrap, so the same function subscribed twice is two subscriptions, each removed on its own.
    const subscription = (message: string): void => listener(message);
    channelEntry.listeners.add(subscription);
    try {
      await this.reconcile(name, channelEntry);
    } catch (error) {
      channelEntry.listeners.delete(subscription);
      void this.reconcile(name, channelEntry).catch(() => {});
      throw this.fail(error);
    }
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      channelEntry.listeners.delete(subscription);
      if (!this.closed) await this.reconcile(name, channelEntry).catch(() => {});
    };
  }

  // ---- lifecycle --------------------------------------------------------------------------

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sweepTimer?.cancel();
    this.sweepTimer = null;
    // Waiters end with [] (or with what an attempt in flight claims); blocked pops are unblocked.
    const running: Promise<unknown>[] = [];
    for (const waiters of [...this.claimWaiters.values()]) {
      for (const waiter of [...waiters]) {
        if (waiter.running) running.push(waiter.running);
        this.stopClaimWaiter(waiter);
      }
    }
    const pops = [...this.popWaiters];
    for (const waiter of pops) void this.unblock(waiter);
    await withTimeout(
      Promise.allSettled([...running, this.sweeping ?? Promise.resolve()]),
      CLOSE_GRACE_MS,
    );
    await withTimeout(
      (async () => {
        while (this.popWaiters.size > 0) await sleep(5);
      })(),
      CLOSE_GRACE_MS,
    );
    for (const waiter of this.popWaiters) waiter.conn.disconnect();
    this.channels.clear();
    const conns = [this.cmd, this.sub, ...this.idleBlocking.splice(0)];
    await Promise.all(conns.map((conn) => quit(conn)));
  }

  // ---- connections ------------------------------------------------------------------------

  private baseOptions(): RedisOptions {
    return {
      lazyConnect: true,
      enableOfflineQueue: false,
      // Commands in flight when the connection drops fail at once instead of waiting for a reconnect.
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      connectTimeout: this.connectTimeoutMs,
      // A dropped connection's socket is destroyed this soon if the server does not close it (frozen).
      disconnectTimeout: 200,
      retryStrategy: (times) =>
        Math.min(50 * 2 ** Math.min(times, 10), 2000) + Math.floor(Math.random() * 100),
    };
  }

  private async connect(): Promise<void> {
    this.cmd = new Redis(this.url, {
      ...this.baseOptions(),
      commandTimeout: this.commandTimeoutMs,
      scripts: lua.scriptDefinitions(),
    });
    this.sub = new Redis(this.url, { ...this.baseOptions(), autoResubscribe: true });
    // Errors surface on the calls; without a listener ioredis would print every reconnect failure.
    this.cmd.on("error", (error: unknown) => (this.lastConnectionError = messageOf(error)));
    this.cmd.on("ready", () => (this.lastConnectionError = null));
    this.sub.on("error", () => {});
    await Promise.all([this.cmd.connect(), this.sub.connect()]);
    const info = await this.cmd.info("server");
    const version = /redis_version:(\d+)\.(\d+)/.exec(info);
    const [major, minor] = version ? [Number(version[1]), Number(version[2])] : [0, 0];
    if (major < 6 || (major === 6 && minor < 2)) {
      throw new UnavailableError(
        `Redis at ${redact(this.url)} is version ${major}.${minor}; kiln needs Redis 6.2 or later`,
      );
    }
    this.hasBlmpop = major >= 7;
    this.sub.on("message", (channel: string, message: string) => this.onMessage(channel, message));
    // After a reconnect (ioredis re-subscribes), wake-ups may have been missed while it was away.
    this.sub.on("ready", () => {
      this.wakeEpoch += 1;
      for (const queue of [...this.claimWaiters.keys()]) this.wake(queue);
    });
    await this.sub.subscribe(this.layout.wake);
  }

  private newBlockingConnection(): Redis {
    // No reconnects: a broken blocking connection is dropped and a fresh one made for the next pop.
    const conn = new Redis(this.url, { ...this.baseOptions(), retryStrategy: () => null });
    conn.on("error", () => {});
    return conn;
  }

  private async acquireBlocking(): Promise<Redis> {
    while (this.idleBlocking.length > 0) {
      const conn = this.idleBlocking.pop()!;
      if (conn.status === "ready") return conn;
      conn.disconnect();
    }
    const conn = this.newBlockingConnection();
    try {
      await conn.connect();
    } catch (error) {
      conn.disconnect();
      throw error;
    }
    return conn;
  }

  private releaseBlocking(conn: Redis, healthy: boolean): void {
    if (
      healthy &&
      !this.closed &&
      conn.status === "ready" &&
      this.idleBlocking.length < MAX_IDLE_BLOCKING
    ) {
      this.idleBlocking.push(conn);
    } else {
      void quit(conn);
    }
  }

  // ---- blocking pops ----------------------------------------------------------------------

  private async blockingPop(
    k: string,
    max: number,
    waitMs: number,
    signal: AbortSignal | undefined,
  ): Promise<string[]> {
    const conn = await this.exec(() => this.acquireBlocking());
    if (this.closed || signal?.aborted) {
      this.releaseBlocking(conn, true);
      return [];
    }
    // Asked for on the same connection right before the pop: the reply arrives before the pop
    // blocks, so an abort can name the connection to CLIENT UNBLOCK.
    const clientId = conn.client("ID") as Promise<number>;
    clientId.catch(() => {});
    const timeout = (Math.max(1, Math.ceil(waitMs)) / 1000).toFixed(3);
    const popping: Promise<string[]> = this.hasBlmpop
      ? conn.blmpop(timeout, 1, k, "LEFT", "COUNT", max).then((reply) => (reply ? reply[1] : []))
      : conn.blpop(k, timeout).then((reply) => (reply ? [reply[1]] : []));
    const waiter: PopWaiter = { conn, clientId, settled: false, unblocking: false };
    this.popWaiters.add(waiter);
    const onAbort = (): void => void this.unblock(waiter);
    signal?.addEventListener("abort", onAbort, { once: true });
    // A server that stops answering (frozen, partitioned) never ends the pop: give up on the
    // connection a command timeout after the pop should have returned.
    const guard = this.clock.setTimeout(() => conn.disconnect(), waitMs + this.commandTimeoutMs);
    let healthy = true;
    let values: string[];
    try {
      values = await popping;
    } catch (error) {
      healthy = false;
      if (this.closed && !isInvalid(error)) return [];
      throw this.fail(error);
    } finally {
      waiter.settled = true;
      guard.cancel();
      signal?.removeEventListener("abort", onAbort);
      this.popWaiters.delete(waiter);
      this.releaseBlocking(conn, healthy);
    }
    if (!this.hasBlmpop && values.length > 0 && max > 1) {
      // BLPOP took one; the rest is not atomic with it (Redis < 7), but nothing popped is dropped.
      try {
        values.push(...((await this.cmd.lpop(k, max - 1)) ?? []));
      } catch {
        // the first value is ours already; the rest stays for the next pop
      }
    }
    return values;
  }

  /** End a blocked pop early: CLIENT UNBLOCK (its pop returns what it has, or nothing), else disconnect. */
  private async unblock(waiter: PopWaiter): Promise<void> {
    if (waiter.unblocking) return;
    waiter.unblocking = true;
    try {
      const id = await waiter.clientId;
      for (let attempt = 0; attempt < 5 && !waiter.settled; attempt++) {
        if ((await this.cmd.client("UNBLOCK", id)) === 1) return;
        // Not blocked (yet, or any more): give the pop's reply a moment to arrive.
        await sleep(10 * (attempt + 1));
      }
      if (!waiter.settled) waiter.conn.disconnect();
    } catch {
      if (!waiter.settled) waiter.conn.disconnect();
    }
  }

  // ---- blocked claims ---------------------------------------------------------------------

  private async claimNow(
    queues: readonly string[],
    owner: string,
    leaseMs: number,
    max: number,
  ): Promise<ClaimAttempt> {
    if (queues.length === 0) return { claims: [], dueInMs: -1, drained: true };
    return this.attempt(queues, () => this.run(lua.CLAIM, { queues, owner, leaseMs, max }));
  }

  /** Run a claim script on `queues` and note whether it left them drained. */
  private async attempt(
    queues: readonly string[],
    run: () => Promise<lua.ClaimReply>,
  ): Promise<ClaimAttempt> {
    const mark = this.wakeMark(queues);
    const attempt = claimAttempt(await run());
    const key = queueSetKey(queues);
    if (attempt.drained)
      this.drained.set(key, {
        mark,
        dueAt: attempt.dueInMs < 0 ? Infinity : this.clock.now() + attempt.dueInMs,
      });
    else this.drained.delete(key);
    return attempt;
  }

  /**
   * What has been heard that could have made `queues` claimable: wake-ups for them, reconnects.
   * The same whatever the order of `queues` (a claimer alternates it).
   */
  private wakeMark(queues: readonly string[]): string {
    return `${this.wakeEpoch}:${[...queues]
      .sort()
      .map((queue) => this.wakesHeard.get(queue) ?? 0)
      .join(",")}`;
  }

  /**
   * ms until something among `queues` is due, when the last attempt on them left nothing ready
   * and nothing was heard since (a wake-up is published whenever a ready list goes from empty to
   * non-empty, in any agent); null when they must be asked.
   */
  private stillDrained(queues: readonly string[]): number | null {
    const drained = this.drained.get(queueSetKey(queues));
    if (!drained || drained.mark !== this.wakeMark(queues)) return null;
    const dueInMs = drained.dueAt - this.clock.now();
    if (dueInMs <= 0) return null;
    return Number.isFinite(dueInMs) ? dueInMs : -1;
  }

  /**
   * Run a claim attempt for `waiter` (or, when one is in flight, one more right after it).
   * Resolves true when the waiter got claims. Never rejects.
   */
  private poke(waiter: ClaimWaiter, first?: () => Promise<ClaimAttempt>): Promise<boolean> {
    if (waiter.state !== "waiting") return Promise.resolve(false);
    if (waiter.running) {
      waiter.rerun = true;
      return waiter.running;
    }
    let attempt =
      first ?? (() => this.claimNow(waiter.queues, waiter.owner, waiter.leaseMs, waiter.max));
    const running = (async (): Promise<boolean> => {
      try {
        for (;;) {
          waiter.rerun = false;
          const { claims, dueInMs } = await attempt();
          attempt = () => this.claimNow(waiter.queues, waiter.owner, waiter.leaseMs, waiter.max);
          if (claims.length > 0) {
            this.settleClaimWaiter(waiter, claims);
            return true;
          }
          if (waiter.state !== "waiting") {
            this.settleClaimWaiter(waiter, []);
            return false;
          }
          if (!waiter.rerun) {
            this.armRecheck(waiter, dueInMs);
            return false;
          }
        }
      } catch (error) {
        if (waiter.state === "stopping") this.settleClaimWaiter(waiter, []);
        else this.settleClaimWaiter(waiter, [], this.fail(error));
        return false;
      } finally {
        waiter.running = null;
      }
    })();
    waiter.running = running;
    return running;
  }

  private armRecheck(waiter: ClaimWaiter, dueInMs: number): void {
    waiter.recheck?.cancel();
    const ms = dueInMs >= 0 ? Math.min(this.sweepMs, dueInMs + 1) : this.sweepMs;
    waiter.recheck = this.clock.setTimeout(() => {
      waiter.recheck = null;
      void this.poke(waiter);
    }, ms);
  }

  /** A wake-up for `queue`: its waiters try in arrival order until one finds nothing. */
  private wake(queue: string): void {
    if (this.closed || !this.claimWaiters.has(queue)) return;
    if (this.rounds.has(queue)) {
      this.roundAgain.add(queue);
      return;
    }
    this.rounds.add(queue);
    void (async () => {
      try {
        do {
          this.roundAgain.delete(queue);
          for (const waiter of [...(this.claimWaiters.get(queue) ?? [])]) {
            if (waiter.state !== "waiting") continue;
            // Nothing for this waiter means nothing claimable in `queue` either.
            if (!(await this.poke(waiter))) break;
          }
        } while (this.roundAgain.has(queue) && !this.closed);
      } finally {
        this.rounds.delete(queue);
        this.roundAgain.delete(queue);
      }
    })();
  }

  /** Timeout, abort or close: end now, or with the result of the attempt in flight. */
  private stopClaimWaiter(waiter: ClaimWaiter): void {
    if (waiter.state !== "waiting") return;
    if (waiter.running) {
      waiter.state = "stopping";
      waiter.deadline?.cancel();
      waiter.recheck?.cancel();
    } else {
      this.settleClaimWaiter(waiter, []);
    }
  }

  private settleClaimWaiter(waiter: ClaimWaiter, claims: Claim[], error?: KilnError): void {
    if (waiter.state === "done") return;
    waiter.state = "done";
    waiter.deadline?.cancel();
    waiter.recheck?.cancel();
    waiter.signal?.removeEventListener("abort", waiter.onAbort);
    for (const queue of waiter.queues) removeFrom(this.claimWaiters, queue, waiter);
    if (error) waiter.reject(error);
    else waiter.resolve(claims);
  }

  // ---- notifications ----------------------------------------------------------------------

  private onMessage(channel: string, message: string): void {
    if (channel === this.layout.wake) {
      this.wakesHeard.set(message, (this.wakesHeard.get(message) ?? 0) + 1);
      this.wake(message);
      return;
    }
    const entry = this.channels.get(channel);
    if (!entry) return;
    for (const listener of [...entry.listeners]) {
      try {
        listener(message);
      } catch (error) {
        try {
          this.onListenerError(error);
        } catch {
          // the error handler failing must not break delivery to the others either
        }
      }
    }
  }

  /** Bring the subscriber in line with whether `name` has listeners; one change at a time per channel. */
  private reconcile(name: string, entry: Channel): Promise<void> {
    const next = entry.chain
      .catch(() => {})
      .then(async () => {
        const wanted = entry.listeners.size > 0;
        if (wanted && !entry.subscribed) {
          await this.sub.subscribe(name);
          entry.subscribed = true;
        } else if (!wanted && entry.subscribed) {
          entry.subscribed = false;
          await this.sub.unsubscribe(name);
        }
        if (entry.listeners.size === 0 && !entry.subscribed && this.channels.get(name) === entry)
          this.channels.delete(name);
      });
    entry.chain = next;
    return next;
  }

  // ---- the sweep --------------------------------------------------------------------------

  /** Sweep `inMs` from now, unless one is already due sooner. */
  private scheduleSweep(inMs: number): void {
    if (this.closed) return;
    const at = this.clock.now() + inMs;
    if (this.sweepTimer && this.sweepAt <= at) return;
    this.sweepTimer?.cancel();
    this.sweepAt = at;
    this.sweepTimer = this.clock.setTimeout(
      () => {
        this.sweepTimer = null;
        this.sweepAt = Infinity;
        this.sweep();
      },
      inMs,
      { unref: true },
    );
  }

  /** Recover lapsed leases and ended delays of every due queue (publishing wake-ups), then re-arm. */
  private sweep(): void {
    if (this.closed) return;
    if (this.sweeping) {
      this.sweepAgain = true;
      return;
    }
    this.sweeping = (async () => {
      let next = this.sweepMs;
      try {
        const due = await this.run(lua.DUE_QUEUES, { limit: SWEEP_LIMIT });
        if (due.nextDueInMs !== null) next = Math.min(next, due.nextDueInMs);
        for (const queue of due.names) {
          if (this.closed) return;
          const queueDue = await this.run(lua.SWEEP_QUEUE, { queue });
          if (queueDue !== null) next = Math.min(next, queueDue);
        }
        if (due.names.length >= SWEEP_LIMIT) next = 0;
      } catch {
        // Redis unreachable (or closing): try again at the next interval.
      } finally {
        this.sweeping = null;
      }
      if (this.sweepAgain) {
        this.sweepAgain = false;
        next = 0;
      }
      this.scheduleSweep(Math.max(next, 1));
    })();
  }

  // ---- internals --------------------------------------------------------------------------

  private check(): void {
    if (this.closed) throw new UnavailableError("store is closed");
  }

  /** Run `script` on the command connection; its reply parsed as the script's builder says. */
  private async run<I, R>(script: lua.Script<I, R>, input: I): Promise<R> {
    const { keys, args } = script.build(this.layout, input);
    const command = (
      this.cmd as unknown as Record<
        string,
        (numKeys: number, ...rest: lua.Arg[]) => Promise<unknown>
      >
    )[script.command];
    if (!command) throw new InternalError(`redis store: script ${script.file} is not registered`);
    const raw = await this.exec(() => command.call(this.cmd, keys.length, ...keys, ...args));
    return script.reply(raw, input);
  }

  private async exec<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw this.fail(error);
    }
  }

  /** The kiln error for an ioredis failure. */
  private fail(error: unknown): KilnError {
    if (isKilnError(error)) return error;
    const message = messageOf(error);
    if (this.closed && !(error instanceof Error && error.name === "ReplyError")) {
      return new UnavailableError("store is closed", { cause: error });
    }
    if (error instanceof Error && error.name === "ReplyError") {
      if (message.includes("WRONGTYPE"))
        return new InvalidError(
          `key holds the wrong kind of value (a string used as a list, or a list as a string): ${message}`,
          { cause: error },
        );
      const invalid = /KILN_INVALID (.*)/.exec(message);
      if (invalid)
        return new InvalidError(invalid[1]!.split(" script:")[0]!.trim(), { cause: error });
      const code = message.split(" ")[0] ?? "";
      if (TRANSIENT_CODES.has(code))
        return new UnavailableError(`Redis at ${redact(this.url)} is unavailable: ${message}`, {
          cause: error,
        });
      return new InternalError(`Redis at ${redact(this.url)}: ${message}`, { cause: error });
    }
    // ioredis says "Stream isn't writeable ..." or "Connection is closed." while disconnected;
    // the connection error behind it (ECONNREFUSED ...) says more.
    const disconnected = /Stream isn't writeable|Connection is closed/.test(message);
    const reason = disconnected
      ? `not connected${this.lastConnectionError ? ` (${this.lastConnectionError})` : ""}`
      : message;
    return new UnavailableError(`Redis at ${redact(this.url)} is unavailable: ${reason}`, {
      cause: error,
    });
  }
}

function isInvalid(error: unknown): boolean {
  return (
    error instanceof Error && error.name === "ReplyError" && messageOf(error).includes("WRONGTYPE")
  );
}

/** Quit politely when connected (bounded), then drop the socket. */
async function quit(conn: Redis): Promise<void> {
  if (conn.status === "ready")
    await withTimeout(
      conn.quit().catch(() => {}),
      CLOSE_GRACE_MS,
    );
  conn.disconnect();
}

/** The URL without its password, for messages. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString().replace(/\/$/, "");
  } catch {
    return "<invalid url>";
  }
}

/** SCAN MATCH treats `* ? [ ] \` specially. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function withTimeout(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** Redis takes whole milliseconds: round a fractional duration up (never to 0). */
function positiveInt(name: string, value: number): number {
  return Math.ceil(positive(name, value));
}

function nonNegativeInt(name: string, value: number): number {
  return Math.ceil(nonNegative(name, value));
}

/** One key for a set of queues, whatever order a claimer names them in. */
function queueSetKey(queues: readonly string[]): string {
  return [...queues].sort().join("\n");
}

function claimAttempt({ claims, after }: lua.ClaimReply): ClaimAttempt {
  return after.readyLeft
    ? { claims, dueInMs: -1, drained: false }
    : { claims, dueInMs: after.dueInMs ?? -1, drained: true };
}
