/**
 * `EmbeddedStore`: the default, single-host {@link Store}, in-process. Each call checks the store
 * is open, runs on the part that owns its concept (keys, lists, queues, hashes, partitions, locks,
 * effects; all state in memory, `state.ts`), and resolves once its writes are in the log
 * (`log-file.ts`, with a `dir`), so nothing is observed that a crash could take back.
 * Not promised: other processes cannot share the store (the directory is locked); pub/sub is
 * in-process only.
 */
import { systemClock, type Clock } from "../../clock.js";
import { InvalidError, UnavailableError, messageOf } from "../../errors.js";
import { checkEffects, positive, waitOptions } from "../checks.js";
import { Listeners } from "../shared/listeners.js";
import { completeOne, enqueueOne, settleOne } from "../shared/single.js";
import type {
  Claim,
  ClaimOptions,
  ClaimRef,
  Effects,
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
  SettleResult,
  Store,
  Unsubscribe,
  WorkItem,
} from "../store.js";
import { Core } from "./core.js";
import { Deadlines } from "./deadlines.js";
import { writeEffects } from "./effects.js";
import { Hashes } from "./hashes.js";
import { KeyValues } from "./keys.js";
import { Lists } from "./lists.js";
import { Locks } from "./locks.js";
import { LogFile } from "./log-file.js";
import { Partitions, partitionWaitKey } from "./partitions.js";
import { WorkQueues } from "./queues.js";
import { recover } from "./recovery.js";
import { BlockedPops } from "./waiting.js";

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

export class EmbeddedStore implements Store {
  readonly kind = "embedded";

  private readonly core: Core;
  private readonly deadlines: Deadlines;
  private readonly pops: BlockedPops;
  private readonly keyValues: KeyValues;
  private readonly lists: Lists;
  private readonly queues: WorkQueues;
  private readonly hashes: Hashes;
  private readonly partitions: Partitions;
  private readonly locks: Locks;
  private readonly listeners: Listeners;
  private closed = false;

  private constructor(options: EmbeddedStoreOptions) {
    const clock = options.clock ?? systemClock;
    this.deadlines = new Deadlines(clock, {
      key: (entry, now) => this.keyValues.due(entry, now),
      item: (item, now) => this.queues.due(item, now),
      lock: (lock, now) => this.locks.due(lock, now),
      field: (entry, now) => this.hashes.due(entry, now),
      part: (entry, now) => this.partitions.due(entry, now),
    });
    this.core = new Core(clock, this.deadlines);
    this.pops = new BlockedPops(this.core);
    this.keyValues = new KeyValues(this.core);
    this.lists = new Lists(this.core, this.keyValues, this.pops);
    this.queues = new WorkQueues(this.core, this.keyValues);
    this.hashes = new Hashes(this.core);
    this.partitions = new Partitions(this.core, this.pops);
    this.locks = new Locks(this.core);
    this.listeners = new Listeners(options.onListenerError ?? (() => {}));
  }

  static async open(options: EmbeddedStoreOptions = {}): Promise<EmbeddedStore> {
    const store = new EmbeddedStore(options);
    if (options.dir !== undefined) {
      const compactBytes = options.compactBytes ?? DEFAULT_COMPACT_BYTES;
      if (!(compactBytes > 0))
        throw new InvalidError(`compactBytes must be positive, got ${compactBytes}`);
      const state = store.core.state;
      const log = LogFile.open(
        options.dir,
        { fsync: options.fsync ?? false, compactBytes, snapshot: () => state.snapshot() },
        (record) => state.apply(record),
      );
      store.core.log = log;
      recover(store.core);
      log.flush();
    }
    return store;
  }

  // ---- keys -------------------------------------------------------------------------------

  async get(key: string): Promise<string | null> {
    this.check();
    return await this.core.durable(this.keyValues.get(key));
  }

  async getMany(keys: readonly string[]): Promise<(string | null)[]> {
    this.check();
    return await this.core.durable(keys.map((key) => this.keyValues.get(key)));
  }

