/** A handle on one call by id: `status()`, `get({ timeoutMs })`, `cancel()`. */
import { TimeoutError, fromWire } from "../errors.js";
import {
  MAX_WAIT_MS,
  type CallInfo,
  type CallStatus,
  type Outcome,
  type ResultResponse,
} from "../protocol.js";
import { decode } from "../serde.js";
import type { AgentHttp } from "./http.js";

export interface GetOptions {
  /** Give up after this long with TimeoutError (the call goes on). Default: wait until it finishes. */
  timeoutMs?: number;
}

export class FunctionCall<T = unknown> {
  constructor(
    private readonly http: AgentHttp,
    readonly id: string,
  ) {}

  async status(): Promise<CallStatus> {
    return (await this.info()).status;
  }

  async info(): Promise<CallInfo> {
    return this.http.request<CallInfo>("GET", `/v1/calls/${encodeURIComponent(this.id)}`);
  }

  /** The call's result; throws the call's error (RemoteError, CancelledError, ...) if it failed. */
  async get(options: GetOptions = {}): Promise<T> {
    return settle<T>(await waitOutcome(this.http, this.id, options.timeoutMs));
  }

  /** Stop the call: a pending input is dropped, a running one's worker is killed. */
  async cancel(): Promise<void> {
    await this.http.request("POST", `/v1/calls/${encodeURIComponent(this.id)}/cancel`);
  }
}

export async function waitOutcome(
  http: AgentHttp,
  id: string,
  timeoutMs: number | undefined,
): Promise<Outcome> {
  const deadline = timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + timeoutMs;
  for (;;) {
    const waitMs = Math.max(0, Math.min(MAX_WAIT_MS, deadline - Date.now()));
    const result = await http.request<ResultResponse>(
      "GET",
      `/v1/calls/${encodeURIComponent(id)}/result`,
      { query: { waitMs } },
    );
    if (result.outcome) return result.outcome;
    if (Date.now() >= deadline) {
      throw new TimeoutError(
        `call ${id} is still ${result.status} after ${timeoutMs} ms; it goes on: call get() again to wait more`,
        {
          details: { callId: id, status: result.status },
        },
      );
    }
  }
}

export function settle<T>(outcome: Outcome): T {
  if (outcome.ok) return decode<T>(outcome.value);
  throw fromWire(outcome.error);
}
