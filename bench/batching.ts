/**
 * Dynamic batching (issue 5): `processes` client processes (bench/remote-client.ts, the built
 * client) each make `perProcess` single `.remote()` calls at once, all in flight together, into
 * a function; the clock runs from "go" (every process connected, warmed up on `warmup`, a no-op
 * function, with as many concurrent calls, then with a few calls of the measured function, and
 * ready) to the last process's last result. The handler reports the batch each input rode in, so the mean batch size is
 * inputs / distinct batches. Run once on the batched function, once on the same work unbatched.
 */
import { forkBench, killAll, nextMessage } from "./child.js";
import type { Progress } from "./floors.js";
import type { FromClient, ToClient } from "./remote-client.js";

export interface BatchingResult {
  calls: number;
  ms: number;
  perSecond: number;
  batches: number;
  meanBatchSize: number;
  /** Each process's own time from "go" to its last result. */
  processMs: number[];
  /** performance.now() at "go" (this process's clock). */
  goAt: number;
}

export async function measureBatching(
  agent: { url: string; token: string },
  target: { app: string; fn: string },
  options: {
    processes: number;
    perProcess: number;
    deadlineMs: number;
    progress: Progress;
    /** Each process first makes `perProcess` concurrent calls of this no-op function, then `targetCalls` of the measured one. */
    warmup?: { app: string; fn: string; targetCalls: number };
  },
): Promise<BatchingResult> {
  const warm = options.warmup
    ? [options.warmup.app, options.warmup.fn, String(options.warmup.targetCalls)]
    : [];
  const children = Array.from({ length: options.processes }, (_, p) =>
    forkBench("remote-client.js", [
      agent.url,
      agent.token,
      target.app,
      target.fn,
      String(options.perProcess),
      String(p * options.perProcess),
      ...warm,
    ]),
  );
  try {
    await Promise.all(children.map((child) => nextMessage<FromClient>(child, '"ready"', 30_000)));
    const dones = children.map((child) =>
      nextMessage<FromClient>(child, "its results", options.deadlineMs),
    );
    const started = performance.now();
    for (const child of children) child.send({ t: "go" } satisfies ToClient);
    let finished = 0;
    const results = await Promise.all(
      dones.map(async (done) => {
        const message = await done;
        options.progress(++finished * options.perProcess, options.processes * options.perProcess);
        return message;
      }),
    );
    const ms = performance.now() - started;
    const batches = new Set<string>();
    let calls = 0;
    const processMs: number[] = [];
    for (const message of results) {
      if (message.t !== "done") throw new Error(`client process answered ${message.t}`);
      if (message.wrong > 0)
        throw new Error(
          `${target.app}.${target.fn}: ${message.wrong} results were not their own input`,
        );
      calls += message.calls;
      processMs.push(message.ms);
      for (const batch of message.batches) batches.add(batch);
    }
    return {
      calls,
      ms,
      perSecond: (calls / ms) * 1000,
      batches: batches.size,
      meanBatchSize: calls / batches.size,
      processMs,
      goAt: started,
    };
  } finally {
    await killAll(children);
  }
}
