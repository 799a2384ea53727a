/**
 * What callers import (`kiln/client`): `connect()`, then functions, function calls, dicts and
 * queues by name.
 *
 * ```ts
 * const kiln = await connect();                       // KILN_URL / local agent, KILN_TOKEN / state dir
 * const square = kiln.function<typeof import("./functions").square>("hello", "square");
 * await square.remote(3);                              // 9
 * ```
 * Inside a handler, `connect()` with no arguments reaches the agent that runs it.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { InvalidError, UnauthenticatedError, UnavailableError } from "../errors.js";
import {
  formatDataRef,
  type AgentStatus,
  type AppSummary,
  type DataRef,
  type EphemeralResponse,
} from "../protocol.js";
import { APP_NAME_PATTERN, RESOURCE_NAME_PATTERN } from "../spec/names.js";
import { Dict, type DictOptions } from "./dict.js";
import { FunctionCall } from "./function-call.js";
import { Queue, type QueueOptions } from "./queue.js";
import { RemoteFunction, type AnyHandler } from "./function.js";
import { AgentHttp } from "./http.js";

export interface ConnectOptions {
  /** Agent URL. Default: KILN_URL, else http://127.0.0.1:7070. */
  url?: string;
  /** Bearer token. Default: KILN_TOKEN, else `<stateDir>/token`. */
  token?: string;
  /** The local agent's state dir, where its token is. Default: KILN_STATE_DIR, else ~/.kiln. */
  stateDir?: string;
}

export const DEFAULT_AGENT_URL = "http://127.0.0.1:7070";

export function defaultStateDir(): string {
  return process.env["KILN_STATE_DIR"] ?? join(homedir(), ".kiln");
}

export class Kiln {
  constructor(readonly http: AgentHttp) {}

  get url(): string {
    return this.http.url;
  }

  /** A deployed function. Name its handler type for typed arguments and results. */
  function<F extends AnyHandler = (...args: unknown[]) => unknown>(
    app: string,
    name: string,
  ): RemoteFunction<F> {
    return new RemoteFunction<F>(this.http, app, name);
  }

  /** A call by id, e.g. one spawned by another process. */
  functionCall<T = unknown>(id: string): FunctionCall<T> {
    return new FunctionCall<T>(this.http, id);
  }

  /**
   * A dict: `dict(app, name)` for one the app declares (`dicts` in its spec), `dict(name)` for a
   * named one (`{ createIfMissing: true }` makes it on first use).
   */
  dict<K = unknown, V = unknown>(app: string, name: string): Dict<K, V>;
  dict<K = unknown, V = unknown>(name: string, options?: DictOptions): Dict<K, V>;
  dict<K = unknown, V = unknown>(first: string, second?: string | DictOptions): Dict<K, V> {
    if (typeof second === "string")
      return new Dict<K, V>(this.http, dataRef("dict", { kind: "app", app: first, name: second }));
    const options = second ?? {};
    const ref = dataRef("dict", { kind: "named", name: first });
    const body = {
      name: first,
      createIfMissing: options.createIfMissing ?? false,
      ...(options.maxEntries === undefined ? {} : { maxEntries: options.maxEntries }),
      ...(options.inactivityExpiryS === undefined
        ? {}
        : { inactivityExpiryS: options.inactivityExpiryS }),
    };
    return new Dict<K, V>(this.http, ref, {
      ensure: () => this.http.request("POST", "/v1/dicts", { body }),
    });
  }

  /** A dict deleted by `close()`, or when this process stops sending heartbeats for `ttlMs` (default 60 s). */
  async ephemeralDict<K = unknown, V = unknown>(
    options: { ttlMs?: number } = {},
  ): Promise<Dict<K, V>> {
    const { ref, close } = await this.ephemeral("dict", options.ttlMs);
    return new Dict<K, V>(this.http, ref, { close });
  }

  /** Delete a named dict and its entries. Returns whether it existed. */
  async deleteDict(name: string): Promise<boolean> {
    const ref = dataRef("dict", { kind: "named", name });
    return (
      await this.http.request<{ deleted: boolean }>(
        "DELETE",
        `/v1/dicts/${encodeURIComponent(ref)}`,
      )
    ).deleted;
  }

  /**
   * A queue: `queue(app, name)` for one the app declares (`queues` in its spec), `queue(name)` for
   * a named one (`{ createIfMissing: true }` makes it on first use).
   */
  queue<T = unknown>(app: string, name: string): Queue<T>;
  queue<T = unknown>(name: string, options?: QueueOptions): Queue<T>;
  queue<T = unknown>(first: string, second?: string | QueueOptions): Queue<T> {
    if (typeof second === "string")
      return new Queue<T>(this.http, dataRef("queue", { kind: "app", app: first, name: second }));
    const options = second ?? {};
    const ref = dataRef("queue", { kind: "named", name: first });
    const body = {
      name: first,
      createIfMissing: options.createIfMissing ?? false,
      ...(options.partitionTtlS === undefined ? {} : { partitionTtlS: options.partitionTtlS }),
      ...(options.maxPartitionItems === undefined
        ? {}
        : { maxPartitionItems: options.maxPartitionItems }),
      ...(options.maxPartitions === undefined ? {} : { maxPartitions: options.maxPartitions }),
    };
    return new Queue<T>(this.http, ref, {
      ensure: () => this.http.request("POST", "/v1/queues", { body }),
    });
  }

