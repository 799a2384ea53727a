/**
 * The Redis store's Lua scripts, one typed builder each: from typed inputs, the KEYS and ARGV in
 * the order the script's header (`lua/<file>.lua`) names them, and from its raw reply, a typed
 * result. Sources are loaded by `./script-loader.ts` and registered with ioredis `defineCommand`
 * (EVALSHA, falling back to EVAL after a server restart empties the script cache).
 *
 * Time is the server's (`TIME`), not the agent's: lease deadlines and delays are compared across
 * agents whose clocks may differ, and key TTLs (PX) are server-side anyway. Scripts that report a
 * time report a delta ("due in N ms"), so callers never mix clocks.
 *
 * A queue is a block of keys (`QUEUE_PARTS`, keys.ts). Global keys: `seq` (the fence / lock token
 * counter) and `due` (ZSET queue name -> earliest delay end or lease deadline, possibly early,
 * never late), which the periodic sweep reads. Wake-ups: a script that makes a queue's ready list
 * go from empty to non-empty publishes the queue's name on the wake channel; blocked claimers (in
 * every agent) try again. A claimer that found nothing was looking at an empty list, so the next
 * item to arrive publishes.
 */
import { InternalError } from "../../errors.js";
import { checkEffects } from "../checks.js";
import type {
  Claim,
  ClaimRef,
  Effects,
  EnqueueManyResult,
  HashScanPage,
  HashSetResult,
  PartitionPushResult,
  PartitionStats,
  QueueStats,
  SettleResult,
  WorkItem,
} from "../store.js";
import { QUEUE_PARTS, type KeyLayout } from "./keys.js";
import { loadScript, type LuaConstant } from "./script-loader.js";

/** Items moved per zset per call by the recovery step (the rest on the next call or sweep). */
export const RECOVER_LIMIT = 1000;
/** Expired hash fields dropped per call (the rest count as absent until a later call drops them). */
export const HASH_PURGE_LIMIT = 1000;

/** The constants the Lua sources use by name (declared by the loader in each script that does). */
export const LUA_CONSTANTS: Readonly<Record<string, LuaConstant>> = {
  QUEUE_PARTS,
  QUEUE_WIDTH: QUEUE_PARTS.length,
  RECOVER_LIMIT,
  HASH_PURGE_LIMIT,
};

/** Where the `.lua` files are: beside this module, in `src` (tests) and `dist` alike. */
export const LUA_DIR = new URL("./lua/", import.meta.url);

export type Arg = string | number;

/** One script: its file, its ioredis command, how to call it and what its reply means. */
export interface Script<I, R> {
  /** `lua/<file>.lua`. */
  readonly file: string;
  /** The command it is registered as on the connection (`kiln` + the file name in PascalCase). */
  readonly command: string;
  build(layout: KeyLayout, input: I): { keys: string[]; args: Arg[] };
  reply(raw: unknown, input: I): R;
}

function script<I, R>(
  file: string,
  build: Script<I, R>["build"],
  reply: Script<I, R>["reply"],
): Script<I, R> {
  const command = `kiln${file.replace(/(^|-)([a-z])/g, (_m, _dash, c: string) => c.toUpperCase())}`;
  return { file, command, build, reply };
}

// ---- replies --------------------------------------------------------------------------------

function unexpected(what: string, raw: unknown): InternalError {
  return new InternalError(`redis script ${what}: unexpected reply ${JSON.stringify(raw)}`);
}

function list(what: string, raw: unknown): unknown[] {
  if (!Array.isArray(raw)) throw unexpected(what, raw);
  return raw;
}

function int(what: string, raw: unknown): number {
  const value = typeof raw === "string" && raw !== "" ? Number(raw) : raw;
  if (typeof value !== "number" || !Number.isFinite(value)) throw unexpected(what, raw);
  return value;
}

