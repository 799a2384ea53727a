/**
 * Warm call latency, sequential calls timed one by one: `.remote()` of a no-op handler on a
 * container that is already up (HTTP POST with `waitMs`, the agent enqueues, the pool dispatches
 * over IPC, the outcome is stored and announced, the response comes back), beside other callers
 * (the HTTP echo and two-hop echo floors; on Redis, BullMQ and kiln on the embedded store).
 *
 * The callers are interleaved in blocks, after a warm-up of each: they share one process and one
 * HTTP client library (undici), whose JIT warm-up moves a round trip a lot over the first few
 * thousand calls, and the box's load drifts, so measuring one after the other would flatter
 * whichever runs second.
 */
import type { Kiln } from "../runtime/client/index.js";
import type { HttpEcho, Progress } from "./floors.js";

export interface RemoteLatencyResult {
  kiln: number[];
  /** The HTTP echo. */
  floor: number[];
  /** The two-hop echo (HTTP, then IPC to a child). */
  twoHop: number[];
}

/** A caller of `.remote()` on a no-op function, checking what comes back. */
export function noopRemote(kiln: Kiln, target: { app: string; fn: string }): () => Promise<void> {
  const noop = kiln.function<(x?: unknown) => unknown>(target.app, target.fn);
  return async () => {
    const value = await noop.remote();
    if (value !== null)
      throw new Error(
        `${target.app}.${target.fn}.remote() returned ${String(value)}, expected null`,
      );
  };
}

/**
 * `count` sequential calls of each caller, in alternating blocks of `block`, after `warmup` calls
 * of each (alternating one by one). Returns the samples (ms) per caller, in the callers' order.
 */
export async function measureInterleaved(
  callers: readonly (() => Promise<void>)[],
  options: { warmup: number; count: number; block: number; deadlineMs: number; progress: Progress },
): Promise<number[][]> {
  const deadline = performance.now() + options.deadlineMs;
  for (let i = 0; i < options.warmup && performance.now() < deadline; i++) {
    for (const call of callers) await call();
  }
  const samples = callers.map((): number[] => []);
  const timeBlock = async (call: () => Promise<void>, into: number[]): Promise<void> => {
    const end = Math.min(options.count, into.length + options.block);
    while (into.length < end && performance.now() < deadline) {
      const started = performance.now();
      await call();
      into.push(performance.now() - started);
    }
  };
  while ((samples[0]?.length ?? 0) < options.count && performance.now() < deadline) {
    for (const [i, call] of callers.entries()) await timeBlock(call, samples[i] ?? []);
    options.progress(samples[0]?.length ?? 0, options.count);
  }
  return samples;
}

export async function measureRemoteLatency(
  kiln: Kiln,
  target: { app: string; fn: string },
  echo: HttpEcho,
  twoHop: HttpEcho,
  options: { warmup: number; count: number; block: number; deadlineMs: number; progress: Progress },
): Promise<RemoteLatencyResult> {
  const [kilnSamples = [], floorSamples = [], twoHopSamples = []] = await measureInterleaved(
    [noopRemote(kiln, target), () => echo.call(), () => twoHop.call()],
    options,
  );
  return { kiln: kilnSamples, floor: floorSamples, twoHop: twoHopSamples };
}
