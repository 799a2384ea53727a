/**
 * The agent's HTTP API: paths and zod schemas of every body, shared by the agent (which
 * validates requests with them) and the client (which types its calls with them).
 *
 * Values (arguments, results) travel serde-encoded, as strings inside JSON.
 * Every long wait is bounded by `waitMs` (at most {@link MAX_WAIT_MS}); clients loop.
 */
import { z } from "zod";
import { InvalidError, messageOf, type WireError } from "./errors.js";
import { decode, MAX_INLINE_PAYLOAD_BYTES } from "./serde.js";
import {
  MAX_DICT_MAX_ENTRIES,
  MAX_DICT_INACTIVITY_EXPIRY_S,
  MAX_DICT_UPDATE_ENTRIES,
  MAX_EPHEMERAL_TTL_MS,
  MAX_QUEUE_GET_MANY,
  MAX_QUEUE_MAX_PARTITION_ITEMS,
  MAX_QUEUE_MAX_PARTITIONS,
  MAX_QUEUE_PARTITION_TTL_S,
  MIN_DICT_INACTIVITY_EXPIRY_S,
  MIN_EPHEMERAL_TTL_MS,
  MIN_QUEUE_PARTITION_TTL_S,
} from "./spec/limits.js";
import type { Maxima } from "./spec/maxima.js";
import type { GpuOffer } from "./containers/gpu-offers.js";

/** The longest one request holds for an outcome; clients poll again after it. */
export const MAX_WAIT_MS = 50_000;

export const waitQuery = z
  .object({ waitMs: z.coerce.number().int().min(0).max(MAX_WAIT_MS).default(0) })
  .strict();

export const wireErrorSchema: z.ZodType<WireError> = z.object({
  type: z.string(),
  code: z.string(),
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
  remote: z
    .object({
      name: z.string(),
      message: z.string(),
      stack: z.string().optional(),
      fields: z.record(z.string(), z.unknown()).optional(),
    })
    .optional(),
}) as unknown as z.ZodType<WireError>;

export type Outcome = { ok: true; value: string } | { ok: false; error: WireError };

export const callStatus = z.enum(["pending", "running", "succeeded", "failed", "cancelled"]);
export type CallStatus = z.infer<typeof callStatus>;

// ---- control API --------------------------------------------------------------------------

export const artifactBody = z
  .object({
    code: z.string().min(1),
    exports: z.array(z.string()),
  })
  .strict();
export type ArtifactBody = z.infer<typeof artifactBody>;

export const deployBody = z
  .object({
    /** The AppSpec as the user wrote it; the agent compiles it. */
    spec: z.unknown(),
    /** Handler file (as written in the spec) -> artifact sha256, uploaded before. */
    bundles: z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/)),
    /** An app of `kiln run`: it runs while its runner lives; its schedules do not fire. Default false. */
    ephemeral: z.boolean().optional(),
  })
  .strict();
export type DeployBody = z.infer<typeof deployBody>;

export interface AppSummary {
  name: string;
  version: number;
  deployedAt: string;
  digest: string;
  functions: string[];
}

// ---- invoke API ---------------------------------------------------------------------------

/**
 * serde-encoded array of positional arguments, checked at the door: a malformed encoding is a
 * 400 here, not a SyntaxError in the worker after the input was queued. Payloads over the inline
 * limit are left to the size check (413), without decoding them.
 */
const encodedArgs = z.string().superRefine((text, ctx) => {
  if (Buffer.byteLength(text) > MAX_INLINE_PAYLOAD_BYTES) return;
  let value: unknown;
  try {
    value = decode(text);
  } catch (error) {
    ctx.addIssue({
      code: "custom",
      message:
        `is not kiln-encoded arguments (${messageOf(error)}): send ` +
        "encode([...args]) from kiln's serde (runtime/serde), as the client does",
    });
    return;
  }
  if (!Array.isArray(value)) {
    ctx.addIssue({ code: "custom", message: "must encode an array of positional arguments" });
  }
});