function text(what: string, raw: unknown): string {
  if (typeof raw === "string") return raw;
  if (typeof raw === "number") return String(raw);
  throw unexpected(what, raw);
}

function textOrNull(what: string, raw: unknown): string | null {
  return raw === null || raw === undefined ? null : text(what, raw);
}

/** A script's "ms until due" (-1: nothing is due). */
function dueIn(what: string, raw: unknown): number | null {
  const ms = int(what, raw);
  return ms < 0 ? null : ms;
}

// ---- arguments ------------------------------------------------------------------------------

/** An optional number as a script takes it: '' for none. */
function optional(value: number | undefined): Arg {
  return value === undefined ? "" : value;
}

function fenceArg(fence: number): string {
  return Number.isSafeInteger(fence) ? String(fence) : "-1";
}

/** Each distinct queue once, in first-seen order: the blocks of a multi-queue script. */
function queueIndex(queues: readonly string[]): { names: string[]; index: (q: string) => number } {
  const names = [...new Set(queues)];
  return { names, index: (queue) => names.indexOf(queue) + 1 };
}

function queueBlocks(layout: KeyLayout, names: readonly string[]): string[] {
  return names.flatMap((name) => layout.queue(name).keys);
}

/** KEYS and ARGV for lua/includes/apply-effects.lua, in its order. */
function encodeEffects(layout: KeyLayout, effects: Effects): { keys: string[]; args: Arg[] } {
  checkEffects(effects);
  const keys: string[] = [];
  const args: Arg[] = [];
  if (effects.guard) {
    keys.push(layout.key(effects.guard.key));
    args.push("g", effects.guard.value, effects.guard.ttlMs ?? "");
  }
  for (const push of effects.push ?? []) {
    keys.push(layout.key(push.key));
    args.push("p", push.ttlMs ?? "", push.values.length, ...push.values);
  }
  for (const step of effects.incr ?? []) {
    keys.push(layout.key(step.key));
    args.push("i", step.by, step.min ?? "");
  }
  for (const expire of effects.expire ?? []) {
    keys.push(layout.key(expire.key));
    args.push("x", expire.ttlMs);
  }
  for (const { channel, message } of effects.publish ?? [])
    args.push("m", layout.channel(channel), message);
  return { keys, args };
}

// ---- work queues ----------------------------------------------------------------------------

/** A record written with an enqueue (EnqueueOptions.records). */
export interface EnqueueRecord {
  key: string;
  value: string;
}

/** Caps on a queue an enqueue respects (EnqueueOptions). */
export interface QueueCaps {
  maxPending: number | undefined;
  maxTotal: number | undefined;
}

export interface EnqueueInput extends QueueCaps {
  queue: string;
  items: readonly WorkItem[];
  delayMs: number;
  records: readonly EnqueueRecord[];
}

function enqueueReply(what: string, raw: unknown): EnqueueManyResult {
  const [accepted, reason, count] = list(what, raw);
  if (reason === undefined) return { accepted: int(what, accepted) };
  return {
    accepted: int(what, accepted),
    refused: { reason: reason === "pending" ? "pending" : "total", count: int(what, count) },
  };
}

export const ENQUEUE = script<EnqueueInput, EnqueueManyResult>(
  "enqueue",
  (layout, input) => ({
    keys: [
      ...layout.queue(input.queue).keys,
      layout.due,
      ...input.records.map((record) => layout.key(record.key)),
    ],
    args: [
      layout.wake,
      input.queue,
      input.delayMs,
      optional(input.maxPending),
      optional(input.maxTotal),
      input.records.length,
      ...input.records.map((record) => record.value),
      ...input.items.flatMap((item) => [item.id, item.payload]),
    ],
  }),
  (raw) => enqueueReply("enqueue", raw),
);

/** Who claims: CLAIM's inputs, and ENQUEUE_CLAIM's claimer. */
export interface Claimer {
  queues: readonly string[];
  owner: string;
  leaseMs: number;
  max: number;
}

