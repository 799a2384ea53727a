/**
 * The store: everything an agent keeps that must outlive a request, behind one async interface
 * with two implementations, `embedded` (in-process, the default) and `redis` (several hosts).
 * One contract suite (`test/store/contract.ts`) runs against both; what it promises and what it
 * deliberately does not is in ARCHITECTURE.md, "The store contract".
 */

export interface SetOptions {
  /** Expire the key this many milliseconds from now. */
  ttlMs?: number;
  /** Only set if the key does not exist (returns false when it did). */
  ifAbsent?: boolean;
}

export interface IncrOptions {
  /** Refuse (return null, change nothing) when the result would be above this. */
  max?: number;
  /** Refuse (return null, change nothing) when the result would be below this. */
  min?: number;
}

export interface EnqueueOptions {
  /** Refuse with `{ ok: false, reason: "pending" }` when the queue already holds this many pending items. */
  maxPending?: number;
  /** Refuse with `{ ok: false, reason: "total" }` when pending + claimed items already reach this. */
  maxTotal?: number;
  /** Make the item claimable only after this many milliseconds (retry backoff). */
  delayMs?: number;
  /**
   * Keys set (no TTL) in the same atomic step, only when the (first) item is accepted: a record
   * that exists exactly when its input was queued, at no extra round trip. Nothing is written
   * when the item is refused.
   */
  records?: readonly { key: string; value: string }[];
  /**
   * A single item with no delay may go straight to an `eager` claimer of this store that is
   * waiting on the queue: the claimer gets it at once, before the store has recorded anything, and
   * starts the work while the store records the item as claimed by it (see {@link Claim.recorded}).
   * Such an item never waits in the queue, so `maxPending` and `maxTotal` do not apply to it.
   * Stores that cannot hand over early ignore this.
   */
  eager?: boolean;
}

export type EnqueueResult =
  { ok: true } | { ok: false; reason: "pending" | "total"; count: number };

/** `accepted`: how many of the items, from the first, are queued (or were already); `refused`: why the next one was not. */
export interface EnqueueManyResult {
  accepted: number;
  refused?: { reason: "pending" | "total"; count: number };
}

export interface WorkItem {
  /** Unique within the queue; enqueueing an id already present (pending or claimed) is a no-op. */
  id: string;
  payload: string;
}

export interface Claim extends WorkItem {
  queue: string;
  /** Strictly increasing per store across all claims; identifies this delivery. */
  fence: number;
  /** How many times this item has been claimed before this claim (0 on the first delivery). */
  deliveries: number;
  /**
   * Present only on an eager hand-over (EnqueueOptions.eager) that the store has not recorded yet:
   * resolves once it has (`fence` is then set, and the store removes this field), rejects when it
   * did not (the store failed before recording it, or the id was already queued: the queued copy
   * runs instead). A store whose answer was lost finds out whether it recorded it first. Until
   * it resolves, the claimer may run the work but must not settle, release or renew the claim, nor
   * hand its outcome to anyone.
   */
  recorded?: Promise<void>;
}

export interface ClaimOptions {
  /** Who holds the claim (agent id); recorded for status and stalled-work sweeps. */
  owner: string;
  /** The claim lapses back to pending unless renewed within this many milliseconds. */
  leaseMs: number;
  /** At most this many items (default 1). */
  max?: number;
  /** Block up to this long for the first item (0 = return at once). */
  waitMs?: number;
  /** Abort the wait early (returns what was claimed so far, possibly nothing). */
  signal?: AbortSignal;
  /**
   * Asked when an eager enqueue (see EnqueueOptions.eager) finds this claimer waiting: whether it
   * can start an item at once (a free slot is ready now). Without it the claimer takes none.
   */
  eager?: () => boolean;
}

export interface ClaimRef {
  queue: string;
  id: string;
  fence: number;
}

export interface ReleaseOptions {
  /** Make the item claimable again only after this delay. */
  delayMs?: number;
  /** Put it at the front of the queue (default true): a platform retry should not wait behind new work. */
  front?: boolean;
  /** Replace the payload (e.g. with an incremented attempt counter). */
  payload?: string;
}

/**
 * Writes applied together, atomically, in this order: `guard`, `push`, `incr`, `expire`, then
 * `publish` once they are stored. `settle(claim, effects)` applies them only when the claim is
 * still held, so a result written this way is fenced; `apply(effects)` applies them with no claim.
 * This is how an input's outcome is stored and announced in one store round trip.
 */
