/**
 * The BullMQ baseline of the Redis rows: the same no-op work as kiln's `noop` fixture on the same
 * redis-server, the way BullMQ is normally used.
 *
 * - One `Queue` (producer) and one `Worker` (consumer, processor `job => job.data`, in this
 *   process: no IPC, unlike a kiln container) with `concurrency` = kiln's containers x maxInputs,
 *   and one `QueueEvents`. Default job options: completed jobs are kept, as kiln keeps results.
 * - `sandboxed`: the processor runs in a child process instead (BullMQ's sandboxed processors,
 *   bench/bullmq-processor.ts; one child per concurrent job), the isolation kiln's containers
 *   give, so a process hop like kiln's. Used for latency (one job at a time).
 * - Throughput: `addBulk` of `count` jobs at once, done when the worker has emitted `completed`
 *   for every one of them (the worker's view: earlier than a producer would hear of it through
 *   QueueEvents, so this favours BullMQ). Each return value is checked against its job's data.
 * - Latency: `queue.add()` of one job, then `job.waitUntilFinished(queueEvents)`: the producer
 *   hears of the completion, as a `.remote()` caller does.
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Queue, QueueEvents, Worker, type Job } from "bullmq";
import type { Progress } from "./floors.js";
import type { MapThroughputResult } from "./map-throughput.js";

export interface BullmqBaseline {
  /** `addBulk` of `count` jobs; resolves when the worker has completed all of them. */
  bulk(
    count: number,
    options: { deadlineMs: number; progress: Progress },
  ): Promise<MapThroughputResult>;
  /** One job added and awaited (waitUntilFinished). */
  call(): Promise<void>;
  close(): Promise<void>;
}

/** The compiled sandboxed processor, whether this runs from dist/ or from source. */
function processorPath(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith(".js")) return join(dirname(here), "bullmq-processor.js");
  return resolve(dirname(here), "..", "dist", "bench", "bullmq-processor.js");
}

export async function startBullmq(
  redisUrl: string,
  options: { concurrency: number; queueName?: string; sandboxed?: boolean },
): Promise<BullmqBaseline> {
  const url = new URL(redisUrl);
  const connection = { host: url.hostname, port: Number(url.port) };
  const name = options.queueName ?? "kiln-bench";
  const queue = new Queue<number, number>(name, { connection });
  const events = new QueueEvents(name, { connection });
  let onCompleted: ((job: Job<number, number>, result: number) => void) | null = null;
  const worker = options.sandboxed
    ? new Worker<number, number>(name, processorPath(), {
        connection,
        concurrency: options.concurrency,
      })
    : new Worker<number, number>(name, async (job) => job.data, {
        connection,
        concurrency: options.concurrency,
      });
  worker.on("completed", (job, result) => onCompleted?.(job, result));
  worker.on("error", () => undefined); // surfaced as missing completions (the deadline)
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady(), worker.waitUntilReady()]);
  let runs = 0;
  let calls = 0;
  let closing: Promise<void> | null = null;

  return {
    async bulk(count, { deadlineMs, progress }) {
      const run = `bulk-${++runs}`;
      let completed = 0;
      let wrong = 0;
      let last = 0;
      let timer: NodeJS.Timeout | undefined;
      const done = new Promise<void>((resolveDone) => {
        onCompleted = (job, result) => {
          if (job.name !== run) return;
          if (result !== job.data) wrong += 1;
          completed += 1;
          last = performance.now();
          if (completed % 2500 === 0) progress(completed, count);
          if (completed === count) resolveDone();
        };
        timer = setTimeout(resolveDone, deadlineMs);
      });
      const started = performance.now();
      await queue.addBulk(Array.from({ length: count }, (_, i) => ({ name: run, data: i })));
      await done;
      clearTimeout(timer);
      onCompleted = null;
      if (wrong > 0)
        throw new Error(
          `BullMQ: ${wrong} of ${completed} jobs returned something other than their data`,
        );
      const ms = last - started;
      return { inputs: completed, ms, perSecond: completed === 0 ? 0 : (completed / ms) * 1000 };
    },
    async call() {
      const data = ++calls;
      const job = await queue.add("call", data);
      const result = await job.waitUntilFinished(events);
      if (result !== data)
        throw new Error(`BullMQ job returned ${String(result)}, expected ${data}`);
    },
    close() {
      closing ??= (async () => {
        await worker.close();
        await events.close();
        await queue.close();
      })();
      return closing;
    },
  };
}
