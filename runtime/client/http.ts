/**
 * The client's HTTP transport to one agent: bearer token, JSON bodies, and errors turned back
 * into kiln's typed classes (a 429 is a ResourceExhaustedError whatever the route).
 */
import { UnavailableError, fromWire, type WireError } from "../errors.js";

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | boolean | undefined>;
  signal?: AbortSignal;
}

export class AgentHttp {
  constructor(
    readonly url: string,
    private readonly token: string,
  ) {}

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
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
    let response: Response;
    try {
      response = await fetch(target, { method, headers, body, signal: options.signal ?? null });
    } catch (error) {
      if ((error as Error).name === "AbortError") throw error;
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new UnavailableError(
        `cannot reach the kiln agent at ${this.url} (${cause?.code ?? cause?.message ?? (error as Error).message}): ` +
          "is it running? Start one with 'kiln agent', or set KILN_URL",
        { cause: error },
      );
    }
    const text = await response.text();
    if (!response.ok) throw errorFromResponse(response.status, text);
    return (text === "" ? undefined : JSON.parse(text)) as T;
  }

  /** Open a streaming GET (NDJSON), for `logs --follow`. */
  async stream(path: string, query: Record<string, string | number | boolean | undefined>, signal?: AbortSignal): Promise<Response> {
    const target = new URL(path, this.url);
    for (const [key, value] of Object.entries(query)) if (value !== undefined) target.searchParams.set(key, String(value));
    const response = await fetch(target, { headers: { authorization: `Bearer ${this.token}` }, signal: signal ?? null }).catch(
      (error: unknown) => {
        if ((error as Error).name === "AbortError") throw error;
        throw new UnavailableError(`cannot reach the kiln agent at ${this.url}: ${(error as Error).message}`, { cause: error });
      },
    );
    if (!response.ok) throw errorFromResponse(response.status, await response.text());
    return response;
  }
}

function errorFromResponse(status: number, text: string): Error {
  try {
    const parsed = JSON.parse(text) as { error?: WireError };
    if (parsed.error?.code) return fromWire(parsed.error);
  } catch {
    // not JSON: fall through
  }
  return new UnavailableError(`the agent answered HTTP ${status}: ${text.slice(0, 200)}`);
}