  async set(key: string, value: string, options: SetOptions = {}): Promise<boolean> {
    this.check();
    return await this.core.durable(this.keyValues.set(key, value, options));
  }

  async delete(key: string): Promise<boolean> {
    this.check();
    return await this.core.durable(this.keyValues.delete(key));
  }

  async keys(prefix: string): Promise<string[]> {
    this.check();
    return await this.core.durable(this.keyValues.startingWith(prefix));
  }

  async ttl(key: string): Promise<number | null> {
    this.check();
    return await this.core.durable(this.keyValues.ttl(key));
  }

  async incr(key: string, by: number, options: IncrOptions = {}): Promise<number | null> {
    this.check();
    return await this.core.durable(this.keyValues.incr(key, by, options));
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
    return await this.core.durable(this.queues.enqueue(queue, items, options));
  }

  async claim(queues: readonly string[], options: ClaimOptions): Promise<Claim[]> {
    this.check();
    const leaseMs = positive("leaseMs", options.leaseMs);
    const { max, waitMs, signal } = waitOptions(options);
    if (signal?.aborted) return [];
    this.deadlines.catchUp();
    const claims = this.queues.take(queues, options.owner, leaseMs, max);
    if (claims.length > 0 || waitMs === 0) return await this.core.durable(claims);
    return this.queues.wait(queues, options.owner, leaseMs, max, waitMs, signal);
  }

  async renew(claims: readonly ClaimRef[], leaseMs: number): Promise<boolean[]> {
    this.check();
    return await this.core.durable(this.queues.renew(claims, leaseMs));
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
    for (const { effects } of entries) checkEffects(effects);
    this.deadlines.catchUp();
    const results = entries.map(({ claim, effects }): SettleResult => {
      if (!this.queues.ack(claim)) return "stale";
      return this.writeEffects(effects) ? "applied" : "guarded";
    });
    await this.core.durable(undefined);
    entries.forEach(({ effects }, i) => {
      if (results[i] === "applied") this.announce(effects);
    });
    return results;
  }

  async release(claim: ClaimRef, options: ReleaseOptions = {}): Promise<boolean> {
    this.check();
    return await this.core.durable(this.queues.release(claim, options));
  }

  async remove(queue: string, id: string): Promise<"pending" | "claimed" | null> {
    this.check();
    return await this.core.durable(this.queues.remove(queue, id));
  }

  async stats(queue: string): Promise<QueueStats> {
    this.check();
    return await this.core.durable(this.queues.stats(queue));
  }

  async dropQueue(queue: string): Promise<number> {
    this.check();
    return await this.core.durable(this.queues.drop(queue));
  }

  // ---- lists ------------------------------------------------------------------------------

  async listPush(
    key: string,
    values: readonly string[],
    options: { ttlMs?: number } = {},
  ): Promise<number> {
    this.check();
    const ttlMs = options.ttlMs === undefined ? undefined : positive("ttlMs", options.ttlMs);
    const expiresAt = ttlMs === undefined ? undefined : this.core.clock.now() + ttlMs;
    return await this.core.durable(this.lists.push(key, values, expiresAt));
  }

  async listPop(key: string, options: ListPopOptions = {}): Promise<string[]> {
    this.check();
    const { max, waitMs, signal } = waitOptions(options);
    if (signal?.aborted) return [];
    const values = this.lists.pop(key, max);
    if (values.length > 0 || waitMs === 0) return await this.core.durable(values);
    return this.pops.wait(key, (n) => this.lists.take(key, n), max, waitMs, signal);
  }

  async listLength(key: string): Promise<number> {
    this.check();
    return await this.core.durable(this.lists.length(key));
  }

  // ---- hashes -----------------------------------------------------------------------------

  async hashGet(
    hash: string,
    field: string,
    options: HashReadOptions = {},
  ): Promise<string | null> {
    this.check();
    return await this.core.durable(this.hashes.get(hash, field, options));
  }

  async hashSet(
    hash: string,
    entries: readonly (readonly [string, string])[],
    options: HashSetOptions = {},
  ): Promise<HashSetResult> {
    this.check();
    return await this.core.durable(this.hashes.set(hash, entries, options));
  }

