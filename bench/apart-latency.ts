/**
 * Warm call latency with the caller in its own process, kiln on Redis beside BullMQ deployed the
 * usual way (producer and worker in separate processes): what an API server sees when it calls
 * a function, rather than a producer that shares its process with the worker.
 *
 * - kiln: a caller process (bench/latency-caller.ts, the built client) -> the agent on Redis
 *   (this process) -> the function's container process.
 * - BullMQ: a producer process (queue.add + waitUntilFinished, the same caller script) -> Redis
 *   -> a Worker process (bench/bullmq-worker.ts, processor `job => job.data`).
 *
 * Both callers warm up, then run sequential calls in alternating blocks (the box's load drifts).
 */
import type { ChildProcess } from "node:child_process";
import { forkBench, killAll, nextMessage } from "./child.js";
import type { Progress } from "./floors.js";
import type { FromCaller, ToCaller } from "./latency-caller.js";

export interface ApartLatency {
  kiln: number[];
  bullmq: number[];
}

async function run(caller: ChildProcess, count: number, timeoutMs: number): Promise<number[]> {
  const answer = nextMessage<FromCaller>(caller, `${count} calls`, timeoutMs);
  caller.send({ t: "run", count } satisfies ToCaller);
  const message = await answer;
  if (message.t !== "samples") throw new Error(`latency caller answered ${message.t}`);
  return message.ms;
}

export async function measureApartLatency(options: {
  agent: { url: string; token: string };
  target: { app: string; fn: string };
  redisUrl: string;
  queue: string;
  concurrency: number;
  warmup: number;
  count: number;
  block: number;
  deadlineMs: number;
  progress: Progress;
}): Promise<ApartLatency> {
  const { agent, target } = options;
  const worker = forkBench("bullmq-worker.js", [
    options.redisUrl,
    options.queue,
    String(options.concurrency),
  ]);
  const kilnCaller = forkBench("latency-caller.js", [
    "kiln",
    agent.url,
    agent.token,
    target.app,
    target.fn,
  ]);
  const bullCaller = forkBench("latency-caller.js", ["bullmq", options.redisUrl, options.queue]);
  const children = [worker, kilnCaller, bullCaller];
  try {
    await Promise.all(children.map((child) => nextMessage<FromCaller>(child, '"ready"', 30_000)));
    const deadline = performance.now() + options.deadlineMs;
    const left = (): number => Math.max(1_000, deadline - performance.now());
    for (let done = 0; done < options.warmup; done += options.block) {
      const n = Math.min(options.block, options.warmup - done);
      await run(kilnCaller, n, left());
      await run(bullCaller, n, left());
    }
    const kiln: number[] = [];
    const bullmq: number[] = [];
    while (kiln.length < options.count && performance.now() < deadline) {
      const n = Math.min(options.block, options.count - kiln.length);
      kiln.push(...(await run(kilnCaller, n, left())));
      bullmq.push(...(await run(bullCaller, n, left())));
      options.progress(kiln.length, options.count);
    }
    return { kiln, bullmq };
  } finally {
    await killAll(children);
  }
}