export const callBody = z
  .object({
    args: encodedArgs,
    /** "value": one result (`remote`, `spawn`); "stream": yielded values (`remoteGen`). */
    mode: z.enum(["value", "stream"]).default("value"),
    /** Spawned calls have their own pending cap and keep their result for 24 h. */
    spawn: z.boolean().default(false),
    /** Hold the response up to this long for the outcome. */
    waitMs: z.number().int().min(0).max(MAX_WAIT_MS).default(0),
  })
  .strict();
export type CallBody = z.input<typeof callBody>;

export interface CallResponse {
  callId: string;
  /** Present when the outcome arrived within `waitMs`. */
  outcome?: Outcome;
}

export interface CallInfo {
  id: string;
  app: string;
  function: string;
  kind: "call" | "spawn" | "stream";
  status: CallStatus;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  attempts: number;
}

export interface ResultResponse {
  status: CallStatus;
  outcome?: Outcome;
}

export const mapInputsBody = z
  .object({
    items: z
      .array(z.object({ idx: z.number().int().min(0), args: encodedArgs }).strict())
      .min(1)
      .max(1000),
  })
  .strict();
export type MapInputsBody = z.infer<typeof mapInputsBody>;

export interface MapInputsResponse {
  /** How many of the items, from the first, were accepted; the rest may be sent again later. */
  accepted: number;
  /** Why not all were accepted. */
  refused?: WireError;
}

export type MapOutput = { idx: number } & Outcome;

export const mapOutputsQuery = z
  .object({
    waitMs: z.coerce.number().int().min(0).max(MAX_WAIT_MS).default(0),
    max: z.coerce.number().int().min(1).max(10_000).default(1000),
  })
  .strict();

export type StreamItem = { t: "y"; v: string } | { t: "end" } | { t: "err"; error: WireError };

export const logsQuery = z
  .object({
    function: z.string().optional(),
    follow: z
      .enum(["true", "false", "1", "0"])
      .optional()
      .transform((v) => v === "true" || v === "1"),
    tail: z.coerce.number().int().min(0).max(100_000).default(200),
  })
  .strict();

export interface LogLine {
  ts: string;
  app: string;
  function: string;
  callId: string | null;
  containerId: string;
  stream: "stdout" | "stderr" | "system";
  text: string;
}

// ---- status ---------------------------------------------------------------------------------

export interface ContainerStatus {
  id: string;
  pid: number | null;
  state: "starting" | "ready" | "draining";
  version: string;
  inFlight: number;
  startedAt: string;
  coldStartMs: number | null;
}

export interface ScalingStatus {
  /** What the autoscaler wants now. */
  desired: number;
  starting: number;
  /** Ready and holding inputs. */
  busy: number;
  /** Ready and holding nothing. */
  idle: number;
  draining: number;
  panic: boolean;
  lastDecision: { at: string; desired: number; reason: string } | null;
}

export interface FunctionStatus {
  name: string;
  version: string;
  containers: ContainerStatus[];
  scaling: ScalingStatus;
  queue: { pending: number; running: number; spawnPending: number };
  coldStarts: number;
  startFailures: number;
  /** Why the pool is not starting containers, when it is not ("waiting for capacity", "start backoff: ..."). */
  blocked: string | null;
  lastStartError: string | null;
}

export interface ScheduleRun {
  /** The spawned call (`kiln call` / `FunctionCall` can follow it); its id is `sched:<app>:<name>:<tick epoch ms>`. */
  callId: string;
  /** The tick this run is for. */
  tickAt: string;
  firedAt: string;
  /** The call's status; "expired" once its record is gone (results are kept 24 h). */
  status: CallStatus | "expired";
  /** The failure, for a failed run. */
  error?: string;
  /** Fired for a tick missed while no scheduler ran (`catchUp: 1`). */
  catchUp?: boolean;
}

