/**
 * BullMQ's consumer in its own process, for the separate-process latency rows: a Worker on
 * `<queue>` with processor `job => job.data` and the given concurrency, as BullMQ workers are
 * deployed apart from the producers that add jobs. Says "ready" once connected.
 *
 *   argv: <redis url> <queue> <concurrency>
 */
import { Worker } from "bullmq";

async function main(): Promise<void> {
  const [redisUrl, name, concurrencyText] = process.argv.slice(2);
  if (!redisUrl || !name) throw new Error("usage: bullmq-worker <redis url> <queue> <concurrency>");
  const url = new URL(redisUrl);
  const worker = new Worker<number, number>(name, async (job) => job.data, {
    connection: { host: url.hostname, port: Number(url.port) },
    concurrency: Number(concurrencyText ?? 1),
  });
  worker.on("error", () => undefined); // surfaces as the caller's missing completions
  await worker.waitUntilReady();
  process.send?.({ t: "ready" });
  process.on("disconnect", () => void worker.close().finally(() => process.exit(0)));
}

main().catch((error: unknown) => {
  process.send?.({ t: "error", message: (error as Error)?.stack ?? String(error) });
  process.exit(1);
});
