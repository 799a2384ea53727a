/** Autoscaling and dynamic batching with real containers and real client processes. */
import { join } from "node:path";
import { execa } from "execa";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RemoteError, type FunctionStatus } from "../../runtime/client/index.js";
import type * as h from "./fixtures/handlers.js";
import { deployFixture, fixturesDir, startAgent, type Harness } from "./harness.js";
import { waitFor } from "../support/wait.js";

let harness: Harness;

beforeAll(async () => {
  // 4 cores of capacity so the burst can reach maxContainers even on a 2-core machine.
  harness = await startAgent({ cpu: 4 });
  await deployFixture(harness.kiln);
});

afterAll(async () => harness?.close());

async function fnStatus(name: string): Promise<FunctionStatus> {
  const status = await harness.kiln.status();
  const fn = status.apps[0]?.functions.find((f) => f.name === name);
  if (!fn) throw new Error(`no status for ${name}`);
  return fn;
}

type Echoed = Awaited<ReturnType<typeof h.batchEcho>>[number];

describe("autoscaling", () => {
  it("a burst scales up to maxContainers, then back to zero after the scaledown window", async () => {
    const burst = harness.kiln.function<typeof h.sleep>("e2e", "burst");
    const calls = await Promise.all(Array.from({ length: 40 }, (_, i) => burst.spawn(150, i)));
    let peak = 0;
    await waitFor(
      "all burst calls",
      async () => {
        peak = Math.max(peak, (await fnStatus("burst")).containers.length);
        const states = await Promise.all(calls.slice(-5).map((c) => c.status()));
        return states.every((s) => s === "succeeded") ? true : undefined;
      },
      30_000,
    );
    expect(peak).toBe(4);
    expect(await Promise.all(calls.map((c) => c.get()))).toEqual(
      Array.from({ length: 40 }, (_, i) => i),
    );
    const idleFrom = Date.now();
    await waitFor("burst to scale to zero", async () =>
      (await fnStatus("burst")).containers.length === 0 ? true : undefined,
    );
    // scaledownWindow is 2 s: gone within the window plus a few ticks.
    expect(Date.now() - idleFrom).toBeLessThan(2_000 + 6_000);
    const status = await fnStatus("burst");
    expect(status.scaling.desired).toBe(0);
    expect(status.scaling.lastDecision?.reason).toContain("peak load 0");
  });

  it("minContainers stay warm with no input at all, past the scaledown window", async () => {
    await waitFor("two warm containers", async () =>
      (await fnStatus("warm")).scaling.idle === 2 ? true : undefined,
    );
    const before = (await fnStatus("warm")).containers.map((c) => c.id).sort();
    await new Promise((r) => setTimeout(r, 2_500)); // > scaledownWindow (1 s): they must still be the same two
    expect((await fnStatus("warm")).containers.map((c) => c.id).sort()).toEqual(before);
  });

  it("bufferContainers extra idle containers are kept while the function is active", async () => {
    const buffered = harness.kiln.function<typeof h.sleep>("e2e", "buffered");
    // Busy until cancelled: the buffer's cold starts may take long on a loaded machine.
    const call = await buffered.spawn(120_000);
    const status = await waitFor("one busy plus two buffer containers", async () => {
      const s = await fnStatus("buffered");
      return s.scaling.busy === 1 && s.scaling.idle === 2 ? s : undefined;
    });
    expect(status.scaling.desired).toBe(3);
    await call.cancel();
  });
});

describe("dynamic batching", () => {
  it("joins single calls from two client processes into one batch", async () => {
    const script = join(fixturesDir, "remote-many.mjs");
    // Both processes connect, then call at the same moment: well inside the batch's 1 s wait
    // however long each took to start (over 1 s apart on a busy machine, before).
    const callers = ["a", "b"].map((tag) => {
      const child = execa(
        process.execPath,
        [script, harness.agent.url, harness.agent.token, "batchEcho", tag, "4"],
        { timeout: 60_000 },
      );
      let said = "";
      child.stderr?.on("data", (chunk: Buffer) => (said += chunk.toString()));
      return { child, ready: () => said.includes("ready") };
    });
    await waitFor("both callers to connect", () => callers.every((c) => c.ready()));
    for (const { child } of callers) child.stdin?.end("go\n");
    const [a, b] = await Promise.all(callers.map(({ child }) => child));
    const results = [
      ...(JSON.parse(a!.stdout) as Echoed[]),
      ...(JSON.parse(b!.stdout) as Echoed[]),
    ];
    // Each caller got its own item back.
    expect(results.map((r) => r.item).sort()).toEqual([
      "a-0",
      "a-1",
      "a-2",
      "a-3",
      "b-0",
      "b-1",
      "b-2",
      "b-3",
    ]);
    // At least one batch carried inputs of both processes, and none was larger than maxBatchSize.
    const batches = new Map<string, string[]>();
    for (const r of results) batches.set(r.batch, [...(batches.get(r.batch) ?? []), r.item]);
    expect(
      [...batches.values()].some(
        (items) => items.some((i) => i.startsWith("a")) && items.some((i) => i.startsWith("b")),
      ),
    ).toBe(true);
    expect(results.every((r) => r.size <= 8)).toBe(true);
  });

  it("a batch never exceeds maxBatchSize and every input gets exactly its own result (property)", async () => {
    const small = harness.kiln.function<(item: string) => Echoed>("e2e", "batchSmall");
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 40 }), async (n) => {
        const items = Array.from({ length: n }, (_, i) => `item-${i}-${Math.random()}`);
        const results = await Promise.all(items.map((item) => small.remote(item)));
        expect(results.map((r) => r.item)).toEqual(items);
        const sizes = new Map<string, number>();
        for (const r of results) sizes.set(r.batch, (sizes.get(r.batch) ?? 0) + 1);
        for (const r of results) {
          expect(r.size).toBeLessThanOrEqual(5);
          expect(sizes.get(r.batch)).toBe(r.size);
        }
      }),
      { numRuns: 10 },
    );
  });

  it("a batched handler that returns the wrong number of results fails every caller of that batch", async () => {
    const bad = harness.kiln.function<(x: number) => number>("e2e", "badBatch");
    const outcomes = await Promise.allSettled([1, 2, 3].map((x) => bad.remote(x)));
    for (const outcome of outcomes) {
      expect(outcome.status).toBe("rejected");
      const error = (outcome as PromiseRejectedResult).reason as RemoteError;
      expect(error).toBeInstanceOf(RemoteError);
      expect(error.remoteName).toBe("BatchResultError");
      expect(error.remoteMessage).toMatch(/returned \d results for a batch of \d inputs/);
    }
  });

  it("a batched function also works with map", async () => {
    const small = harness.kiln.function<(item: string) => Echoed>("e2e", "batchSmall");
    const out: Echoed[] = [];
    for await (const r of small.map(Array.from({ length: 23 }, (_, i) => `m${i}`))) out.push(r);
    expect(out.map((r) => r.item)).toEqual(Array.from({ length: 23 }, (_, i) => `m${i}`));
    expect(out.every((r) => r.size <= 5)).toBe(true);
  });
});