/** What a claim attempt left in its queues. */
export type AfterClaim =
  /** Some queue still has ready items. */
  | { readonly readyLeft: true }
  /** None has: the earliest delay end or lease deadline among them is due in `dueInMs` (null: none). */
  | { readonly readyLeft: false; readonly dueInMs: number | null };

export interface ClaimReply {
  readonly claims: Claim[];
  readonly after: AfterClaim;
}

function claimReply(what: string, raw: unknown, queues: readonly string[]): ClaimReply {
  const reply = list(what, raw);
  const index = int(what, reply[0]);
  if (index === 0)
    return { claims: [], after: { readyLeft: false, dueInMs: dueIn(what, reply[1]) } };
  const left = int(what, reply[1]);
  const queue = queues[index - 1];
  if (queue === undefined) throw unexpected(what, raw);
  const claims: Claim[] = [];
  for (let i = 2; i + 3 < reply.length; i += 4) {
    claims.push({
      queue,
      id: text(what, reply[i]),
      payload: textOrNull(what, reply[i + 1]) ?? "",
      fence: int(what, reply[i + 2]),
      deliveries: int(what, reply[i + 3]),
    });
  }
  const after: AfterClaim =
    left === -2 ? { readyLeft: true } : { readyLeft: false, dueInMs: dueIn(what, left) };
  return { claims, after };
}

export const CLAIM = script<Claimer, ClaimReply>(
  "claim",
  (layout, input) => ({
    keys: [layout.seq, layout.due, ...queueBlocks(layout, input.queues)],
    args: [layout.wake, input.owner, input.leaseMs, input.max, ...input.queues],
  }),
  (raw, input) => claimReply("claim", raw, input.queues),
);

export interface EnqueueClaimInput extends QueueCaps {
  /** One of the claimer's queues. */
  queue: string;
  items: readonly WorkItem[];
  records: readonly EnqueueRecord[];
  claimer: Claimer;
}

export const ENQUEUE_CLAIM = script<
  EnqueueClaimInput,
  { enqueued: EnqueueManyResult; claimed: ClaimReply }
>(
  "enqueue-claim",
  (layout, input) => {
    const { claimer } = input;
    return {
      keys: [
        layout.seq,
        layout.due,
        ...queueBlocks(layout, claimer.queues),
        ...input.records.map((record) => layout.key(record.key)),
      ],
      args: [
        layout.wake,
        claimer.owner,
        claimer.leaseMs,
        claimer.max,
        claimer.queues.indexOf(input.queue) + 1,
        optional(input.maxPending),
        optional(input.maxTotal),
        input.items.length,
        input.records.length,
        ...input.items.flatMap((item) => [item.id, item.payload]),
        ...claimer.queues,
        ...input.records.map((record) => record.value),
      ],
    };
  },
  (raw, input) => {
    const [enqueued, claimed] = list("enqueue-claim", raw);
    return {
      enqueued: enqueueReply("enqueue-claim", enqueued),
      claimed: claimReply("enqueue-claim", claimed, input.claimer.queues),
    };
  },
);

export interface EnqueueTakeInput {
  queue: string;
  item: WorkItem;
  owner: string;
  leaseMs: number;
  records: readonly EnqueueRecord[];
}

/** An eager hand-over's outcome: recorded as claimed by the owner, or the id was already queued. */
export type EnqueueTakeReply = { taken: true; fence: number } | { taken: false };

export const ENQUEUE_TAKE = script<EnqueueTakeInput, EnqueueTakeReply>(
  "enqueue-take",
  (layout, input) => ({
    keys: [
      layout.seq,
      layout.due,
      ...layout.queue(input.queue).keys,
      ...input.records.map((record) => layout.key(record.key)),
    ],
    args: [
      input.owner,
      input.leaseMs,
      input.queue,
      input.item.id,
      input.item.payload,
      input.records.length,
      ...input.records.map((record) => record.value),
    ],
  }),
  (raw) => {
    const fence = int("enqueue-take", raw);
    return fence > 0 ? { taken: true, fence } : { taken: false };
  },
);