export interface Effects {
  /** Set only when absent; when the key exists (someone settled first), nothing else is applied. */
  guard?: { key: string; value: string; ttlMs?: number };
  /** Append to lists (the list expires `ttlMs` after this push when given, as in `listPush`). */
  push?: readonly { key: string; values: readonly string[]; ttlMs?: number }[];
  /** Move counters as `incr` does (the key keeps its TTL); a step that would go below `min` is skipped. */
  incr?: readonly { key: string; by: number; min?: number }[];
  /** Give existing keys (or lists) a TTL; a missing key is left missing. */
  expire?: readonly { key: string; ttlMs: number }[];
  /** Messages published after the writes, when they were applied. */
  publish?: readonly { channel: string; message: string }[];
}

export type SettleResult = "applied" | "guarded" | "stale";

export interface QueueStats {
  pending: number;
  claimed: number;
  /** Pending items waiting out a delay (included in `pending`). */
  delayed: number;
}

export interface ListPopOptions {
  /** At most this many values (default 1). */
  max?: number;
  /** Block up to this long for the first value (0 = return at once). */
  waitMs?: number;
  signal?: AbortSignal;
}

export type Unsubscribe = () => Promise<void>;

export interface HashSetOptions {
  /** Write only fields that are absent (present ones keep their value and deadlines). */
  ifAbsent?: boolean;
  /** Each written field expires this many ms from now, reads or not (a write without it clears an old one). */
  ttlMs?: number;
  /** Each written field expires after this many ms without a write (or a read that passes `idleMs`). */
  idleMs?: number;
  /** Refuse the whole write (nothing written) when the hash would then hold more than this many live fields. */
  maxFields?: number;
}

/** `written`: fields written (skipped `ifAbsent` fields are not counted). `count`: live fields when refused. */
export type HashSetResult = { ok: true; written: number } | { ok: false; count: number };

export interface HashReadOptions {
  /** Refresh the field's inactivity deadline to this many ms from now (never past its fixed TTL). */
  idleMs?: number;
}

export interface HashScanPage {
  /** Pass back for the next page; "0" when the scan is complete. */
  cursor: string;
  entries: [field: string, value: string][];
}

export interface PartitionPushOptions {
  /** The partition expires this many ms after this push (absent: keeps its expiry, if any). */
  ttlMs?: number;
  /** Refuse (nothing pushed) when the partition would hold more than this many items. */
  maxLength?: number;
  /** Refuse (nothing pushed) when the push would make the group hold more than this many partitions. */
  maxPartitions?: number;
}

export type PartitionPushResult =
  { ok: true; length: number } | { ok: false; reason: "length" | "partitions"; count: number };

export interface PartitionStats {
  /** Partitions holding items. */
  partitions: number;
  /** Items over all partitions. */
  items: number;
}

export interface Store {
  /** Which implementation ("embedded" | "redis"), for `kiln status`. */
  readonly kind: string;

  // ---- keys -------------------------------------------------------------------------------
  get(key: string): Promise<string | null>;
  getMany(keys: readonly string[]): Promise<(string | null)[]>;
  /** Returns false only when `ifAbsent` was set and the key existed. */
  set(key: string, value: string, options?: SetOptions): Promise<boolean>;
  /** Returns whether the key existed. */
  delete(key: string): Promise<boolean>;
  /** Keys that start with `prefix`, in lexicographic order. For listings, not hot paths. */
  keys(prefix: string): Promise<string[]>;
  /** Remaining time to live in ms, null when the key has no TTL or does not exist. */
  ttl(key: string): Promise<number | null>;

  // ---- counters ---------------------------------------------------------------------------
  /** Atomically add `by` (may be negative); returns the new value, or null when a bound refused it. */
  incr(key: string, by: number, options?: IncrOptions): Promise<number | null>;

