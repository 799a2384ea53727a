/**
 * Warm `.remote()` latency: sequential calls of a no-op handler on a container that is already
 * up, timed one by one around `await fn.remote()` (HTTP POST with `waitMs`, the agent enqueues,
 * the pool dispatches over IPC, the outcome is stored and announced, the response comes back).
 *
 * The floor's round trips are interleaved with kiln's in blocks, after a warm-up of both: they
 * share one `fetch` (undici), whose JIT warm-up alone moves a round trip by 2x (0.45 -> 0.23 ms
 * over the first few thousand calls on the reference machine), so measuring one after the other
 * would flatter whichever runs second.
 */
import type { Kiln } from "../runtime/client/index.js";
import type { HttpEcho, Progress } from "./floors.js";

export interface RemoteLatencyResult {
  kiln: number[];
  floor: number[];
}

export async function measureRemoteLatency(
  kiln: Kiln,
  target: { app: string; fn: string },
  echo: HttpEcho,
  options: { warmup: number; count: number; block: number; deadlineMs: number; progress: Progress },
): Promise<RemoteLatencyResult> {
  const noop = kiln.function<(x?: unknown) => unknown>(target.app, target.fn);
  const remote = async (): Promise<void> => {
    const value = await noop.remote();
    if (value !== null) throw new Error(`noop.remote() returned ${String(value)}, expected null`);
  };
  const deadline = performance.now() + options.deadlineMs;
  for (let i = 0; i < options.warmup && performance.now() < deadline; i++) {
    await remote();
    await echo.call();
  }
  const result: RemoteLatencyResult = { kiln: [], floor: [] };
  const timeBlock = async (call: () => Promise<void>, into: number[]): Promise<void> => {
    const end = Math.min(options.count, into.length + options.block);
    while (into.length < end && performance.now() < deadline) {
      const started = performance.now();
      await call();
      into.push(performance.now() - started);
    }
  };
  while (result.kiln.length < options.count && performance.now() < deadline) {
    await timeBlock(remote, result.kiln);
    await timeBlock(() => echo.call(), result.floor);
    options.progress(result.kiln.length, options.count);
  }
  return result;
}