/** Whether a hand-over ran: the owner holds the item on its first delivery, with this fence. */
export type HandedOverReply = { ran: true; fence: number } | { ran: false };

export const HANDED_OVER = script<{ queue: string; id: string; owner: string }, HandedOverReply>(
  "handed-over",
  (layout, input) => ({ keys: [...layout.queue(input.queue).keys], args: [input.id, input.owner] }),
  (raw) => {
    const fence = raw === null ? 0 : int("handed-over", raw);
    return fence > 0 ? { ran: true, fence } : { ran: false };
  },
);

/** Per claim: whether it is still held (and its lease now runs `leaseMs` from now). */
export const RENEW = script<{ claims: readonly ClaimRef[]; leaseMs: number }, boolean[]>(
  "renew",
  (layout, input) => {
    const { names, index } = queueIndex(input.claims.map((claim) => claim.queue));
    const refs = input.claims.flatMap((ref) => [index(ref.queue), ref.id, fenceArg(ref.fence)]);
    return {
      keys: queueBlocks(layout, names),
      args: [layout.wake, input.leaseMs, names.length, ...names, ...refs],
    };
  },
  (raw) => list("renew", raw).map((held) => int("renew", held) === 1),
);

/** Whether the claim was still held (and is now complete). */
export const COMPLETE = script<{ claim: ClaimRef }, boolean>(
  "complete",
  (layout, { claim }) => ({
    keys: [...layout.queue(claim.queue).keys],
    args: [layout.wake, claim.queue, claim.id, fenceArg(claim.fence)],
  }),
  (raw) => int("complete", raw) !== 0,
);

export interface SettleEntry {
  claim: ClaimRef;
  effects: Effects;
}

export const SETTLE = script<{ entries: readonly SettleEntry[] }, SettleResult[]>(
  "settle",
  (layout, input) => {
    const { names, index } = queueIndex(input.entries.map(({ claim }) => claim.queue));
    const keys = queueBlocks(layout, names);
    const args: Arg[] = [layout.wake, names.length, ...names];
    for (const { claim, effects } of input.entries) {
      const encoded = encodeEffects(layout, effects);
      keys.push(...encoded.keys);
      args.push(
        index(claim.queue),
        claim.id,
        fenceArg(claim.fence),
        encoded.keys.length,
        encoded.args.length,
        ...encoded.args,
      );
    }
    return { keys, args };
  },
  (raw) =>
    list("settle", raw).map((r): SettleResult => {
      const code = int("settle", r);
      return code === 0 ? "stale" : code === 1 ? "applied" : "guarded";
    }),
);

/** Whether everything was applied (false: the guard found its key, nothing was). */
export const APPLY = script<{ effects: Effects }, boolean>(
  "apply",
  (layout, input) => encodeEffects(layout, input.effects),
  (raw) => int("apply", raw) === 1,
);

export interface ReleaseInput {
  claim: ClaimRef;
  delayMs: number;
  front: boolean;
  payload: string | undefined;
}

/** Whether the claim was still held (and is now released). */
export const RELEASE = script<ReleaseInput, boolean>(
  "release",
  (layout, { claim, delayMs, front, payload }) => ({
    keys: [...layout.queue(claim.queue).keys, layout.due],
    args: [
      layout.wake,
      claim.queue,
      claim.id,
      fenceArg(claim.fence),
      delayMs,
      front ? "1" : "0",
      payload === undefined ? "0" : "1",
      payload ?? "",
    ],
  }),
  (raw) => int("release", raw) === 1,
);

export const REMOVE = script<{ queue: string; id: string }, "pending" | "claimed" | null>(
  "remove",
  (layout, input) => ({
    keys: [...layout.queue(input.queue).keys],
    args: [layout.wake, input.queue, input.id],
  }),
  (raw) => (raw === "pending" || raw === "claimed" ? raw : null),
);

