/**
 * `.map()` throughput: inputs per second of a no-op handler over a map of `count` inputs, from the
 * moment the client pulls the first input (just before it sends the first chunk) to the moment
 * the last output is yielded. Outputs are checked against their inputs (in order).
 */
import type { Kiln } from "../runtime/client/index.js";
import type { Progress } from "./floors.js";

export interface MapThroughputResult {
  inputs: number;
  ms: number;
  perSecond: number;
}

export async function runMap(
  kiln: Kiln,
  target: { app: string; fn: string },
  options: { count: number; deadlineMs: number; progress: Progress },
): Promise<MapThroughputResult> {
  const noop = kiln.function<(x: number) => number>(target.app, target.fn);
  let firstPulled = 0;
  function* inputs(n: number): Generator<number> {
    firstPulled = performance.now();
    for (let i = 0; i < n; i++) yield i;
  }
  const deadline = performance.now() + options.deadlineMs;
  let received = 0;
  let last = 0;
  for await (const value of noop.map(inputs(options.count))) {
    if (value !== received)
      throw new Error(`map output ${received} is ${String(value)}, expected ${received}`);
    received += 1;
    last = performance.now();
    if (received % 2500 === 0) options.progress(received, options.count);
    if (last > deadline) break; // a bounded loop: report what came back in time
  }
  const ms = last - firstPulled;
  return { inputs: received, ms, perSecond: received === 0 ? 0 : (received / ms) * 1000 };
}

export async function measureMapThroughput(
  kiln: Kiln,
  target: { app: string; fn: string },
  options: { warmup: number; count: number; deadlineMs: number; progress: Progress },
): Promise<MapThroughputResult> {
  if (options.warmup > 0)
    await runMap(kiln, target, {
      count: options.warmup,
      deadlineMs: options.deadlineMs / 2,
      progress: () => undefined,
    });
  return runMap(kiln, target, {
    count: options.count,
    deadlineMs: options.deadlineMs,
    progress: options.progress,
  });
}
