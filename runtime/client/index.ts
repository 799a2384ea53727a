/**
 * What callers import (`kiln/client`): `connect()`, then functions, function calls (and, later,
 * dicts and queues) by name.
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
import { UnauthenticatedError, UnavailableError } from "../errors.js";
import type { AgentStatus, AppSummary } from "../protocol.js";
import { FunctionCall } from "./function-call.js";
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
  function<F extends AnyHandler = (...args: unknown[]) => unknown>(app: string, name: string): RemoteFunction<F> {
    return new RemoteFunction<F>(this.http, app, name);
  }

  /** A call by id, e.g. one spawned by another process. */
  functionCall<T = unknown>(id: string): FunctionCall<T> {
    return new FunctionCall<T>(this.http, id);
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
  const token = options.token ?? process.env["KILN_TOKEN"] ?? readToken(options.stateDir ?? defaultStateDir());
  const http = new AgentHttp(url.endsWith("/") ? url : `${url}/`, token);
  const health = await fetch(new URL("healthz", http.url)).catch((error: unknown) => {
    throw new UnavailableError(
      `cannot reach the kiln agent at ${url} (${(error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message}): ` +
        "start one with 'kiln agent', or set KILN_URL",
      { cause: error },
    );
  });
  if (!health.ok) throw new UnavailableError(`the agent at ${url} is not healthy (HTTP ${health.status})`);
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

export { FunctionCall, RemoteFunction };
export type { GetOptions } from "./function-call.js";
export type { MapOptions, ResultOf, YieldOf, AnyHandler } from "./function.js";
export * from "../errors.js";
export type { CallStatus, CallInfo, AgentStatus, AppSummary, FunctionStatus, ContainerStatus } from "../protocol.js";