export interface ScheduleStatus {
  name: string;
  function: string;
  cron: string | null;
  timezone: string;
  /** The period in seconds, for a period schedule. */
  periodS: number | null;
  catchUp: 0 | 1;
  /** Null for an ephemeral app (its schedules do not fire). */
  nextTickAt: string | null;
  lastTickAt: string | null;
  /** The latest runs, newest first. */
  runs: ScheduleRun[];
}

export interface AppStatus {
  name: string;
  version: number;
  deployedAt: string;
  functions: FunctionStatus[];
  schedules?: ScheduleStatus[];
}

/** What each agent advertises in the store (every 2 s, expiring after 10 s): the cluster view. */
export interface HostStatus {
  id: string;
  url: string;
  version: string;
  startedAt: string;
  seenAt: string;
  capacity: { cpu: number; cpuUsed: number };
  /** What this host can give one container (deploys check each function fits some host). */
  maxima?: Maxima;
  /** This host's GPUs by model (empty: none); deploys check a requested GPU type is on some host. */
  gpus?: GpuOffer[];
  /** `<app>.<fn>` -> this host's containers of it. */
  functions: Record<string, { containers: number; busy: number; inFlight: number }>;
  draining: boolean;
}

/** How this host enforces limits: cgroup versions per controller, scratch disks, GPUs. */
export type { EnforcementStatus } from "./containers/sandbox.js";
import type { EnforcementStatus } from "./containers/sandbox.js";
import type { UsageTotals } from "./containers/metering.js";
export type { UsageTotals };

export const usageQuery = z
  .object({
    app: z.string().optional(),
    function: z.string().optional(),
    /** Only usage after this instant (ISO date or epoch ms). */
    since: z.string().optional(),
  })
  .strict();

export interface AgentStatus {
  agent: {
    id: string;
    version: string;
    store: string;
    startedAt: string;
    url: string;
    capacity: { cpu: number; cpuUsed: number };
  };
  /** Every live agent on this agent's store, this one included. */
  hosts: HostStatus[];
  enforcement: EnforcementStatus;
  apps: AppStatus[];
}

// ---- dicts and queues ---------------------------------------------------------------------------

/**
 * Where a dict or queue lives, written `app:<app>:<name>` (declared in a deployed app),
 * `named:<name>` (made with `createIfMissing`) or `ephemeral:<id>` (deleted with its owner).
 */
export type DataRef =
  | { kind: "app"; app: string; name: string }
  | { kind: "named"; name: string }
  | { kind: "ephemeral"; id: string };

export function formatDataRef(ref: DataRef): string {
  switch (ref.kind) {
    case "app":
      return `app:${ref.app}:${ref.name}`;
    case "named":
      return `named:${ref.name}`;
    case "ephemeral":
      return `ephemeral:${ref.id}`;
  }
}

export function parseDataRef(text: string): DataRef {
  const parts = text.split(":");
  if (parts[0] === "app" && parts.length === 3 && parts[1] && parts[2])
    return { kind: "app", app: parts[1], name: parts[2] };
  if (parts[0] === "named" && parts.length === 2 && parts[1])
    return { kind: "named", name: parts[1] };
  if (parts[0] === "ephemeral" && parts.length === 2 && /^[0-9a-f-]{36}$/.test(parts[1] ?? ""))
    return { kind: "ephemeral", id: parts[1]! };
  throw new InvalidError(
    `${JSON.stringify(text)} is not a dict or queue reference: expected app:<app>:<name>, named:<name> or ephemeral:<id>`,
  );
}

/** Look up (or create) a named dict. */
export const dictLookupBody = z
  .object({
    name: z.string(),
    createIfMissing: z.boolean().default(false),
    /** Settings of a dict created now (ignored when it exists). */
    maxEntries: z.number().int().min(1).max(MAX_DICT_MAX_ENTRIES).optional(),
    inactivityExpiryS: z
      .number()
      .int()
      .min(MIN_DICT_INACTIVITY_EXPIRY_S)
      .max(MAX_DICT_INACTIVITY_EXPIRY_S)
      .optional(),
  })
  .strict();