export const STATS = script<{ queue: string }, QueueStats>(
  "stats",
  (layout, input) => ({
    keys: [...layout.queue(input.queue).keys],
    args: [layout.wake, input.queue],
  }),
  (raw) => {
    const [pending, claimed, delayed] = list("stats", raw).map((n) => int("stats", n));
    return { pending: pending!, claimed: claimed!, delayed: delayed! };
  },
);

/** How many items were dropped. */
export const DROP_QUEUE = script<{ queue: string }, number>(
  "drop-queue",
  (layout, input) => ({
    keys: [...layout.queue(input.queue).keys, layout.due],
    args: [input.queue],
  }),
  (raw) => int("drop-queue", raw),
);

/** A claim as {@link RedisStore.listClaims} reports it. */
export interface ClaimInfo {
  id: string;
  owner: string;
  fence: number;
  /** Time left on the lease in ms (<= 0: lapsed, not yet recovered). */
  leaseLeftMs: number;
}

export const LIST_CLAIMS = script<{ queue: string }, ClaimInfo[]>(
  "list-claims",
  (layout, input) => ({ keys: [...layout.queue(input.queue).keys], args: [] }),
  (raw) => {
    const rows = list("list-claims", raw);
    const claims: ClaimInfo[] = [];
    for (let i = 0; i + 3 < rows.length; i += 4) {
      claims.push({
        id: text("list-claims", rows[i]),
        owner: text("list-claims", rows[i + 1]),
        fence: int("list-claims", rows[i + 2]),
        leaseLeftMs: int("list-claims", rows[i + 3]),
      });
    }
    return claims;
  },
);

/** The queues the sweep should recover now, and when the next one is due (null: none). */
export interface DueQueues {
  names: string[];
  nextDueInMs: number | null;
}

export const DUE_QUEUES = script<{ limit: number }, DueQueues>(
  "due-queues",
  (layout, input) => ({ keys: [layout.due], args: [input.limit] }),
  (raw) => {
    const [next, ...names] = list("due-queues", raw);
    return {
      nextDueInMs: dueIn("due-queues", next),
      names: names.map((name) => text("due-queues", name)),
    };
  },
);

/** ms until the queue's next delay end or lease deadline; null when nothing is delayed or claimed. */
export const SWEEP_QUEUE = script<{ queue: string }, number | null>(
  "sweep-queue",
  (layout, input) => ({
    keys: [...layout.queue(input.queue).keys, layout.due],
    args: [layout.wake, input.queue],
  }),
  (raw) => dueIn("sweep-queue", raw),
);

// ---- keys, counters, lists, locks -----------------------------------------------------------

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

// ---- all of them ----------------------------------------------------------------------------

/** Every script the store runs (each `lua/*.lua` file is one of these). */
export const SCRIPTS: readonly Script<never, unknown>[] = [
  ENQUEUE,
  CLAIM,
  ENQUEUE_CLAIM,
  ENQUEUE_TAKE,
  HANDED_OVER,
  RENEW,
  COMPLETE,
  SETTLE,
  APPLY,
  RELEASE,
  REMOVE,
  STATS,
  DROP_QUEUE,
  LIST_CLAIMS,
  DUE_QUEUES,
  SWEEP_QUEUE,
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

let sources: Readonly<Record<string, { lua: string }>> | null = null;

/**
 * Every script's source, by command name, as ioredis `defineCommand` (the `scripts` connection
 * option) takes them. The files are read on the first call only.
 */
export function scriptDefinitions(): Readonly<Record<string, { lua: string }>> {
  sources ??= Object.fromEntries(
    SCRIPTS.map((s) => [
      s.command,
      { lua: loadScript(s.file, { dir: LUA_DIR, constants: LUA_CONSTANTS }) },
    ]),
  );
  return sources;
}
