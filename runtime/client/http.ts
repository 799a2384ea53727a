/**
 * The client's HTTP transport to one agent: bearer token, JSON bodies, and errors turned back
 * into kiln's typed classes (a 429 is a ResourceExhaustedError whatever the route).
 *
 * Requests go through undici's `request` on a keep-alive pool, not the global `fetch`: fetch's
 * WHATWG Request/Response/stream layers cost about 0.13 ms of CPU per round trip on this
 * machine, a fifth of a warm `.remote()` (bench/profile.ts http). Idle sockets do not keep the
 * process alive (undici unrefs them).
 */
import { Pool } from "undici";
import { z } from "zod";
import { UnavailableError, fromWire } from "../errors.js";
import { wireErrorSchema } from "../protocol.js";

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | boolean | undefined>;
  signal?: AbortSignal;
}

export type HttpMethod = "GET" | "POST" | "PUT" | "DELETE";

export class AgentHttp {
  private readonly pool: Pool;

  constructor(
    readonly url: string,
    private readonly token: string,
  ) {
    this.pool = new Pool(new URL(url).origin, { keepAliveTimeout: 30_000 });
  }

  async request<T>(method: HttpMethod, path: string, options: RequestOptions = {}): Promise<T> {
    const target = new URL(path, this.url);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) target.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    let body: string | undefined;
    if (options.body !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(options.body);
    }
    let status: number;
    let text: string;
    try {
      const response = await this.pool.request({
        method,
        path: target.pathname + target.search,
        headers,
        body,
        signal: options.signal,
      });
      status = response.statusCode;
      text = await response.body.text();
    } catch (error) {
      if (options.signal?.aborted) throw abortError(options.signal);
      const code = (error as { code?: string }).code;
      throw new UnavailableError(
        `cannot reach the kiln agent at ${this.url} (${code ?? (error as Error).message}): ` +
          "is it running? Start one with 'kiln agent', or set KILN_URL",
        { cause: error, details: { agentUnreachable: this.url } },
      );
    }
    if (status < 200 || status > 299) throw errorFromResponse(status, text, this.url);
    return (text === "" ? undefined : JSON.parse(text)) as T;
  }

  /** Close the keep-alive connections (optional: idle ones do not hold the process open). */
  async close(): Promise<void> {
    await this.pool.close();
  }

  /** Open a streaming GET (NDJSON), for `logs --follow`. */
  async stream(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    signal?: AbortSignal,
  ): Promise<Response> {
    const target = new URL(path, this.url);
    for (const [key, value] of Object.entries(query))
      if (value !== undefined) target.searchParams.set(key, String(value));
    const response = await fetch(target, {
      headers: { authorization: `Bearer ${this.token}` },
      signal: signal ?? null,
    }).catch((error: unknown) => {
      if ((error as Error).name === "AbortError") throw error;
      throw new UnavailableError(
        `cannot reach the kiln agent at ${this.url}: ${(error as Error).message}`,
        { cause: error, details: { agentUnreachable: this.url } },
      );
    });
    if (!response.ok) throw errorFromResponse(response.status, await response.text(), this.url);
    return response;
  }
}

/** What an aborted request rejects with: an `AbortError`, as `fetch` gave before. */
function abortError(signal: AbortSignal): Error {
  if (signal.reason instanceof Error && signal.reason.name === "AbortError") return signal.reason;
  return new DOMException("This operation was aborted", "AbortError");
}

/** The agent's error body, checked at the boundary: anything else is reported as it came. */
const errorBody = z.object({ error: wireErrorSchema });

function errorFromResponse(status: number, text: string, url: string): Error {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined; // not JSON: fall through
  }
  const parsed = errorBody.safeParse(json);
  if (parsed.success) return fromWire(parsed.data.error);
  // Not an agent's answer (a proxy in front of one that is down): the agent was not reached.
  return new UnavailableError(`the agent answered HTTP ${status}: ${text.slice(0, 200)}`, {
    details: { agentUnreachable: url },
  });
}