  /** A queue deleted by `close()`, or when this process stops sending heartbeats for `ttlMs` (default 60 s). */
  async ephemeralQueue<T = unknown>(options: { ttlMs?: number } = {}): Promise<Queue<T>> {
    const { ref, close } = await this.ephemeral("queue", options.ttlMs);
    return new Queue<T>(this.http, ref, { close });
  }

  /** Delete a named queue and its items. Returns whether it existed. */
  async deleteQueue(name: string): Promise<boolean> {
    const ref = dataRef("queue", { kind: "named", name });
    return (
      await this.http.request<{ deleted: boolean }>(
        "DELETE",
        `/v1/queues/${encodeURIComponent(ref)}`,
      )
    ).deleted;
  }

  /** Create an ephemeral object and keep it alive with heartbeats until closed. */
  private async ephemeral(
    kind: "dict" | "queue",
    ttlMs: number | undefined,
  ): Promise<{ ref: string; close: () => Promise<void> }> {
    const created = await this.http.request<EphemeralResponse>("POST", "/v1/ephemeral", {
      body: { kind, ...(ttlMs === undefined ? {} : { ttlMs }) },
    });
    const id = created.ref.slice("ephemeral:".length);
    const timer = setInterval(
      () =>
        void this.http
          .request("POST", `/v1/ephemeral/${encodeURIComponent(id)}/heartbeat`)
          .catch(() => undefined),
      Math.max(1000, Math.floor(created.ttlMs / 3)),
    );
    timer.unref();
    let closing: Promise<void> | null = null;
    const close = (): Promise<void> => {
      clearInterval(timer);
      closing ??= this.http
        .request(
          `DELETE`,
          `/v1/${kind === "dict" ? "dicts" : "queues"}/${encodeURIComponent(created.ref)}`,
        )
        .then(() => undefined);
      return closing;
    };
    return { ref: created.ref, close };
  }

  async apps(): Promise<AppSummary[]> {
    return (await this.http.request<{ apps: AppSummary[] }>("GET", "/v1/apps")).apps;
  }

  async status(): Promise<AgentStatus> {
    return this.http.request<AgentStatus>("GET", "/v1/status");
  }
}

/** Resolve the agent's URL and token and check that it answers. */
export async function connect(options: ConnectOptions = {}): Promise<Kiln> {
  const url = options.url ?? process.env["KILN_URL"] ?? DEFAULT_AGENT_URL;
  const token =
    options.token ?? process.env["KILN_TOKEN"] ?? readToken(options.stateDir ?? defaultStateDir());
  const http = new AgentHttp(url.endsWith("/") ? url : `${url}/`, token);
  const health = await fetch(new URL("healthz", http.url)).catch((error: unknown) => {
    throw new UnavailableError(
      `cannot reach the kiln agent at ${url} (${(error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message}): ` +
        "start one with 'kiln agent', or set KILN_URL",
      { cause: error, details: { agentUnreachable: url } },
    );
  });
  if (!health.ok)
    throw new UnavailableError(`the agent at ${url} is not healthy (HTTP ${health.status})`, {
      details: { agentUnreachable: url },
    });
  return new Kiln(http);
}

function readToken(stateDir: string): string {
  const path = join(stateDir, "token");
  if (!existsSync(path)) {
    throw new UnauthenticatedError(
      `no token for the agent: set KILN_TOKEN, pass the token to connect(), or start a local agent with this state dir (it writes ${path})`,
    );
  }
  return readFileSync(path, "utf8").trim();
}

/** A dict or queue reference, checking names here so a bad one fails before any request. */
function dataRef(kind: "dict" | "queue", ref: DataRef): string {
  if (ref.kind === "app" && !APP_NAME_PATTERN.test(ref.app))
    throw new InvalidError(`invalid app name ${JSON.stringify(ref.app)}`);
  if (ref.kind !== "ephemeral" && !RESOURCE_NAME_PATTERN.test(ref.name)) {
    throw new InvalidError(
      `invalid ${kind} name ${JSON.stringify(ref.name)}: use 1-64 letters, digits, "_" or "-", starting with a letter or "_"`,
    );
  }
  return formatDataRef(ref);
}

export { FunctionCall, RemoteFunction, Dict, Queue };
export { canonicalKey, type DictPutOptions, type DictOptions } from "./dict.js";
export type { QueueGetOptions, QueueOptions, QueuePartitionOptions } from "./queue.js";
export type { DictInfo, QueueInfo, ScheduleStatus, ScheduleRun } from "../protocol.js";
export type { GetOptions } from "./function-call.js";
export type { MapOptions, ResultOf, YieldOf, AnyHandler } from "./function.js";
export * from "../errors.js";
export type {
  CallStatus,
  CallInfo,
  AgentStatus,
  AppSummary,
  FunctionStatus,
  ContainerStatus,
} from "../protocol.js";
