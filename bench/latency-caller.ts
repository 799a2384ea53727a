/**
 * A caller in its own process, for the Redis latency rows where nothing shares the caller's
 * process (as an API server calling kiln, or adding BullMQ jobs for workers elsewhere):
 *
 *   kind "kiln":   `.remote()` of a no-op function through the agent's HTTP API (the built client)
 *   kind "bullmq": `queue.add()` then `job.waitUntilFinished(queueEvents)`, the producer's side of
 *                  BullMQ; the Worker runs in another process (bench/bullmq-worker.ts)
 *
 * On `{ t: "run", count }` it makes `count` sequential calls and answers with their latencies
 * (ms), so the bench can interleave blocks of several callers.
 *
 *   argv: kiln <agent url> <token> <app> <fn>   |   bullmq <redis url> <queue>
 */
import { Queue, QueueEvents } from "bullmq";
import { connect } from "../runtime/client/index.js";
import { sendToParent } from "./child.js";

export type ToCaller = { t: "run"; count: number };
export type FromCaller =
  { t: "ready" } | { t: "samples"; ms: number[] } | { t: "error"; message: string };

const send = (message: FromCaller): Promise<void> => sendToParent(message);

async function caller(argv: string[]): Promise<() => Promise<void>> {
  const [kind, ...rest] = argv;
  if (kind === "kiln") {
    const [url, token, app, fn] = rest;
    if (!url || !token || !app || !fn)
      throw new Error("usage: latency-caller kiln <url> <token> <app> <fn>");
    const kiln = await connect({ url, token });
    const noop = kiln.function<(x?: unknown) => unknown>(app, fn);
    return async () => {
      const value = await noop.remote();
      if (value !== null)
        throw new Error(`${app}.${fn}.remote() returned ${String(value)}, expected null`);
    };
  }
  if (kind === "bullmq") {
    const [redisUrl, name] = rest;
    if (!redisUrl || !name) throw new Error("usage: latency-caller bullmq <redis url> <queue>");
    const url = new URL(redisUrl);
    const connection = { host: url.hostname, port: Number(url.port) };
    const queue = new Queue<number, number>(name, { connection });
    const events = new QueueEvents(name, { connection });
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    let calls = 0;
    return async () => {
      const data = ++calls;
      const job = await queue.add("call", data);
      const result = await job.waitUntilFinished(events);
      if (result !== data)
        throw new Error(`BullMQ job returned ${String(result)}, expected ${data}`);
    };
  }
  throw new Error(`latency-caller: unknown kind ${String(kind)}`);
}

async function main(): Promise<void> {
  const call = await caller(process.argv.slice(2));
  process.on("message", (message: ToCaller) => {
    if (message.t !== "run") return;
    void (async () => {
      try {
        const ms: number[] = [];
        for (let i = 0; i < message.count; i++) {
          const started = performance.now();
          await call();
          ms.push(performance.now() - started);
        }
        await send({ t: "samples", ms });
      } catch (error) {
        await send({ t: "error", message: (error as Error)?.stack ?? String(error) });
      }
    })();
  });
  await send({ t: "ready" });
}

process.on("disconnect", () => process.exit(0));
main().catch(async (error: unknown) => {
  await send({ t: "error", message: (error as Error)?.stack ?? String(error) });
  process.exit(1);
});
