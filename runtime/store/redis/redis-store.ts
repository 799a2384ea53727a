/**
 * `RedisStore`: the {@link Store} for several hosts, on one Redis server (6.2 or later) through
 * ioredis. Every call is one command or one Lua script, so it is atomic on the server whatever
 * other agents do. This module checks arguments and composes the parts (see each one's header):
 * `keys.ts`, `scripts.ts` (with `script-loader.ts` and `lua/`), `connections.ts`,
 * `blocking-pop.ts`, `claim-waiters.ts`, `subscriber.ts`, `sweeper.ts`.
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
import type { Redis } from "ioredis";
import { systemClock, type Clock } from "../../clock.js";
import { InvalidError, UnavailableError } from "../../errors.js";
import type { Claim, ClaimOptions, ClaimRef, Effects, SettleResult } from "../store.js";
import type { EnqueueManyResult, EnqueueOptions, EnqueueResult, WorkItem } from "../store.js";
import type { HashReadOptions, HashScanPage, HashSetOptions, HashSetResult } from "../store.js";
import type { IncrOptions, ListPopOptions, QueueStats, ReleaseOptions } from "../store.js";
import type { PartitionPushOptions, PartitionPushResult, PartitionStats } from "../store.js";
import type { SetOptions, Store, Unsubscribe } from "../store.js";
import { atLeastOne, atLeastZero, positive, waitOptions } from "../checks.js";
import { completeOne, enqueueOne, settleOne } from "../shared/single.js";
import { finite, nonNegativeInt, optionalCount, optionalInt, positiveInt } from "./arguments.js";
import { BlockingPops } from "./blocking-pop.js";
import { ClaimWaiters } from "./claim-waiters.js";
import { CLOSE_GRACE_MS, Connections, connectionSettings, withTimeout } from "./connections.js";
import { KeyLayout } from "./keys.js";
import * as lua from "./scripts.js";
import type { ClaimInfo } from "./scripts.js";
import { Subscriber } from "./subscriber.js";
import { Sweeper } from "./sweeper.js";

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
const DEFAULT_SWEEP_MS = 1000;

export class RedisStore implements Store {
  readonly kind = "redis";

  private constructor(
    private readonly layout: KeyLayout,
    private readonly conns: Connections,
    private readonly waiters: ClaimWaiters,
    private readonly pops: BlockingPops,
    private readonly subscriber: Subscriber,
    private readonly sweeper: Sweeper,
  ) {}

  /**
   * Whether an eager `.remote()` enqueued on `queue` now would start before Redis records it (an
   * idle claimer of this store waits on it, ready for it, and its queues are known empty). For
   * diagnostics and tests; `enqueue` decides the same way.
   */
  eagerReady(queue: string): boolean {
    return this.waiters.wouldHandOver(queue);
  }

  /** Connect (failing with UnavailableError when the server cannot be reached) and start the sweep. */
  static async open(options: RedisStoreOptions): Promise<RedisStore> {
    if (typeof options.url !== "string" || options.url.length === 0)
      throw new InvalidError("redis store: url is required");
    const clock = options.clock ?? systemClock;
    const settings = connectionSettings(options);
    const sweepMs = positive("sweepMs", options.sweepMs ?? DEFAULT_SWEEP_MS);
    const layout = new KeyLayout(options.prefix ?? DEFAULT_PREFIX);
    const conns = new Connections(settings, layout);
    const waiters = new ClaimWaiters(conns, clock, sweepMs);
    const subscriber = new Subscriber(conns, {
      wakeChannel: layout.wake,
      onWake: (queue) => waiters.heard(queue),
      onReconnect: () => waiters.reconnected(),
      onListenerError: options.onListenerError ?? (() => {}),
      isClosed: () => conns.closed,
    });
    const store = new RedisStore(
      layout,
      conns,
      waiters,
      new BlockingPops(conns, clock),
      subscriber,
      new Sweeper(conns.run, clock, sweepMs),
    );
    try {
      await conns.connect();
      await subscriber.start();
    } catch (error) {
      const failure = conns.fail(error);
      conns.closed = true;
      conns.disconnect();
      throw failure;
    }
    store.sweeper.schedule(0);
    return store;
  }

  // ---- keys -------------------------------------------------------------------------------

  get(key: string): Promise<string | null> {
    return this.command((cmd) => cmd.get(this.layout.key(key)));
  }

  async getMany(keys: readonly string[]): Promise<(string | null)[]> {
    this.check();
    if (keys.length === 0) return [];
    return this.conns.run(lua.GET_MANY, { keys });
  }

  async set(key: string, value: string, options: SetOptions = {}): Promise<boolean> {
    this.check();
    const ttlMs = optionalInt("ttlMs", options.ttlMs);
    const k = this.layout.key(key);
    const reply = await this.command((cmd) => {
      if (ttlMs !== undefined && options.ifAbsent) return cmd.set(k, value, "PX", ttlMs, "NX");
      if (ttlMs !== undefined) return cmd.set(k, value, "PX", ttlMs);
      if (options.ifAbsent) return cmd.set(k, value, "NX");
      return cmd.set(k, value);
    });
    return reply === "OK";
  }

  async delete(key: string): Promise<boolean> {
    return (await this.command((cmd) => cmd.del(this.layout.key(key)))) > 0;
  }

  async keys(prefix: string): Promise<string[]> {
    this.check();
    const base = this.layout.keyPrefix;
    const found = await this.conns.scan(this.layout.keysMatching(prefix));
    return found.map((key) => key.slice(base.length)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  async ttl(key: string): Promise<number | null> {
    const ms = await this.command((cmd) => cmd.pttl(this.layout.key(key)));
    return ms < 0 ? null : ms;
  }

  // ---- counters ---------------------------------------------------------------------------

  async incr(key: string, by: number, options: IncrOptions = {}): Promise<number | null> {
    this.check();
    if (!Number.isSafeInteger(by)) throw new InvalidError(`incr: by must be an integer, got ${by}`);
    const max = finite("incr: max", options.max);
    const min = finite("incr: min", options.min);
    return this.conns.run(lua.INCR, { key, by, max, min });
  }

  // ---- work queues ------------------------------------------------------------------------

  enqueue(queue: string, item: WorkItem, options?: EnqueueOptions): Promise<EnqueueResult> {
    return enqueueOne(this, queue, item, options);
  }

  async enqueueMany(
    queue: string,
    items: readonly WorkItem[],
    options: EnqueueOptions = {},
  ): Promise<EnqueueManyResult> {
    this.check();
    const delayMs = nonNegativeInt("delayMs", options.delayMs ?? 0);
    const maxPending = finite("maxPending", options.maxPending);
    const maxTotal = finite("maxTotal", options.maxTotal);
    if (items.length === 0) return { accepted: 0 };
    const records = options.records ?? [];
    if (options.eager && delayMs === 0 && items.length === 1) {
      const handedOver = this.waiters.handOver(queue, items[0]!, records);
      if (handedOver) return handedOver;
    }
    if (delayMs === 0) {
      const caps = { maxPending, maxTotal };
      const claimed = this.waiters.enqueueClaim({ queue, items, records, ...caps });
      const result = claimed && (await claimed);
      if (result) return result;
    }
    const input = { queue, items, delayMs, maxPending, maxTotal, records };
    const result = await this.conns.run(lua.ENQUEUE, input);
    if (result.accepted > 0 && delayMs > 0) this.sweeper.schedule(delayMs);
    return result;
  }

  async claim(queues: readonly string[], options: ClaimOptions): Promise<Claim[]> {
    this.check();
    const leaseMs = positiveInt("leaseMs", options.leaseMs);
    const { max, waitMs, signal } = waitOptions(options);
    if (signal?.aborted) return [];
    const claimer = { queues, owner: options.owner, leaseMs, max };
    if (waitMs === 0) return this.waiters.claimNow(claimer);
    return this.waiters.wait({ ...claimer, waitMs, signal, eager: options.eager });
  }

  async renew(claims: readonly ClaimRef[], leaseMs: number): Promise<boolean[]> {
    this.check();
    positiveInt("leaseMs", leaseMs);
    if (claims.length === 0) return [];
    return this.conns.run(lua.RENEW, { claims, leaseMs });
  }

  complete(claim: ClaimRef): Promise<boolean> {
    return completeOne(this, claim);
  }

  settle(claim: ClaimRef, effects: Effects): Promise<SettleResult> {
    return settleOne(this, claim, effects);
  }

  async settleMany(
    entries: readonly { claim: ClaimRef; effects: Effects }[],
  ): Promise<SettleResult[]> {
    this.check();
    if (entries.length === 0) return [];
    return this.conns.run(lua.SETTLE, { entries });
  }

  async release(claim: ClaimRef, options: ReleaseOptions = {}): Promise<boolean> {
    this.check();
    const delayMs = nonNegativeInt("delayMs", options.delayMs ?? 0);
    const front = options.front ?? true;
    const released = await this.conns.run(lua.RELEASE, {
      claim,
      delayMs,
      front,
      payload: options.payload,
    });
    if (released && delayMs > 0) this.sweeper.schedule(delayMs);
    return released;
  }

  remove(queue: string, id: string): Promise<"pending" | "claimed" | null> {
    return this.run(lua.REMOVE, { queue, id });
  }

  stats(queue: string): Promise<QueueStats> {
    return this.run(lua.STATS, { queue });
  }

  dropQueue(queue: string): Promise<number> {
    return this.run(lua.DROP_QUEUE, { queue });
  }

  /**
   * Redis only: every claim held on `queue`, with its owner, fence and time left on its lease, by
   * deadline. For status and stalled-work sweeps across agents; not part of the Store interface.
   */
  listClaims(queue: string): Promise<ClaimInfo[]> {
    return this.run(lua.LIST_CLAIMS, { queue });
  }

  // ---- lists ------------------------------------------------------------------------------

  async listPush(
    key: string,
    values: readonly string[],
    options: { ttlMs?: number } = {},
  ): Promise<number> {
    this.check();
    const ttlMs = optionalInt("ttlMs", options.ttlMs);
    return this.conns.run(lua.LIST_PUSH, { key, values, ttlMs });
  }

  async listPop(key: string, options: ListPopOptions = {}): Promise<string[]> {
    this.check();
    return this.pop(this.layout.key(key), options);
  }

  listLength(key: string): Promise<number> {
    return this.command((cmd) => cmd.llen(this.layout.key(key)));
  }

  // ---- hashes -----------------------------------------------------------------------------

  async hashGet(
    hash: string,
    field: string,
    options: HashReadOptions = {},
  ): Promise<string | null> {
    this.check();
    const idleMs = optionalInt("idleMs", options.idleMs);
    return this.conns.run(lua.HASH_GET, { hash, field, idleMs });
  }

  async hashSet(
    hash: string,
    entries: readonly (readonly [string, string])[],
    options: HashSetOptions = {},
  ): Promise<HashSetResult> {
    this.check();
    const ttlMs = optionalInt("ttlMs", options.ttlMs);
    const idleMs = optionalInt("idleMs", options.idleMs);
    const maxFields = optionalCount("maxFields", options.maxFields);
    const ifAbsent = options.ifAbsent ?? false;
    return this.conns.run(lua.HASH_SET, { hash, entries, ifAbsent, ttlMs, idleMs, maxFields });
  }

  hashDelete(hash: string, field: string): Promise<string | null> {
    return this.run(lua.HASH_DELETE, { hash, field });
  }

  hashLength(hash: string): Promise<number> {
    return this.run(lua.HASH_LENGTH, { hash });
  }

  async hashScan(hash: string, cursor: string, count: number): Promise<HashScanPage> {
    this.check();
    if (!/^\d+$/.test(cursor))
      throw new InvalidError(
        `hashScan: cursor must be one returned by a previous page (or "0"), got ${JSON.stringify(cursor)}`,
      );
    return this.conns.run(lua.HASH_SCAN, { hash, cursor, count: atLeastOne("count", count) });
  }

  hashDrop(hash: string): Promise<number> {
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
    const ttlMs = optionalInt("ttlMs", options.ttlMs);
    const maxLength = optionalCount("maxLength", options.maxLength);
    const maxPartitions = optionalCount("maxPartitions", options.maxPartitions);
    return this.conns.run(lua.PARTITION_PUSH, {
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
    return this.pop(this.layout.partition(group, partition), options);
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
    const list = this.layout.partition(group, partition);
    return this.command((cmd) => cmd.lrange(list, from, from + n - 1));
  }

  partitionLength(group: string, partition: string): Promise<number> {
    return this.command((cmd) => cmd.llen(this.layout.partition(group, partition)));
  }

  partitionStats(group: string): Promise<PartitionStats> {
    return this.run(lua.PARTITION_STATS, { group });
  }

  partitionClear(group: string, partition: string): Promise<number> {
    return this.run(lua.PARTITION_CLEAR, { group, partition });
  }

  partitionDrop(group: string): Promise<number> {
    return this.run(lua.PARTITION_DROP, { group });
  }

  // ---- several writes at once, locks ------------------------------------------------------

  apply(effects: Effects): Promise<boolean> {
    return this.run(lua.APPLY, { effects });
  }

  async lock(name: string, owner: string, ttlMs: number): Promise<number | null> {
    this.check();
    positiveInt("ttlMs", ttlMs);
    const locked = await this.conns.run(lua.LOCK, { name, owner, ttlMs });
    return locked === null ? null : locked.token;
  }

  unlock(name: string, owner: string): Promise<boolean> {
    return this.run(lua.UNLOCK, { name, owner });
  }

  // ---- notifications ----------------------------------------------------------------------

  async publish(channel: string, message: string): Promise<void> {
    await this.command((cmd) => cmd.publish(this.layout.channel(channel), message));
  }

  async subscribe(channel: string, listener: (message: string) => void): Promise<Unsubscribe> {
    this.check();
    try {
      return await this.subscriber.subscribe(this.layout.channel(channel), listener);
    } catch (error) {
      throw this.conns.fail(error);
    }
  }

  // ---- lifecycle --------------------------------------------------------------------------

  async close(): Promise<void> {
    if (this.conns.closed) return;
    this.conns.closed = true;
    const sweeping = this.sweeper.stop();
    // Waiters end with [] (or with what an attempt in flight claims); blocked pops are unblocked.
    const running = this.waiters.stopAll();
    this.pops.unblockAll();
    await withTimeout(Promise.allSettled([...running, sweeping]), CLOSE_GRACE_MS);
    await this.pops.ended(CLOSE_GRACE_MS);
    this.subscriber.clear();
    await this.conns.quit();
  }

  // ---- internals --------------------------------------------------------------------------

  /** LPOP, then (with `waitMs`, when that found nothing) a blocking pop. */
  private async pop(list: string, options: ListPopOptions): Promise<string[]> {
    const { max, waitMs, signal } = waitOptions(options);
    if (signal?.aborted) return [];
    const values = await this.conns.exec(() => this.conns.cmd.lpop(list, max));
    if ((values && values.length > 0) || waitMs === 0) return values ?? [];
    return this.pops.pop(list, max, waitMs, signal);
  }

  /** Run a plain command, once the store is known to be open (a closed one rejects). */
  private async command<T>(run: (cmd: Redis) => Promise<T>): Promise<T> {
    this.check();
    return this.conns.exec(() => run(this.conns.cmd));
  }

  /** Run a script, once the store is known to be open (a closed one rejects). */
  private async run<I, R>(script: lua.Script<I, R>, input: I): Promise<R> {
    this.check();
    return this.conns.run(script, input);
  }

  private check(): void {
    if (this.conns.closed) throw new UnavailableError("store is closed");
  }
}