  // ---- work queues with leases ------------------------------------------------------------
  enqueue(queue: string, item: WorkItem, options?: EnqueueOptions): Promise<EnqueueResult>;
  /**
   * Enqueue `items` in order in one atomic step, each as `enqueue` would; the first one refused
   * (a cap) stops it, and nothing after it is queued.
   */
  enqueueMany(
    queue: string,
    items: readonly WorkItem[],
    options?: EnqueueOptions,
  ): Promise<EnqueueManyResult>;
  /**
   * Move up to `max` items from pending to claimed, atomically, each with a lease of `leaseMs`.
   * `queues` are tried in order (the first non-empty wins). Blocks up to `waitMs` for the first.
   */
  claim(queues: readonly string[], options: ClaimOptions): Promise<Claim[]>;
  /** Extend leases; returns, per claim, whether it is still held (false: lapsed and re-claimed, or gone). */
  renew(claims: readonly ClaimRef[], leaseMs: number): Promise<boolean[]>;
  /** Finish a claim (ack). False when the claim is stale: the item was re-delivered or removed. */
  complete(claim: ClaimRef): Promise<boolean>;
  /**
   * Finish a claim and apply `effects` in the same atomic step: "applied"; "guarded" when the
   * claim was finished but the effects' guard found its key (nothing else written); "stale" when
   * the claim is no longer held (nothing finished, written or published).
   */
  settle(claim: ClaimRef, effects: Effects): Promise<SettleResult>;
  /** `settle` for each entry, in order, in one round trip (each entry atomic on its own). */
  settleMany(entries: readonly { claim: ClaimRef; effects: Effects }[]): Promise<SettleResult[]>;
  /** Give a claimed item back to pending. False when the claim is stale. */
  release(claim: ClaimRef, options?: ReleaseOptions): Promise<boolean>;
  /** Remove an item whether pending or claimed (cancel). Returns where it was. */
  remove(queue: string, id: string): Promise<"pending" | "claimed" | null>;
  stats(queue: string): Promise<QueueStats>;
  /** Drop a queue with everything in it; returns how many items were dropped. */
  dropQueue(queue: string): Promise<number>;

  // ---- lists (outputs of a map, dict/queue primitives later) -------------------------------
  /** Append values; the list expires `ttlMs` after the last push when given. Returns the new length. */
  listPush(key: string, values: readonly string[], options?: { ttlMs?: number }): Promise<number>;
  /** Pop from the head, blocking up to `waitMs` for the first value. */
  listPop(key: string, options?: ListPopOptions): Promise<string[]>;
  listLength(key: string): Promise<number>;

  // ---- hashes (dicts): fields with a fixed TTL and an inactivity expiry ----------------------
  /** The field's value, null when absent or expired. Refreshes its inactivity deadline when `idleMs` is given. */
  hashGet(hash: string, field: string, options?: HashReadOptions): Promise<string | null>;
  /** Write fields (a later duplicate in `entries` wins; with `ifAbsent` the first). Atomic, capped by `maxFields`. */
  hashSet(
    hash: string,
    entries: readonly (readonly [field: string, value: string])[],
    options?: HashSetOptions,
  ): Promise<HashSetResult>;
  /** Remove a field; returns its value (null when absent or expired). */
  hashDelete(hash: string, field: string): Promise<string | null>;
  /** Live fields. */
  hashLength(hash: string): Promise<number>;
  /** A page of about `count` live fields from `cursor` ("0" to start). */
  hashScan(hash: string, cursor: string, count: number): Promise<HashScanPage>;
  /** Remove the hash; returns how many live fields it held. */
  hashDrop(hash: string): Promise<number>;

  // ---- partitioned lists (queues) ---------------------------------------------------------
  /** Append to a partition of `group`, refusing atomically past `maxLength` / `maxPartitions`. */
  partitionPush(
    group: string,
    partition: string,
    values: readonly string[],
    options?: PartitionPushOptions,
  ): Promise<PartitionPushResult>;
  /** Pop from the partition's head, blocking up to `waitMs` for the first value; each value goes to exactly one caller. */
  partitionPop(group: string, partition: string, options?: ListPopOptions): Promise<string[]>;
  /** Up to `count` values from index `start` (0 = head), without removing them. */
  partitionRange(group: string, partition: string, start: number, count: number): Promise<string[]>;
  partitionLength(group: string, partition: string): Promise<number>;
  partitionStats(group: string): Promise<PartitionStats>;
  /** Empty one partition; returns how many values it held. */
  partitionClear(group: string, partition: string): Promise<number>;
  /** Drop every partition of the group; returns how many values they held. */
  partitionDrop(group: string): Promise<number>;

  // ---- several writes at once -------------------------------------------------------------
  /** Apply `effects` atomically. False when `guard` found its key (nothing else was applied). */
  apply(effects: Effects): Promise<boolean>;

  // ---- locks with fencing -----------------------------------------------------------------
  /** Take or re-take (same owner) a lock for `ttlMs`. Returns a fencing token, or null if held by another. */
  lock(name: string, owner: string, ttlMs: number): Promise<number | null>;
  /** Release a lock if `owner` holds it. */
  unlock(name: string, owner: string): Promise<boolean>;

  // ---- notifications ----------------------------------------------------------------------
  publish(channel: string, message: string): Promise<void>;
  subscribe(channel: string, listener: (message: string) => void): Promise<Unsubscribe>;

  /** Stop background work and flush; further calls reject with UnavailableError. */
  close(): Promise<void>;
}
