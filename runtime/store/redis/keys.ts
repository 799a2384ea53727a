/**
 * The Redis store's key layout: the name of every key and channel under the namespace `prefix`.
 * The scripts (`./scripts.ts`) take their KEYS from here; nothing else builds a key name.
 */

/**
 * A work queue is a block of these keys, in this order, in a queue script's KEYS (the Lua side
 * reads the block with `qkeys`, generated from this list: its width is defined here only):
 * - `ready`   LIST  of claimable ids, claim order (release front: LPUSH, back: RPUSH).
 * - `delayed` ZSET  id -> time it becomes claimable (ms).
 * - `claimed` ZSET  id -> lease deadline (ms).
 * - `payload` HASH  id -> payload; an id is in the queue exactly while it has a payload here.
 * - `claims`  HASH  id -> how many times it was claimed (a claim's `deliveries` is this minus 1).
 * - `fence`   HASH  id -> fence of the current claim (claimed items only).
 * - `owner`   HASH  id -> owner of the current claim (claimed items only).
 * - `front`   HASH  id -> 1 for delayed items that go to the front when their delay ends.
 */
export const QUEUE_PARTS = [
  "ready",
  "delayed",
  "claimed",
  "payload",
  "claims",
  "fence",
  "owner",
  "front",
] as const;

/**
 * A hash (dict) is three keys, in this order: `v` HASH field -> value; `d` ZSET field -> deadline
 * (ms, server time); `x` HASH field -> end of its fixed TTL. See `lua/includes/hash-fields.lua`.
 */
export const HASH_PARTS = ["v", "d", "x"] as const;

/** A queue's name and its keys, in {@link QUEUE_PARTS} order. */
export interface QueueBlock {
  readonly name: string;
  readonly keys: readonly string[];
}

/**
 * Key layout under the namespace `prefix` (default `kiln:`):
 * - `<prefix>k:<key>`            keys and lists (one namespace, as the interface has it)
 * - `<prefix>q:<queue>:<part>`   a work queue ({@link QUEUE_PARTS})
 * - `<prefix>l:<name>`           locks, valued `<token>:<owner>`
 * - `<prefix>seq`                fences and lock tokens (one counter, strictly increasing)
 * - `<prefix>due`                queues with delays or leases, by their earliest deadline (ZSET)
 * - `<prefix>h:<hash>:<part>`    a hash (dict) ({@link HASH_PARTS})
 * - `<prefix>p:<group>\0<part>`  one list per partition of a group, `<prefix>pi:<group>` its index
 * - channels `<prefix>c:<channel>` (publish/subscribe) and `<prefix>wake` (queue wake-ups)
 */
export class KeyLayout {
  /** The fence and lock-token counter. */
  readonly seq: string;
  /** ZSET queue name -> earliest delay end or lease deadline (possibly early, never late). */
  readonly due: string;
  /** The channel a queue's name is published on when its ready list goes from empty to non-empty. */
  readonly wake: string;
  /** What every key of {@link key} starts with. */
  readonly keyPrefix: string;

  constructor(readonly prefix: string) {
    this.seq = `${prefix}seq`;
    this.due = `${prefix}due`;
    this.wake = `${prefix}wake`;
    this.keyPrefix = `${prefix}k:`;
  }

  /** A key or list of the interface's one key namespace. */
  key(key: string): string {
    return this.keyPrefix + key;
  }

  /** The SCAN MATCH pattern of the keys that start with `prefix` (`* ? [ ] \` taken literally). */
  keysMatching(prefix: string): string {
    return `${(this.keyPrefix + prefix).replace(/[*?[\]\\]/g, "\\$&")}*`;
  }

  queue(name: string): QueueBlock {
    const base = `${this.prefix}q:${name}:`;
    return { name, keys: QUEUE_PARTS.map((part) => base + part) };
  }

  /** A hash's keys, in {@link HASH_PARTS} order. */
  hash(name: string): readonly string[] {
    const base = `${this.prefix}h:${name}:`;
    return HASH_PARTS.map((part) => base + part);
  }

  lock(name: string): string {
    return `${this.prefix}l:${name}`;
  }

  channel(name: string): string {
    return `${this.prefix}c:${name}`;
  }

  /** What the lists of a group's partitions are named: this, then the partition. */
  partitionPrefix(group: string): string {
    return `${this.prefix}p:${group}\u0000`;
  }

  partition(group: string, partition: string): string {
    return this.partitionPrefix(group) + partition;
  }

  partitionIndex(group: string): string {
    return `${this.prefix}pi:${group}`;
  }
}
