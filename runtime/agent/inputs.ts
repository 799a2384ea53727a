/**
 * What an input is while it waits in a function's queue, and where its outcome goes.
 * Store keys and channels for inputs live here, in one place.
 */
import type { CallInfo, Outcome, StreamItem } from "../protocol.js";

export type InputKind = "call" | "spawn" | "stream" | "map";

export interface InputEnvelope {
  /** Unique input id: the call id, or `<mapId>.<idx>` for a map input. */
  id: string;
  kind: InputKind;
  app: string;
  fn: string;
  /** serde-encoded positional arguments. */
  args: string;
  /** User retries used so far (function `retries`). */
  attempt: number;
  /** Platform retries used so far (worker crashed, agent restarted). */
  platformAttempt: number;
  /**
   * Times an agent claimed it and handed it back unrun (no room after all, shutting down). Not
   * failures: they are told apart from lapsed claims, which are.
   */
  returned?: number;
  /**
   * Its worker died while it ran beside other inputs (maxInputs > 1), so which one brought it down
   * is not known: that crash was not counted against it (one delivery, the only uncounted one),
   * and from then on it runs alone, in a container that takes no other input until it ends. A
   * crash while alone is its own (a platform attempt). Set once, never cleared.
   */
  solo?: true;
  createdAt: number;
  mapId?: string;
  idx?: number;
  /** The last platform failure, reported if platform retries run out. */
  lastPlatformError?: string;
  /** The agent whose caller waits for the outcome (see replies.ts); absent when nobody waits. */
  replyTo?: string;
}

/** A call's stored record: what `GET /v1/calls/:id` shows, plus where a waiting caller listens. */
export interface StoredCall extends CallInfo {
  replyTo?: string;
}

export const keys = {
  artifact: (sha: string) => `artifact:${sha}`,
  artifactMeta: (sha: string) => `artifact-meta:${sha}`,
  call: (id: string) => `call:${id}`,
  /** A spawned call's or stream's attempts so far ({@link CallRun}); the record itself is written once. */
  callRun: (id: string) => `call-run:${id}`,
  result: (id: string) => `result:${id}`,
  stream: (id: string) => `stream:${id}`,
  map: (id: string) => `map:${id}`,
  mapOutputs: (id: string) => `map:${id}:out`,
  mapInFlight: (id: string) => `map:${id}:in-flight`,
  queue: (app: string, fn: string) => `q:${app}:${fn}`,
  spawnQueue: (app: string, fn: string) => `q:${app}:${fn}:spawn`,
  /** The store hash of a dict (`ref`: a DataRef string, see protocol.ts). */
  dictHash: (ref: string) => `dict:${ref}`,
  /** The store partition group of a queue. */
  queueGroup: (ref: string) => `queue:${ref}`,
  /** Named dicts and queues: their settings. */
  namedDict: (name: string) => `named-dict:${name}`,
  namedQueue: (name: string) => `named-queue:${name}`,
  /** Ephemeral dicts and queues: the key whose TTL their owner's heartbeats renew (records: `registries`). */
  ephemeralLive: (id: string) => `ephemeral-live:${id}`,
} as const;

/**
 * The store hashes of the small registries agents list (registry.ts): listing one never scans the
 * store's keyspace. Fields: an app's name, an agent's id, {@link scheduleField}, an ephemeral
 * object's id.
 */
export const registries = {
  /** Deployed apps: the app record (apps.ts `AppRecord`). */
  apps: "registry:apps",
  /** Live agents: each one's advertisement (`HostStatus`), with a TTL its advertiser renews. */
  hosts: "registry:hosts",
  /** Schedule state (anchor, last tick, recent runs; scheduler.ts `ScheduleState`). */
  schedules: "registry:schedules",
  /** Ephemeral dicts and queues: their record (refs.ts). */
  ephemeral: "registry:ephemeral",
} as const;

/** A schedule's field in `registries.schedules`. */
export function scheduleField(app: string, name: string): string {
  return `${app}:${name}`;
}

export const channels = {
  done: (id: string) => `done:${id}`,
  /** Outcomes for the `.remote()` callers waiting on one agent (replies.ts). */
  reply: (agentId: string) => `reply:${agentId}`,
  cancel: "cancel",
  apps: "apps",
} as const;

/** When a call's first attempt started, and how many have. */
export interface CallRun {
  startedAt: string;
  attempts: number;
}

export interface StoredResult {
  outcome: Outcome;
  finishedAt: number;
}

export type { Outcome, StreamItem };

/**
 * A new call's record and the input that carries it: one shape for the router and the scheduler.
 * `replyTo`: the agent whose caller waits for the outcome, if one does.
 */
export function newCall(
  id: string,
  kind: Exclude<InputKind, "map">,
  app: string,
  fn: string,
  args: string,
  replyTo?: string,
): { call: StoredCall; input: InputEnvelope } {
  const now = Date.now();
  const reply = replyTo === undefined ? {} : { replyTo };
  return {
    call: {
      id,
      app,
      function: fn,
      kind,
      status: "pending",
      createdAt: new Date(now).toISOString(),
      attempts: 0,
      ...reply,
    },
    input: { id, kind, app, fn, args, attempt: 0, platformAttempt: 0, createdAt: now, ...reply },
  };
}