/** Keys and values are serde-encoded strings; keys in kiln's canonical form (`canonicalKey`). */
export const dictKeyBody = z.object({ key: z.string() }).strict();

export const dictPutBody = z
  .object({
    key: z.string(),
    value: z.string(),
    skipIfExists: z.boolean().default(false),
    /** Expire this entry this many seconds from now, whether read or not. */
    ttlS: z.number().positive().max(MAX_DICT_INACTIVITY_EXPIRY_S).optional(),
  })
  .strict();

export const dictUpdateBody = z
  .object({ entries: z.array(z.tuple([z.string(), z.string()])).max(MAX_DICT_UPDATE_ENTRIES) })
  .strict();

export const dictEntriesQuery = z
  .object({
    cursor: z
      .string()
      .regex(/^\d+$/, "must be a cursor returned by a previous page, or 0")
      .default("0"),
    count: z.coerce.number().int().min(1).max(1000).default(100),
  })
  .strict();

export interface DictEntriesResponse {
  cursor: string;
  entries: [key: string, value: string][];
}

export interface DictInfo {
  ref: string;
  kind: DataRef["kind"];
  name: string;
  app?: string;
  len: number;
  maxEntries: number;
  inactivityExpiryS: number;
  createdAt?: string;
}

export const ephemeralBody = z
  .object({
    kind: z.enum(["dict", "queue"]),
    /** Deleted this long after the last heartbeat. */
    ttlMs: z.number().int().min(MIN_EPHEMERAL_TTL_MS).max(MAX_EPHEMERAL_TTL_MS).optional(),
  })
  .strict();

export interface EphemeralResponse {
  ref: string;
  ttlMs: number;
}

/** Look up (or create) a named queue. */
export const queueLookupBody = z
  .object({
    name: z.string(),
    createIfMissing: z.boolean().default(false),
    partitionTtlS: z
      .number()
      .int()
      .min(MIN_QUEUE_PARTITION_TTL_S)
      .max(MAX_QUEUE_PARTITION_TTL_S)
      .optional(),
    maxPartitionItems: z.number().int().min(1).max(MAX_QUEUE_MAX_PARTITION_ITEMS).optional(),
    maxPartitions: z.number().int().min(1).max(MAX_QUEUE_MAX_PARTITIONS).optional(),
  })
  .strict();

/** Items are serde-encoded strings. `partition` absent: the default partition. */
export const queuePutBody = z
  .object({
    items: z.array(z.string()).min(1).max(MAX_QUEUE_MAX_PARTITION_ITEMS),
    partition: z.string().optional(),
  })
  .strict();

export const queueGetBody = z
  .object({
    max: z.number().int().min(1).max(MAX_QUEUE_GET_MANY).default(1),
    waitMs: z.number().int().min(0).max(MAX_WAIT_MS).default(0),
    partition: z.string().optional(),
  })
  .strict();

export const queueLenQuery = z
  .object({
    partition: z.string().optional(),
    total: z
      .enum(["true", "false", "1", "0"])
      .optional()
      .transform((v) => v === "true" || v === "1"),
  })
  .strict();

export const queueClearBody = z
  .object({ partition: z.string().optional(), all: z.boolean().default(false) })
  .strict();

export const queueItemsQuery = z
  .object({
    partition: z.string().optional(),
    start: z.coerce.number().int().min(0).max(MAX_QUEUE_MAX_PARTITION_ITEMS).default(0),
    count: z.coerce.number().int().min(1).max(1000).default(100),
  })
  .strict();

export interface QueueInfo {
  ref: string;
  kind: DataRef["kind"];
  name: string;
  app?: string;
  /** Partitions holding items, and items over all of them. */
  partitions: number;
  items: number;
  maxPartitionItems: number;
  maxPartitions: number;
  partitionTtlS: number;
  createdAt?: string;
}