  async hashDelete(hash: string, field: string): Promise<string | null> {
    this.check();
    return await this.core.durable(this.hashes.delete(hash, field));
  }

  async hashLength(hash: string): Promise<number> {
    this.check();
    return await this.core.durable(this.hashes.length(hash));
  }

  async hashScan(hash: string, cursor: string, count: number): Promise<HashScanPage> {
    this.check();
    return await this.core.durable(this.hashes.scan(hash, cursor, count));
  }

  async hashDrop(hash: string): Promise<number> {
    this.check();
    return await this.core.durable(this.hashes.drop(hash));
  }

  // ---- partitioned lists ------------------------------------------------------------------

  async partitionPush(
    group: string,
    partition: string,
    values: readonly string[],
    options: PartitionPushOptions = {},
  ): Promise<PartitionPushResult> {
    this.check();
    return await this.core.durable(this.partitions.push(group, partition, values, options));
  }

  async partitionPop(
    group: string,
    partition: string,
    options: ListPopOptions = {},
  ): Promise<string[]> {
    this.check();
    const { max, waitMs, signal } = waitOptions(options);
    if (signal?.aborted) return [];
    const take = (n: number): string[] => this.partitions.pop(group, partition, n);
    const values = take(max);
    if (values.length > 0 || waitMs === 0) return await this.core.durable(values);
    return this.pops.wait(partitionWaitKey(group, partition), take, max, waitMs, signal);
  }

  async partitionRange(
    group: string,
    partition: string,
    start: number,
    count: number,
  ): Promise<string[]> {
    this.check();
    return await this.core.durable(this.partitions.range(group, partition, start, count));
  }

  async partitionLength(group: string, partition: string): Promise<number> {
    this.check();
    return await this.core.durable(this.partitions.length(group, partition));
  }

  async partitionStats(group: string): Promise<PartitionStats> {
    this.check();
    return await this.core.durable(this.partitions.stats(group));
  }

  async partitionClear(group: string, partition: string): Promise<number> {
    this.check();
    return await this.core.durable(this.partitions.clear(group, partition));
  }

  async partitionDrop(group: string): Promise<number> {
    this.check();
    return await this.core.durable(this.partitions.drop(group));
  }

  // ---- several writes at once -------------------------------------------------------------

  async apply(effects: Effects): Promise<boolean> {
    this.check();
    checkEffects(effects);
    const applied = await this.core.durable(this.writeEffects(effects));
    if (applied) this.announce(effects);
    return applied;
  }

  private writeEffects(effects: Effects): boolean {
    return writeEffects(this.core, this.keyValues, this.lists, effects);
  }

  /** Publish `effects`' messages (once their writes are in the log). */
  private announce(effects: Effects): void {
    for (const { channel, message } of effects.publish ?? [])
      this.listeners.deliver(channel, message);
  }

  // ---- locks ------------------------------------------------------------------------------

  async lock(name: string, owner: string, ttlMs: number): Promise<number | null> {
    this.check();
    return await this.core.durable(this.locks.lock(name, owner, ttlMs));
  }

  async unlock(name: string, owner: string): Promise<boolean> {
    this.check();
    return await this.core.durable(this.locks.unlock(name, owner));
  }

  // ---- notifications ----------------------------------------------------------------------

  async publish(channel: string, message: string): Promise<void> {
    this.check();
    this.listeners.deliver(channel, message);
  }

  async subscribe(channel: string, listener: (message: string) => void): Promise<Unsubscribe> {
    this.check();
    const remove = this.listeners.add(channel, listener);
    return async () => {
      remove();
    };
  }

  // ---- lifecycle --------------------------------------------------------------------------

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.deadlines.stop();
    this.queues.close();
    this.pops.close();
    this.listeners.clear();
    const log = this.core.log;
    this.core.log = null;
    log?.close();
  }

  private check(): void {
    if (this.closed) throw new UnavailableError("store is closed");
    const failure = this.core.log?.error;
    if (failure)
      throw new UnavailableError(`store log write failed: ${messageOf(failure)}`, {
        cause: failure,
      });
  }
}
