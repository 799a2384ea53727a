/**
 * Typed builders of the work-queue scripts (enqueue, claim, renew, settle, release, the sweep's),
 * and of APPLY, which shares settle's effects. Time is the server's (`TIME`): scripts that report
 * a time report a delta ("due in N ms"), so callers never mix clocks. A script that makes a
 * queue's ready list go from empty to non-empty publishes the queue's name on the wake channel;
 * blocked claimers (in every agent) try again.
 */
import { checkEffects } from "../checks.js";
import type {
  Claim,
  ClaimRef,
  Effects,
  EnqueueManyResult,
  QueueStats,
  SettleResult,
  WorkItem,
} from "../store.js";
import type { KeyLayout } from "./keys.js";
import {
  dueIn,
  fenceArg,
  int,
  list,
  optional,
  queueBlocks,
  queueIndex,
  script,
  text,
  textOrNull,
  unexpected,
  type Arg,
  type Script,
} from "./script-builder.js";

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

/** The work-queue scripts, for the registry (`scripts.ts`). */
export const QUEUE_SCRIPTS: readonly Script<never, unknown>[] = [
  ENQUEUE,
  CLAIM,
  ENQUEUE_CLAIM,
  ENQUEUE_TAKE,
  HANDED_OVER,
  RENEW,
  SETTLE,
  APPLY,
  RELEASE,
  REMOVE,
  STATS,
  DROP_QUEUE,
  LIST_CLAIMS,
  DUE_QUEUES,
  SWEEP_QUEUE,
];
