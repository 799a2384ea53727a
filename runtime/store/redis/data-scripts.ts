/**
 * Typed builders of the scripts over keys, counters, lists, locks, hashes (dicts with per-field
 * expiry, see `lua/includes/hash-fields.lua`) and partitioned lists.
 */
import type { HashScanPage, HashSetResult, PartitionPushResult, PartitionStats } from "../store.js";
import {
  int,
  list,
  optional,
  script,
  text,
  textOrNull,
  type Arg,
  type Script,
} from "./script-builder.js";

// ---- keys, counters, lists, locks ---------------------------------------------------------

export const GET_MANY = script<{ keys: readonly string[] }, (string | null)[]>(
  "get-many",
  (layout, input) => ({ keys: input.keys.map((key) => layout.key(key)), args: [] }),
  (raw) => list("get-many", raw).map((value) => textOrNull("get-many", value)),
);

/** The new value, or null when a bound refused the step. */
export const INCR = script<
  { key: string; by: number; max: number | undefined; min: number | undefined },
  number | null
>(
  "incr",
  (layout, input) => ({
    keys: [layout.key(input.key)],
    args: [input.by, optional(input.max), optional(input.min)],
  }),
  (raw) => (raw === null ? null : int("incr", raw)),
);

/** The list's new length. */
export const LIST_PUSH = script<
  { key: string; values: readonly string[]; ttlMs: number | undefined },
  number
>(
  "list-push",
  (layout, input) => ({
    keys: [layout.key(input.key)],
    args: [optional(input.ttlMs), ...input.values],
  }),
  (raw) => int("list-push", raw),
);

/** The lock's fencing token, or null when another owner holds it. */
export const LOCK = script<
  { name: string; owner: string; ttlMs: number },
  { token: number } | null
>(
  "lock",
  (layout, input) => ({
    keys: [layout.lock(input.name), layout.seq],
    args: [input.owner, input.ttlMs],
  }),
  (raw) => (raw === null ? null : { token: int("lock", raw) }),
);

/** Whether the owner held the lock (now released). */
export const UNLOCK = script<{ name: string; owner: string }, boolean>(
  "unlock",
  (layout, input) => ({ keys: [layout.lock(input.name)], args: [input.owner] }),
  (raw) => int("unlock", raw) === 1,
);

// ---- hashes (dicts) -------------------------------------------------------------------------

export const HASH_GET = script<
  { hash: string; field: string; idleMs: number | undefined },
  string | null
>(
  "hash-get",
  (layout, input) => ({
    keys: [...layout.hash(input.hash)],
    args: [input.field, optional(input.idleMs)],
  }),
  (raw) => textOrNull("hash-get", raw),
);

export interface HashSetInput {
  hash: string;
  entries: readonly (readonly [string, string])[];
  ifAbsent: boolean;
  ttlMs: number | undefined;
  idleMs: number | undefined;
  maxFields: number | undefined;
}

export const HASH_SET = script<HashSetInput, HashSetResult>(
  "hash-set",
  (layout, input) => {
    const args: Arg[] = [
      input.ifAbsent ? "1" : "0",
      optional(input.ttlMs),
      optional(input.idleMs),
      optional(input.maxFields),
    ];
    for (const [field, value] of input.entries) args.push(field, value);
    return { keys: [...layout.hash(input.hash)], args };
  },
  (raw) => {
    const [ok, n] = list("hash-set", raw);
    return int("hash-set", ok) === 1
      ? { ok: true, written: int("hash-set", n) }
      : { ok: false, count: int("hash-set", n) };
  },
);

/** The removed value, or null when absent or expired. */
export const HASH_DELETE = script<{ hash: string; field: string }, string | null>(
  "hash-delete",
  (layout, input) => ({ keys: [...layout.hash(input.hash)], args: [input.field] }),
  (raw) => textOrNull("hash-delete", raw),
);

export const HASH_LENGTH = script<{ hash: string }, number>(
  "hash-length",
  (layout, input) => ({ keys: [...layout.hash(input.hash)], args: [] }),
  (raw) => int("hash-length", raw),
);

export const HASH_SCAN = script<{ hash: string; cursor: string; count: number }, HashScanPage>(
  "hash-scan",
  (layout, input) => ({
    keys: layout.hash(input.hash).slice(0, 2),
    args: [input.cursor, input.count],
  }),
  (raw) => {
    const [next, ...rows] = list("hash-scan", raw);
    const entries: [string, string][] = [];
    for (let i = 0; i + 1 < rows.length; i += 2)
      entries.push([text("hash-scan", rows[i]), text("hash-scan", rows[i + 1])]);
    return { cursor: text("hash-scan", next), entries };
  },
);

/** How many live fields the hash had. */
export const HASH_DROP = script<{ hash: string }, number>(
  "hash-drop",
  (layout, input) => ({ keys: [...layout.hash(input.hash)], args: [] }),
  (raw) => int("hash-drop", raw),
);

// ---- partitioned lists ----------------------------------------------------------------------

export interface PartitionPushInput {
  group: string;
  partition: string;
  values: readonly string[];
  ttlMs: number | undefined;
  maxLength: number | undefined;
  maxPartitions: number | undefined;
}

export const PARTITION_PUSH = script<PartitionPushInput, PartitionPushResult>(
  "partition-push",
  (layout, input) => ({
    keys: [layout.partition(input.group, input.partition), layout.partitionIndex(input.group)],
    args: [
      input.partition,
      optional(input.ttlMs),
      optional(input.maxLength),
      optional(input.maxPartitions),
      layout.partitionPrefix(input.group),
      ...input.values,
    ],
  }),
  (raw) => {
    const [ok, second, count] = list("partition-push", raw);
    if (int("partition-push", ok) === 1) return { ok: true, length: int("partition-push", second) };
    return {
      ok: false,
      reason: second === "partitions" ? "partitions" : "length",
      count: int("partition-push", count),
    };
  },
);

export const PARTITION_STATS = script<{ group: string }, PartitionStats>(
  "partition-stats",
  (layout, input) => ({
    keys: [layout.partitionIndex(input.group)],
    args: [layout.partitionPrefix(input.group)],
  }),
  (raw) => {
    const [partitions, items] = list("partition-stats", raw);
    return { partitions: int("partition-stats", partitions), items: int("partition-stats", items) };
  },
);

/** How many values the partition had. */
export const PARTITION_CLEAR = script<{ group: string; partition: string }, number>(
  "partition-clear",
  (layout, input) => ({
    keys: [layout.partition(input.group, input.partition), layout.partitionIndex(input.group)],
    args: [input.partition],
  }),
  (raw) => int("partition-clear", raw),
);

/** How many values the group had. */
export const PARTITION_DROP = script<{ group: string }, number>(
  "partition-drop",
  (layout, input) => ({
    keys: [layout.partitionIndex(input.group)],
    args: [layout.partitionPrefix(input.group)],
  }),
  (raw) => int("partition-drop", raw),
);

/** These scripts, for the registry (`scripts.ts`). */
export const DATA_SCRIPTS: readonly Script<never, unknown>[] = [
  GET_MANY,
  INCR,
  LIST_PUSH,
  LOCK,
  UNLOCK,
  HASH_GET,
  HASH_SET,
  HASH_DELETE,
  HASH_LENGTH,
  HASH_SCAN,
  HASH_DROP,
  PARTITION_PUSH,
  PARTITION_STATS,
  PARTITION_CLEAR,
  PARTITION_DROP,
];
