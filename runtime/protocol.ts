/**
 * The agent's HTTP API: paths and zod schemas of every body, shared by the agent (which
 * validates requests with them) and the client (which types its calls with them).
 *
 * Values (arguments, results) travel serde-encoded, as strings inside JSON.
 * Every long wait is bounded by `waitMs` (at most {@link MAX_WAIT_MS}); clients loop.
 */
import { z } from "zod";
import type { WireError } from "./errors.js";

export const API_VERSION = "v1";
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
  remote: z.object({ name: z.string(), message: z.string(), stack: z.string().optional() }).optional(),
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

export const callBody = z
  .object({
    /** serde-encoded array of positional arguments. */
    args: z.string(),
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
      .array(z.object({ idx: z.number().int().min(0), args: z.string() }).strict())
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

export interface AppStatus {
  name: string;
  version: number;
  deployedAt: string;
  functions: FunctionStatus[];
}

/** What each agent advertises in the store (every 2 s, expiring after 10 s): the cluster view. */
export interface HostStatus {
  id: string;
  url: string;
  version: string;
  startedAt: string;
  seenAt: string;
  capacity: { cpu: number; cpuUsed: number };
  /** `<app>.<fn>` -> this host's containers of it. */
  functions: Record<string, { containers: number; busy: number; inFlight: number }>;
  draining: boolean;
}

export interface AgentStatus {
  agent: { id: string; version: string; store: string; startedAt: string; url: string; capacity: { cpu: number; cpuUsed: number } };
  /** Every live agent on this agent's store, this one included. */
  hosts: HostStatus[];
  apps: AppStatus[];
}
