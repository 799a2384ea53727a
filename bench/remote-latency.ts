/**
 * Warm `.remote()` latency: sequential calls of a no-op handler on a container that is already
 * up, timed one by one around `await fn.remote()` (HTTP POST with `waitMs`, the agent enqueues,
 * the pool dispatches over IPC, the outcome is stored and announced, the response comes back).
 */
import type { Kiln } from "../runtime/client/index.js";
import type { Progress } from "./floors.js";

export interface RemoteLatencyResult {
  samples: number[];
}

export async function measureRemoteLatency(
  kiln: Kiln,
  target: { app: string; fn: string },
  options: { warmup: number; count: number; deadlineMs: number; progress: Progress },
): Promise<RemoteLatencyResult> {
  const noop = kiln.function<(x?: unknown) => unknown>(target.app, target.fn);
  const deadline = performance.now() + options.deadlineMs;
  for (let i = 0; i < options.warmup && performance.now() < deadline; i++) await noop.remote();
  const samples: number[] = [];
  for (let i = 0; i < options.count && performance.now() < deadline; i++) {
    const started = performance.now();
    const value = await noop.remote();
    samples.push(performance.now() - started);
    if (value !== null) throw new Error(`noop.remote() returned ${String(value)}, expected null`);
    if ((i + 1) % 500 === 0) options.progress(i + 1, options.count);
  }
  return { samples };
}
