/**
 * `EmbeddedStore`: the default, single-host {@link Store}, in-process.
 *
 * All state lives in memory ({@link State}); with a `dir` every mutation is also appended to a log
 * ({@link LogFile}) and a call resolves only once its record is written. Reads wait for the writes
 * already in flight, so nothing is observed that a crash could take back.
 *
 * Deadlines (key and list TTLs, leases, delays, lock expiry) sit in one min-heap driven by one
 * `Clock` timer, which does bounded work per tick, so leases lapse and delayed items become
 * claimable on time even when nobody calls the store. Reads also expire lazily. Blocked `claim`
 * and `listPop` calls are waiters, served directly (in arrival order) by the call that made
 * something available: no polling.
 *
 * On open, items that were claimed go back to the front of their queue (their holder died with the
 * process); their next delivery counts the lost one. Fences and lock tokens keep increasing.
 *
 * Not promised: other processes cannot share the store (the directory is locked to one process);
 * pub/sub is in-process only.
 */
import { systemClock, type Clock, type Timer } from "../../clock.js";
import { InvalidError, UnavailableError, messageOf } from "../../errors.js";
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
import type {
  Effects,
  EnqueueManyResult,
  SettleResult,
  Claim,
  ClaimOptions,
  ClaimRef,
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
import type { Deque } from "./deque.js";
import { LogFile } from "./log-file.js";
import { MinHeap } from "./min-heap.js";
import {
  State,
  type HashEntryRecord,
  type HashField,
  type Item,
  type KeyEntry,
  type LockEntry,
  type LogRecord,
  type PartitionEntry,
} from "./state.js";

export interface EmbeddedStoreOptions {
  /** Directory of the append-only log. Without it the store is memory-only. */
  dir?: string;
  /** Time source for TTLs, leases, delays and waits. Default: the system clock. */
  clock?: Clock;
  /** fsync the log on every flush (survives power loss, not only a crash of the process). Default false. */
  fsync?: boolean;
  /** Compact the log once it exceeds this many bytes and twice the live state. Default 64 MiB. */
  compactBytes?: number;
  /** Called when a subscriber's listener throws (the publisher is not affected). Default: ignored. */
  onListenerError?: (error: unknown) => void;
}

export const DEFAULT_COMPACT_BYTES = 64 * 1024 * 1024;
/** Deadlines handled per timer tick; the rest wait for the next tick (the event loop runs in between). */
const DEADLINES_PER_TICK = 1000;

type Deadline =
  | { at: number; kind: "key"; target: KeyEntry }
  | { at: number; kind: "item"; target: Item }
  | { at: number; kind: "lock"; target: LockEntry }
  | { at: number; kind: "field"; target: HashField }
  | { at: number; kind: "part"; target: PartitionEntry };

interface Waiter<T> {
  readonly max: number;
  done: boolean;
  timer: Timer | null;
  signal: AbortSignal | undefined;
  onAbort: () => void;
  resolve(value: T[] | Promise<T[]>): void;
}

interface ClaimWaiter extends Waiter<Claim> {
  readonly queues: readonly string[];
  readonly owner: string;
  readonly leaseMs: number;
}

interface PopWaiter extends Waiter<string> {
  /** Where it waits in `popWaiters`: a list key, or a partition's {@link partitionWaitKey}. */
  readonly key: string;
  /** Pop up to `max` values of what it waits on (recording the pop). */
  readonly take: (max: number) => string[];
}

export class EmbeddedStore implements Store {
  readonly kind = "embedded";

  private readonly state = new State();
  private readonly clock: Clock;
  private readonly onListenerError: (error: unknown) => void;
  private log: LogFile | null = null;
  private closed = false;

  private readonly deadlines = new MinHeap<Deadline>();
  private timer: Timer | null = null;
  private timerAt = Infinity;

  private readonly claimWaiters = new Map<string, Set<ClaimWaiter>>();
  private readonly popWaiters = new Map<string, Set<PopWaiter>>();
  private readonly channels = new Map<string, Set<(message: string) => void>>();

  private constructor(options: EmbeddedStoreOptions) {
    this.clock = options.clock ?? systemClock;
    this.onListenerError = options.onListenerError ?? (() => {});
  }

  static async open(options: EmbeddedStoreOptions = {}): Promise<EmbeddedStore> {
    const store = new EmbeddedStore(options);
    if (options.dir !== undefined) {
      const compactBytes = options.compactBytes ?? DEFAULT_COMPACT_BYTES;
      if (!(compactBytes > 0))
        throw new InvalidError(`compactBytes must be positive, got ${compactBytes}`);
      store.log = LogFile.open(
        options.dir,
        { fsync: options.fsync ?? false, compactBytes, snapshot: () => store.state.snapshot() },
        (record) => store.state.apply(record),
      );
      store.recover();
      store.log.flush();
    }
    return store;
  }

  // ---- keys -------------------------------------------------------------------------------

  async get(key: string): Promise<string | null> {
    this.check();
    const entry = this.live(key);
    const value = entry === undefined ? null : stringOf(entry);
    await this.durable();
    return value;
  }

  async getMany(keys: readonly string[]): Promise<(string | null)[]> {
    this.check();
    const values = keys.map((key) => {
      const entry = this.live(key);
      return entry === undefined ? null : stringOf(entry);
    });
    await this.durable();
    return values;
  }

  async set(key: string, value: string, options: SetOptions = {}): Promise<boolean> {
    this.check();
    const ttlMs = options.ttlMs === undefined ? undefined : positive("ttlMs", options.ttlMs);
    if (options.ifAbsent && this.live(key) !== undefined) {
      await this.durable();
      return false;
    }
    this.write({
      op: "set",
      k: key,
      v: value,
      x: ttlMs === undefined ? undefined : this.clock.now() + ttlMs,
    });
    this.trackKey(this.state.keys.get(key)!);
    await this.durable();
    return true;
  }

  async delete(key: string): Promise<boolean> {
    this.check();
    const existed = this.live(key) !== undefined;
    if (existed) this.write({ op: "del", k: key });
    await this.durable();
    return existed;
  }

  async keys(prefix: string): Promise<string[]> {
    this.check();
    const now = this.clock.now();
    const found: string[] = [];
    const expired: string[] = [];
    for (const [key, entry] of this.state.keys) {
      if (!key.startsWith(prefix)) continue;
      if (entry.expiresAt !== null && entry.expiresAt <= now) expired.push(key);
      else found.push(key);
    }
    for (const key of expired) this.write({ op: "del", k: key });
    found.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    await this.durable();
    return found;
  }

  async ttl(key: string): Promise<number | null> {
    this.check();
    const entry = this.live(key);
    const remaining = entry?.expiresAt == null ? null : entry.expiresAt - this.clock.now();
    await this.durable();
    return remaining;
  }

  // ---- counters ---------------------------------------------------------------------------

  async incr(key: string, by: number, options: IncrOptions = {}): Promise<number | null> {
    this.check();
    if (!Number.isSafeInteger(by)) throw new InvalidError(`incr: by must be an integer, got ${by}`);
    const entry = this.live(key);
    const next = (entry === undefined ? 0 : integerOf(key, entry)) + by;
    if (
      (options.max !== undefined && next > options.max) ||
      (options.min !== undefined && next < options.min)
    ) {
      await this.durable();
      return null;
    }
    this.write({ op: "set", k: key, v: String(next), x: entry?.expiresAt ?? undefined });
    await this.durable();
    return next;
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
    const delayMs = nonNegative("delayMs", options.delayMs ?? 0);
    this.catchUp();
    let accepted = 0;
    let refused: EnqueueManyResult["refused"];
    for (const item of items) {
      const state = this.state.queues.get(queue);
      if (!state?.items.has(item.id)) {
        const pending = state?.pending ?? 0;
        const total = pending + (state?.claimed ?? 0);
        if (options.maxPending !== undefined && pending >= options.maxPending) {
          refused = { reason: "pending", count: pending };
          break;
        }
        if (options.maxTotal !== undefined && total >= options.maxTotal) {
          refused = { reason: "total", count: total };
          break;
        }
        const readyAt = delayMs > 0 ? this.clock.now() + delayMs : undefined;
        this.write({ op: "enq", q: queue, id: item.id, p: item.payload, r: readyAt });
        if (readyAt !== undefined) this.trackItem(this.state.item(queue, item.id)!);
      }
      accepted += 1;
    }
    if (accepted > 0) {
      for (const record of options.records ?? []) {
        this.write({ op: "set", k: record.key, v: record.value, x: undefined });
        this.trackKey(this.state.keys.get(record.key)!);
      }
    }
    // Claimers see the step whole, as on Redis.
    if (delayMs === 0 && accepted > 0) this.wakeClaimers(queue);
    await this.durable();
    return refused ? { accepted, refused } : { accepted };
  }

  async claim(queues: readonly string[], options: ClaimOptions): Promise<Claim[]> {
    this.check();
    const leaseMs = positive("leaseMs", options.leaseMs);
    const { max, waitMs, signal } = waitOptions(options);
    if (signal?.aborted) return [];
    this.catchUp();
    const claims = this.take(queues, options.owner, leaseMs, max);
    if (claims.length > 0 || waitMs === 0) {
      await this.durable();
      return claims;
    }
    return new Promise<Claim[]>((resolve) => {
      const waiter: ClaimWaiter = {
        queues,
        owner: options.owner,
        leaseMs,
        max,
        done: false,
        timer: null,
        signal,
        onAbort: () => this.finishClaimWaiter(waiter, []),
        resolve,
      };
      for (const queue of queues) addTo(this.claimWaiters, queue, waiter);
      waiter.timer = this.clock.setTimeout(() => this.finishClaimWaiter(waiter, []), waitMs);
      signal?.addEventListener("abort", waiter.onAbort, { once: true });
    });
  }

  async renew(claims: readonly ClaimRef[], leaseMs: number): Promise<boolean[]> {
    this.check();
    positive("leaseMs", leaseMs);
    this.catchUp();
    const until = this.clock.now() + leaseMs;
    const held = claims.map((ref) => {
      const item = this.held(ref);
      if (!item) return false;
      item.dueAt = until;
      this.trackItem(item);
      return true;
    });
    await this.durable();
    return held;
  }

  async complete(claim: ClaimRef): Promise<boolean> {
    this.check();
    this.catchUp();
    const item = this.held(claim);
    if (item) this.write({ op: "done", q: claim.queue, id: claim.id });
    await this.durable();
    return item !== null;
  }

  async settle(claim: ClaimRef, effects: Effects): Promise<SettleResult> {
    const [result] = await this.settleMany([{ claim, effects }]);
    return result!;
  }

  async settleMany(
    entries: readonly { claim: ClaimRef; effects: Effects }[],
  ): Promise<SettleResult[]> {
    this.check();
    for (const { effects } of entries) checkEffects(effects);
    this.catchUp();
    const results = entries.map(({ claim, effects }): SettleResult => {
      if (!this.held(claim)) return "stale";
      this.write({ op: "done", q: claim.queue, id: claim.id });
      return this.applyNow(effects) ? "applied" : "guarded";
    });
    await this.durable();
    entries.forEach(({ effects }, i) => {
      if (results[i] === "applied") this.announce(effects);
    });
    return results;
  }

  async release(claim: ClaimRef, options: ReleaseOptions = {}): Promise<boolean> {
    this.check();
    const delayMs = nonNegative("delayMs", options.delayMs ?? 0);
    this.catchUp();
    const item = this.held(claim);
    if (item) {
      const readyAt = delayMs > 0 ? this.clock.now() + delayMs : undefined;
      this.write({
        op: "rel",
        q: claim.queue,
        id: claim.id,
        p: options.payload,
        r: readyAt,
        front: options.front ?? true,
      });
      if (readyAt === undefined) this.wakeClaimers(claim.queue);
      else this.trackItem(item);
    }
    await this.durable();
    return item !== null;
  }

  async remove(queue: string, id: string): Promise<"pending" | "claimed" | null> {
    this.check();
    this.catchUp();
    const item = this.state.item(queue, id);
    let where: "pending" | "claimed" | null = null;
    if (item) {
      where = item.state === "claimed" ? "claimed" : "pending";
      this.write({ op: "rm", q: queue, id });
    }
    await this.durable();
    return where;
  }

  async stats(queue: string): Promise<QueueStats> {
    this.check();
    this.catchUp();
    const state = this.state.queues.get(queue);
    const stats = {
      pending: state?.pending ?? 0,
      claimed: state?.claimed ?? 0,
      delayed: state?.delayed ?? 0,
    };
    await this.durable();
    return stats;
  }

  async dropQueue(queue: string): Promise<number> {
    this.check();
    const dropped = this.state.queues.get(queue)?.items.size ?? 0;
    if (dropped > 0) this.write({ op: "dropq", q: queue });
    await this.durable();
    return dropped;
  }

  // ---- lists ------------------------------------------------------------------------------

  async listPush(
    key: string,
    values: readonly string[],
    options: { ttlMs?: number } = {},
  ): Promise<number> {
    this.check();
    const ttlMs = options.ttlMs === undefined ? undefined : positive("ttlMs", options.ttlMs);
    const entry = this.live(key);
    if (entry !== undefined) listOf(entry);
    if (values.length === 0) {
      await this.durable();
      return entry === undefined ? 0 : listOf(entry).length;
    }
    this.write({
      op: "lpush",
      k: key,
      vs: values,
      x: ttlMs === undefined ? undefined : this.clock.now() + ttlMs,
    });
    const pushed = this.state.keys.get(key)!;
    const length = listOf(pushed).length;
    this.trackKey(pushed);
    this.wakePoppers(key);
    await this.durable();
    return length;
  }

  async listPop(key: string, options: ListPopOptions = {}): Promise<string[]> {
    this.check();
    const { max, waitMs, signal } = waitOptions(options);
    if (signal?.aborted) return [];
    const entry = this.live(key);
    if (entry !== undefined) listOf(entry);
    const values = this.pop(key, max);
    if (values.length > 0 || waitMs === 0) {
      await this.durable();
      return values;
    }
    return new Promise<string[]>((resolve) => {
      this.waitPop(key, (n) => this.pop(key, n), max, waitMs, signal, resolve);
    });
  }

  private waitPop(
    key: string,
    take: (max: number) => string[],
    max: number,
    waitMs: number,
    signal: AbortSignal | undefined,
    resolve: (values: string[] | Promise<string[]>) => void,
  ): void {
    const waiter: PopWaiter = {
      key,
      take,
      max,
      done: false,
      timer: null,
      signal,
      onAbort: () => this.finishPopWaiter(waiter, []),
      resolve,
    };
    addTo(this.popWaiters, key, waiter);
    waiter.timer = this.clock.setTimeout(() => this.finishPopWaiter(waiter, []), waitMs);
    signal?.addEventListener("abort", waiter.onAbort, { once: true });
  }

  async listLength(key: string): Promise<number> {
    this.check();
    const entry = this.live(key);
    const length = entry === undefined ? 0 : listOf(entry).length;
    await this.durable();
    return length;
  }

  // ---- hashes -----------------------------------------------------------------------------

  async hashGet(
    hash: string,
    field: string,
    options: HashReadOptions = {},
  ): Promise<string | null> {
    this.check();
    const idleMs = options.idleMs === undefined ? undefined : positive("idleMs", options.idleMs);
    const entry = this.liveField(hash, field);
    if (entry && idleMs !== undefined) {
      let deadline = this.clock.now() + idleMs;
      if (entry.fixed !== null && entry.fixed < deadline) deadline = entry.fixed;
      // Log a refresh only when it moves the deadline enough to matter (see the Store contract).
      if (entry.deadline === null || deadline - entry.deadline >= touchStep(idleMs)) {
        this.write({ op: "htouch", k: hash, f: field, d: deadline });
        this.trackField(entry);
      }
    }
    const value = entry?.value ?? null;
    await this.durable();
    return value;
  }

  async hashSet(
    hash: string,
    entries: readonly (readonly [string, string])[],
    options: HashSetOptions = {},
  ): Promise<HashSetResult> {
    this.check();
    const ttlMs = options.ttlMs === undefined ? undefined : positive("ttlMs", options.ttlMs);
    const idleMs = options.idleMs === undefined ? undefined : positive("idleMs", options.idleMs);
    const maxFields =
      options.maxFields === undefined ? undefined : atLeastZero("maxFields", options.maxFields);
    this.catchUp();
    const chosen = new Map<string, string>();
    let added = 0;
    for (const [field, value] of entries) {
      if (options.ifAbsent && chosen.has(field)) continue;
      const live = this.liveField(hash, field) !== undefined;
      if (options.ifAbsent && live) continue;
      if (!live && !chosen.has(field)) added++;
      chosen.set(field, value);
    }
    const count = this.state.hashes.get(hash)?.fields.size ?? 0;
    let result: HashSetResult;
    if (maxFields !== undefined && count + added > maxFields) {
      result = { ok: false, count };
    } else {
      if (chosen.size > 0) {
        const now = this.clock.now();
        const fixed = ttlMs === undefined ? undefined : now + ttlMs;
        const idle = idleMs === undefined ? undefined : now + idleMs;
        const deadline =
          fixed === undefined ? idle : idle === undefined ? fixed : Math.min(fixed, idle);
        const es: HashEntryRecord[] = [...chosen];
        this.write({ op: "hset", k: hash, es, d: deadline, x: fixed });
        const state = this.state.hashes.get(hash)!;
        if (deadline !== undefined)
          for (const field of chosen.keys()) this.trackField(state.fields.get(field)!);
      }
      result = { ok: true, written: chosen.size };
    }
    await this.durable();
    return result;
  }

  async hashDelete(hash: string, field: string): Promise<string | null> {
    this.check();
    const entry = this.liveField(hash, field);
    if (entry) this.write({ op: "hdel", k: hash, f: field });
    await this.durable();
    return entry?.value ?? null;
  }

  async hashLength(hash: string): Promise<number> {
    this.check();
    this.catchUp();
    const length = this.state.hashes.get(hash)?.fields.size ?? 0;
    await this.durable();
    return length;
  }

  async hashScan(hash: string, cursor: string, count: number): Promise<HashScanPage> {
    this.check();
    if (!/^\d+$/.test(cursor))
      throw new InvalidError(
        `hashScan: cursor must be one returned by a previous page (or "0"), got ${JSON.stringify(cursor)}`,
      );
    const n = atLeastOne("count", count);
    const state = this.state.hashes.get(hash);
    if (!state) {
      await this.durable();
      return { cursor: "0", entries: [] };
    }
    const now = this.clock.now();
    const { fields, done } = state.page(Number(cursor), n);
    const entries: [string, string][] = [];
    const expired: string[] = [];
    for (const f of fields) {
      if (f.deadline !== null && f.deadline <= now) expired.push(f.field);
      else entries.push([f.field, f.value]);
    }
    const next = done || fields.length === 0 ? "0" : String(fields[fields.length - 1]!.seq);
    for (const field of expired) this.write({ op: "hdel", k: hash, f: field });
    await this.durable();
    return { cursor: next, entries };
  }

  async hashDrop(hash: string): Promise<number> {
    this.check();
    this.catchUp();
    const count = this.state.hashes.get(hash)?.fields.size ?? 0;
    if (this.state.hashes.has(hash)) this.write({ op: "hdrop", k: hash });
    await this.durable();
    return count;
  }

  // ---- partitioned lists ------------------------------------------------------------------

  async partitionPush(
    group: string,
    partition: string,
    values: readonly string[],
    options: PartitionPushOptions = {},
  ): Promise<PartitionPushResult> {
    this.check();
    const ttlMs = options.ttlMs === undefined ? undefined : positive("ttlMs", options.ttlMs);
    const maxLength =
      options.maxLength === undefined ? undefined : atLeastZero("maxLength", options.maxLength);
    const maxPartitions =
      options.maxPartitions === undefined
        ? undefined
        : atLeastZero("maxPartitions", options.maxPartitions);
    const entry = this.livePartition(group, partition);
    const length = entry?.items.length ?? 0;
    let result: PartitionPushResult;
    if (values.length === 0) {
      result = { ok: true, length };
    } else if (maxLength !== undefined && length + values.length > maxLength) {
      result = { ok: false, reason: "length", count: length };
    } else {
      let partitions = 0;
      if (!entry && maxPartitions !== undefined) {
        this.catchUp();
        partitions = this.state.partitions.get(group)?.size ?? 0;
      }
      if (!entry && maxPartitions !== undefined && partitions >= maxPartitions) {
        result = { ok: false, reason: "partitions", count: partitions };
      } else {
        this.write({
          op: "ppush",
          g: group,
          p: partition,
          vs: values,
          x: ttlMs === undefined ? undefined : this.clock.now() + ttlMs,
        });
        const pushed = this.state.partition(group, partition)!;
        result = { ok: true, length: pushed.items.length };
        this.trackPartition(pushed);
        this.wakePoppers(partitionWaitKey(group, partition));
      }
    }
    await this.durable();
    return result;
  }

  async partitionPop(
    group: string,
    partition: string,
    options: ListPopOptions = {},
  ): Promise<string[]> {
    this.check();
    const { max, waitMs, signal } = waitOptions(options);
    if (signal?.aborted) return [];
    const take = (n: number): string[] => this.popPartition(group, partition, n);
    const values = take(max);
    if (values.length > 0 || waitMs === 0) {
      await this.durable();
      return values;
    }
    return new Promise<string[]>((resolve) => {
      this.waitPop(partitionWaitKey(group, partition), take, max, waitMs, signal, resolve);
    });
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
    const values = this.livePartition(group, partition)?.items.slice(from, n) ?? [];
    await this.durable();
    return values;
  }

  async partitionLength(group: string, partition: string): Promise<number> {
    this.check();
    const length = this.livePartition(group, partition)?.items.length ?? 0;
    await this.durable();
    return length;
  }

  async partitionStats(group: string): Promise<PartitionStats> {
    this.check();
    this.catchUp();
    const parts = this.state.partitions.get(group);
    let items = 0;
    for (const entry of parts?.values() ?? []) items += entry.items.length;
    await this.durable();
    return { partitions: parts?.size ?? 0, items };
  }

  async partitionClear(group: string, partition: string): Promise<number> {
    this.check();
    const entry = this.livePartition(group, partition);
    const count = entry?.items.length ?? 0;
    if (entry) this.write({ op: "pclear", g: group, p: partition });
    await this.durable();
    return count;
  }

  async partitionDrop(group: string): Promise<number> {
    this.check();
    this.catchUp();
    const parts = this.state.partitions.get(group);
    let items = 0;
    for (const entry of parts?.values() ?? []) items += entry.items.length;
    if (parts) this.write({ op: "pdrop", g: group });
    await this.durable();
    return items;
  }

  // ---- locks ------------------------------------------------------------------------------

  async lock(name: string, owner: string, ttlMs: number): Promise<number | null> {
    this.check();
    positive("ttlMs", ttlMs);
    const now = this.clock.now();
    const current = this.state.locks.get(name);
    const held = current !== undefined && current.expiresAt > now;
    if (held && current.owner !== owner) {
      await this.durable();
      return null;
    }
    const token = held ? current.token : this.state.seq + 1;
    this.write({ op: "lock", n: name, o: owner, t: token, x: now + ttlMs });
    this.trackLock(this.state.locks.get(name)!);
    await this.durable();
    return token;
  }

  async unlock(name: string, owner: string): Promise<boolean> {
    this.check();
    const current = this.state.locks.get(name);
    const held =
      current !== undefined && current.owner === owner && current.expiresAt > this.clock.now();
    if (held) this.write({ op: "unlock", n: name });
    await this.durable();
    return held;
  }

  // ---- several writes at once -------------------------------------------------------------

  async apply(effects: Effects): Promise<boolean> {
    this.check();
    checkEffects(effects);
    const applied = this.applyNow(effects);
    await this.durable();
    if (applied) this.announce(effects);
    return applied;
  }

  /** The writes of `effects`, now (one tick, so atomic); false when the guard found its key. */
  private applyNow(effects: Effects): boolean {
    const now = this.clock.now();
    if (effects.guard) {
      const { key, value, ttlMs } = effects.guard;
      if (this.live(key) !== undefined) return false;
      this.write({ op: "set", k: key, v: value, x: ttlMs === undefined ? undefined : now + ttlMs });
      this.trackKey(this.state.keys.get(key)!);
    }
    for (const { key, values, ttlMs } of effects.push ?? []) {
      const entry = this.live(key);
      if (entry !== undefined) listOf(entry);
      if (values.length === 0) continue;
      this.write({
        op: "lpush",
        k: key,
        vs: values,
        x: ttlMs === undefined ? undefined : now + ttlMs,
      });
      this.trackKey(this.state.keys.get(key)!);
      this.wakePoppers(key);
    }
    for (const { key, by, min } of effects.incr ?? []) {
      const entry = this.live(key);
      const next = (entry === undefined ? 0 : integerOf(key, entry)) + by;
      if (min !== undefined && next < min) continue;
      this.write({ op: "set", k: key, v: String(next), x: entry?.expiresAt ?? undefined });
    }
    for (const { key, ttlMs } of effects.expire ?? []) {
      const entry = this.live(key);
      if (entry === undefined) continue;
      if (typeof entry.value === "string")
        this.write({ op: "set", k: key, v: entry.value, x: now + ttlMs });
      else this.write({ op: "lpush", k: key, vs: [], x: now + ttlMs });
      this.trackKey(this.state.keys.get(key)!);
    }
    return true;
  }

  private announce(effects: Effects): void {
    for (const { channel, message } of effects.publish ?? []) this.deliver(channel, message);
  }

  // ---- notifications ----------------------------------------------------------------------

  async publish(channel: string, message: string): Promise<void> {
    this.check();
    this.deliver(channel, message);
  }

  private deliver(channel: string, message: string): void {
    const listeners = this.channels.get(channel);
    if (!listeners) return;
    for (const listener of [...listeners]) {
      try {
        listener(message);
      } catch (error) {
        try {
          this.onListenerError(error);
        } catch {
          // the error handler failing must not break the publisher either
        }
      }
    }
  }

  async subscribe(channel: string, listener: (message: string) => void): Promise<Unsubscribe> {
    this.check();
    // Wrap, so the same function subscribed twice is two subscriptions, each removed on its own.
    const subscription = (message: string): void => listener(message);
    addTo(this.channels, channel, subscription);
    return async () => {
      removeFrom(this.channels, channel, subscription);
    };
  }

  // ---- lifecycle --------------------------------------------------------------------------

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.timer?.cancel();
    this.timer = null;
    this.deadlines.clear();
    for (const waiters of [...this.claimWaiters.values()])
      for (const w of [...waiters]) this.finishClaimWaiter(w, []);
    for (const waiters of [...this.popWaiters.values()])
      for (const w of [...waiters]) this.finishPopWaiter(w, []);
    this.channels.clear();
    const log = this.log;
    this.log = null;
    log?.close();
  }

  // ---- internals --------------------------------------------------------------------------

  private check(): void {
    if (this.closed) throw new UnavailableError("store is closed");
    const failure = this.log?.error;
    if (failure)
      throw new UnavailableError(`store log write failed: ${messageOf(failure)}`, {
        cause: failure,
      });
  }

  /** Apply a mutation and append it to the log. */
  private write(record: LogRecord): void {
    this.state.apply(record);
    this.log?.append(record);
  }

  /** Resolves once every mutation so far is written (at once in memory-only mode). */
  private durable(): Promise<void> | undefined {
    return this.log?.barrier() ?? undefined;
  }

  /** After replay: hand back claims whose holder died with the process, schedule every deadline. */
  private recover(): void {
    const claimed: Item[] = [];
    for (const queue of this.state.queues.values()) {
      for (const item of queue.items.values()) {
        if (item.state === "claimed") claimed.push(item);
        else if (item.state === "delayed") this.trackItem(item);
      }
    }
    // Lapse the newest first, so the oldest claim ends up at the very front.
    claimed.sort((a, b) => b.fence - a.fence);
    for (const item of claimed) this.write({ op: "lapse", q: item.queue, id: item.id });
    for (const entry of this.state.keys.values()) this.trackKey(entry);
    for (const lock of this.state.locks.values()) this.trackLock(lock);
    for (const hash of this.state.hashes.values())
      for (const field of hash.fields.values()) this.trackField(field);
    for (const parts of this.state.partitions.values())
      for (const entry of parts.values()) this.trackPartition(entry);
    this.catchUp();
  }

  /** The entry of `key` unless it expired (an expired one is deleted). */
  private live(key: string): KeyEntry | undefined {
    const entry = this.state.keys.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== null && entry.expiresAt <= this.clock.now()) {
      this.write({ op: "del", k: key });
      return undefined;
    }
    return entry;
  }

  /** The item a claim refers to, if the claim is still held (a lapsed lease is handed back here). */
  private held(ref: ClaimRef): Item | null {
    const item = this.state.item(ref.queue, ref.id);
    if (!item || item.state !== "claimed" || item.fence !== ref.fence) return null;
    if (item.dueAt !== null && item.dueAt <= this.clock.now()) {
      this.write({ op: "lapse", q: item.queue, id: item.id });
      this.wakeClaimers(item.queue);
      return null;
    }
    return item;
  }

  /** Claim up to `max` items from the first of `queues` that has any. */
  private take(queues: readonly string[], owner: string, leaseMs: number, max: number): Claim[] {
    for (const queue of queues) {
      const state = this.state.queues.get(queue);
      if (!state || state.ready.size === 0) continue;
      const ids: string[] = [];
      for (let item = state.ready.head; item && ids.length < max; item = item.next)
        ids.push(item.id);
      this.write({ op: "claim", q: queue, ids, f: this.state.seq + 1, o: owner });
      const until = this.clock.now() + leaseMs;
      return ids.map((id) => {
        const item = state.items.get(id)!;
        item.dueAt = until;
        this.trackItem(item);
        return { queue, id, payload: item.payload, fence: item.fence, deliveries: item.claims - 1 };
      });
    }
    return [];
  }

  /** The field unless it expired (an expired one is deleted). */
  private liveField(hash: string, field: string): HashField | undefined {
    const entry = this.state.hashes.get(hash)?.fields.get(field);
    if (entry === undefined) return undefined;
    if (entry.deadline !== null && entry.deadline <= this.clock.now()) {
      this.write({ op: "hdel", k: hash, f: field });
      return undefined;
    }
    return entry;
  }

  /** The partition unless it expired (an expired one is cleared). */
  private livePartition(group: string, partition: string): PartitionEntry | undefined {
    const entry = this.state.partition(group, partition);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== null && entry.expiresAt <= this.clock.now()) {
      this.write({ op: "pclear", g: group, p: partition });
      return undefined;
    }
    return entry;
  }

  private popPartition(group: string, partition: string, max: number): string[] {
    const entry = this.livePartition(group, partition);
    if (!entry) return [];
    const values = entry.items.peek(max);
    this.write({ op: "ppop", g: group, p: partition, n: values.length });
    return values;
  }

  private pop(key: string, max: number): string[] {
    const entry = this.state.keys.get(key);
    if (entry === undefined || typeof entry.value === "string" || entry.value.length === 0)
      return [];
    const values = entry.value.peek(max);
    this.write({ op: "lpop", k: key, n: values.length });
    return values;
  }

  /** Serve blocked claimers of `queue` (oldest first) while it has claimable items. */
  private wakeClaimers(queue: string): void {
    const waiters = this.claimWaiters.get(queue);
    if (!waiters) return;
    for (const waiter of waiters) {
      const state = this.state.queues.get(queue);
      if (!state || state.ready.size === 0) return;
      const claims = this.take(waiter.queues, waiter.owner, waiter.leaseMs, waiter.max);
      if (claims.length > 0) this.finishClaimWaiter(waiter, claims);
    }
  }

  private wakePoppers(key: string): void {
    const waiters = this.popWaiters.get(key);
    if (!waiters) return;
    for (const waiter of waiters) {
      const values = waiter.take(waiter.max);
      if (values.length === 0) return;
      this.finishPopWaiter(waiter, values);
    }
  }

  private finishClaimWaiter(waiter: ClaimWaiter, claims: Claim[]): void {
    if (!this.finish(waiter, claims)) return;
    for (const queue of waiter.queues) removeFrom(this.claimWaiters, queue, waiter);
  }

  private finishPopWaiter(waiter: PopWaiter, values: string[]): void {
    if (!this.finish(waiter, values)) return;
    removeFrom(this.popWaiters, waiter.key, waiter);
  }

  private finish<T>(waiter: Waiter<T>, values: T[]): boolean {
    if (waiter.done) return false;
    waiter.done = true;
    waiter.timer?.cancel();
    waiter.signal?.removeEventListener("abort", waiter.onAbort);
    const barrier = values.length > 0 ? this.durable() : undefined;
    waiter.resolve(barrier ? barrier.then(() => values) : values);
    return true;
  }

  // ---- deadlines --------------------------------------------------------------------------

  private trackKey(entry: KeyEntry): void {
    if (entry.expiresAt !== null && (entry.heapAt === null || entry.expiresAt < entry.heapAt)) {
      entry.heapAt = entry.expiresAt;
      this.schedule({ at: entry.expiresAt, kind: "key", target: entry });
    }
  }

  private trackItem(item: Item): void {
    if (item.dueAt !== null && (item.heapAt === null || item.dueAt < item.heapAt)) {
      item.heapAt = item.dueAt;
      this.schedule({ at: item.dueAt, kind: "item", target: item });
    }
  }

  private trackField(entry: HashField): void {
    if (entry.deadline !== null && (entry.heapAt === null || entry.deadline < entry.heapAt)) {
      entry.heapAt = entry.deadline;
      this.schedule({ at: entry.deadline, kind: "field", target: entry });
    }
  }

  private trackPartition(entry: PartitionEntry): void {
    if (entry.expiresAt !== null && (entry.heapAt === null || entry.expiresAt < entry.heapAt)) {
      entry.heapAt = entry.expiresAt;
      this.schedule({ at: entry.expiresAt, kind: "part", target: entry });
    }
  }

  private trackLock(lock: LockEntry): void {
    if (lock.heapAt === null || lock.expiresAt < lock.heapAt) {
      lock.heapAt = lock.expiresAt;
      this.schedule({ at: lock.expiresAt, kind: "lock", target: lock });
    }
  }

  private schedule(deadline: Deadline): void {
    this.deadlines.push(deadline);
    if (deadline.at < this.timerAt) this.arm(deadline.at);
  }

  private arm(at: number): void {
    this.timer?.cancel();
    this.timerAt = at;
    this.timer = this.clock.setTimeout(() => this.onTimer(), at - this.clock.now(), {
      unref: true,
    });
  }

  private onTimer(): void {
    this.timer = null;
    this.timerAt = Infinity;
    if (this.closed) return;
    this.catchUp();
  }

  /** Handle up to a tick's worth of due deadlines, then re-arm the timer for the next one. */
  private catchUp(): void {
    const now = this.clock.now();
    for (let handled = 0; handled < DEADLINES_PER_TICK; handled++) {
      const next = this.deadlines.peek();
      if (next === undefined || next.at > now) break;
      this.deadlines.pop();
      this.due(next, now);
    }
    const next = this.deadlines.peek();
    if (next !== undefined && next.at < this.timerAt) this.arm(next.at);
  }

  private due(deadline: Deadline, now: number): void {
    const target = deadline.target;
    if (target.heapAt === deadline.at) target.heapAt = null;
    switch (deadline.kind) {
      case "key": {
        const entry = deadline.target;
        if (this.state.keys.get(entry.key) !== entry || entry.expiresAt === null) return;
        if (entry.expiresAt > now) this.trackKey(entry);
        else this.write({ op: "del", k: entry.key });
        return;
      }
      case "item": {
        const item = deadline.target;
        if (
          this.state.item(item.queue, item.id) !== item ||
          item.dueAt === null ||
          item.state === "pending"
        )
          return;
        if (item.dueAt > now) {
          this.trackItem(item);
          return;
        }
        this.write({
          op: item.state === "claimed" ? "lapse" : "ready",
          q: item.queue,
          id: item.id,
        });
        this.wakeClaimers(item.queue);
        return;
      }
      case "field": {
        const entry = deadline.target;
        if (
          this.state.hashes.get(entry.hash)?.fields.get(entry.field) !== entry ||
          entry.deadline === null
        )
          return;
        if (entry.deadline > now) this.trackField(entry);
        else this.write({ op: "hdel", k: entry.hash, f: entry.field });
        return;
      }
      case "part": {
        const entry = deadline.target;
        if (
          this.state.partition(entry.group, entry.partition) !== entry ||
          entry.expiresAt === null
        )
          return;
        if (entry.expiresAt > now) this.trackPartition(entry);
        else this.write({ op: "pclear", g: entry.group, p: entry.partition });
        return;
      }
      case "lock": {
        const lock = deadline.target;
        if (this.state.locks.get(lock.name) !== lock) return;
        if (lock.expiresAt > now) this.trackLock(lock);
        // An expired lock is forgotten without a record: replay finds it expired as well.
        else this.state.locks.delete(lock.name);
        return;
      }
    }
  }
}

/** The integer a counter key holds; InvalidError when it holds something else. */
function integerOf(key: string, entry: KeyEntry): number {
  const text = stringOf(entry);
  const value = Number(text);
  if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(value)) {
    throw new InvalidError(`incr: key ${JSON.stringify(key)} does not hold an integer`);
  }
  return value;
}

function stringOf(entry: KeyEntry): string {
  if (typeof entry.value !== "string")
    throw new InvalidError(`key ${JSON.stringify(entry.key)} holds a list, not a string`);
  return entry.value;
}

function listOf(entry: KeyEntry): Deque<string> {
  if (typeof entry.value === "string")
    throw new InvalidError(`key ${JSON.stringify(entry.key)} holds a string, not a list`);
  return entry.value;
}

/** The least a read must move a field's deadline to be logged: 1 % of idleMs, at least 1 s, at most 10 %. */
function touchStep(idleMs: number): number {
  return Math.min(Math.max(1000, idleMs / 100), idleMs / 10);
}

/** Where blocked pops of a partition wait (beside list keys, which never start with NUL). */
function partitionWaitKey(group: string, partition: string): string {
  return `\u0000${group}\u0000${partition}`;
}
