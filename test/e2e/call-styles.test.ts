/** Every call style end to end: a real agent, real worker processes, the public client. */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RemoteError, type FunctionCall } from "../../runtime/client/index.js";
import type * as h from "./fixtures/handlers.js";
import { deployFixture, startAgent, type Harness } from "./harness.js";
import { NOT_HUNG_MS, waitFor } from "../support/wait.js";

let harness: Harness;

beforeAll(async () => {
  harness = await startAgent();
  await deployFixture(harness.kiln);
});

afterAll(async () => {
  await harness?.close();
});

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

describe("remote", () => {
  it("returns the handler's result", async () => {
    const add = harness.kiln.function<typeof h.add>("e2e", "add");
    expect(await add.remote(2, 3)).toBe(5);
  });

  it("round-trips rich values both ways", async () => {
    const echo = harness.kiln.function<typeof h.echo>("e2e", "echo");
    const value = {
      date: new Date("2026-01-02T03:04:05.678Z"),
      map: new Map<unknown, unknown>([
        ["k", { nested: [1, 2] }],
        [1, new Set([1n, 2n])],
      ]),
      set: new Set(["a", "b"]),
      big: -(2n ** 90n),
      bytes: new Uint8Array([0, 255, 7]),
      buffer: Buffer.from("buffer!"),
      nothing: null,
      missing: undefined,
      numbers: [Number.NaN, -0, Number.POSITIVE_INFINITY],
      error: Object.assign(new TypeError("carried"), { code: "E_CARRIED" }),
    };
    const back = (await echo.remote(value)) as typeof value;
    expect(back.date).toEqual(value.date);
    expect(back.map).toEqual(value.map);
    expect(back.set).toEqual(value.set);
    expect(back.big).toBe(value.big);
    expect(back.bytes).toEqual(value.bytes);
    expect(Buffer.isBuffer(back.buffer)).toBe(true);
    expect(back.buffer.toString()).toBe("buffer!");
    expect(back.nothing).toBeNull();
    expect("missing" in back && back.missing === undefined).toBe(true);
    expect(Object.is(back.numbers[1], -0)).toBe(true);
    expect(back.numbers[0]).toBeNaN();
    expect(back.error).toBeInstanceOf(Error);
    expect(back.error.name).toBe("TypeError");
    expect(back.error.message).toBe("carried");
    expect((back.error as Error & { code?: string }).code).toBe("E_CARRIED");
  });

  it("a thrown error arrives as RemoteError with the remote name, message and stack", async () => {
    const throws = harness.kiln.function<typeof h.throws>("e2e", "throws");
    const error = await throws.remote("nope").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteError);
    const remote = error as RemoteError;
    expect(remote.remoteName).toBe("RangeError");
    expect(remote.remoteMessage).toBe("nope");
    expect(remote.remoteStack).toContain("handlers.ts");
    expect(remote.code).toBe("REMOTE_ERROR");
  });

  it("a class handler runs enter() once per container and keeps its state", async () => {
    const counter = harness.kiln.function<typeof h.Counter.prototype.next>("e2e", "counter");
    const first = await counter.remote();
    const second = await counter.remote();
    expect(first.entered).toBe(1);
    expect(second.entered).toBe(1);
    expect(second.pid).toBe(first.pid);
    expect(second.calls).toBe(first.calls + 1);
  });

  it("a handler calls other functions through connect()", async () => {
    const nested = harness.kiln.function<typeof h.nested>("e2e", "nested");
    expect(await nested.remote(5)).toEqual([100, 101, 102, 103, 104]);
  });

  it("an unknown app or function is a NotFoundError that names what exists", async () => {
    await expect(harness.kiln.function("e2e", "nope").remote()).rejects.toMatchObject({
      name: "NotFoundError",
      message: expect.stringContaining("its functions: add, alwaysCrash"),
    });
    await expect(harness.kiln.function("ghost", "x").remote()).rejects.toMatchObject({
      name: "NotFoundError",
      message: expect.stringContaining("deployed apps: e2e"),
    });
  });
});

describe("spawn and FunctionCall", () => {
  it("spawn returns at once; status moves to succeeded; get and functionCall(id).get give the result", async () => {
    const sleep = harness.kiln.function<typeof h.sleep>("e2e", "sleep");
    const call = await sleep.spawn(300, "late");
    expect(call.id).toMatch(/^fc-/);
    expect(["pending", "running"]).toContain(await call.status());
    expect(await call.get({ timeoutMs: NOT_HUNG_MS })).toBe("late");
    expect(await call.status()).toBe("succeeded");
    expect(await harness.kiln.functionCall<string>(call.id).get()).toBe("late");
  });

  it("get with a short timeout throws TimeoutError and the call goes on", async () => {
    const sleep = harness.kiln.function<typeof h.sleep>("e2e", "sleep");
    const call = await sleep.spawn(800, "done");
    await expect(call.get({ timeoutMs: 50 })).rejects.toMatchObject({ name: "TimeoutError" });
    expect(await call.get({ timeoutMs: NOT_HUNG_MS })).toBe("done");
  });

  it("cancel of a pending or running call: get throws CancelledError, status is cancelled", async () => {
    const sleep = harness.kiln.function<typeof h.sleep>("e2e", "sleep");
    const calls: FunctionCall<unknown>[] = [];
    for (let i = 0; i < 6; i++) calls.push(await sleep.spawn(30_000));
    // sleep has maxContainers 4: some of these are running, some pending.
    await Promise.all(calls.map((c) => c.cancel()));
    for (const call of calls) {
      await expect(call.get({ timeoutMs: NOT_HUNG_MS })).rejects.toMatchObject({
        name: "CancelledError",
      });
      expect(await call.status()).toBe("cancelled");
    }
  });

  it("a waiting .remote() cancelled by its id ends at once with CancelledError; its late result is dropped", async () => {
    const sleep = harness.kiln.function<typeof h.sleep>("e2e", "sleep");
    const before = new Set(await harness.agent.store.keys("call:"));
    const started = Date.now();
    const waiting = sleep.remote(20_000, "late").then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
    const key = await waitFor("the call's record", async () =>
      (await harness.agent.store.keys("call:")).find((k) => !before.has(k)),
    );
    const call = harness.kiln.functionCall(key.slice("call:".length));
    await waitFor("the input to be claimed", async () =>
      (await harness.agent.store.stats("q:e2e:sleep")).claimed > 0 ? true : undefined,
    );
    await call.cancel();
    expect(await waiting).toMatchObject({ error: { name: "CancelledError" } });
    expect(Date.now() - started).toBeLessThan(15_000); // long before the handler would end
    expect(await call.status()).toBe("cancelled");
    await expect(call.get({ timeoutMs: 3_000 })).rejects.toMatchObject({ name: "CancelledError" });
  });

  it("a finished call's record expires with its result (none is kept forever)", async () => {
    const add = harness.kiln.function<typeof h.add>("e2e", "add");
    const sleep = harness.kiln.function<typeof h.sleep>("e2e", "sleep");
    expect(await add.remote(1, 1)).toBe(2);
    expect(await (await sleep.spawn(1, "s")).get({ timeoutMs: NOT_HUNG_MS })).toBe("s");
    const store = harness.agent.store;
    let finished = 0;
    for (const key of await store.keys("call:")) {
      const id = key.slice("call:".length);
      if ((await store.get(`result:${id}`)) === null) continue;
      finished += 1;
      expect(await store.ttl(key), `${key} has a result but no TTL`).not.toBeNull();
    }
    expect(finished).toBeGreaterThanOrEqual(2);
  });

  it("an unknown call id is a NotFoundError", async () => {
    await expect(harness.kiln.functionCall("fc-nope").get()).rejects.toMatchObject({
      name: "NotFoundError",
    });
  });
});

describe("map and starmap", () => {
  it("outputs match inputs, in order, whatever the handler's timing (property)", async () => {
    const sleep = harness.kiln.function<typeof h.sleep>("e2e", "sleep");
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 30 }), { minLength: 0, maxLength: 25 }),
        async (delays) => {
          const inputs = delays.map((ms, i) => [ms, i] as [number, number]);
          const out = await collect(sleep.starmap(inputs));
          expect(out).toEqual(inputs.map(([, i]) => i));
        },
      ),
      { numRuns: 8 },
    );
  });

  it("orderOutputs: false yields every output once, as completed", async () => {
    // One container running both inputs at once (maxInputs 10): the fast one finishes first.
    const sleep = harness.kiln.function<typeof h.sleep>("e2e", "sleepConcurrent");
    const out = await collect(
      sleep.starmap(
        [
          [500, "slow"],
          [0, "fast"],
        ],
        { orderOutputs: false },
      ),
    );
    expect(out).toEqual(["fast", "slow"]);
  });

  it("maxInputs lets one container run several inputs at once, and never more", async () => {
    const span = harness.kiln.function<typeof h.span>("e2e", "spanConcurrent");
    const spans = await collect(span.map(Array.from({ length: 15 }, () => 300)));
    expect(new Set(spans.map((s) => s.pid)).size).toBe(1);
    // Most inputs running at any instant: 10 (maxInputs), not 15 and not 1.
    const events = spans
      .flatMap((s) => [
        [s.start, 1],
        [s.end, -1],
      ])
      .sort((a, b) => (a[0] as number) - (b[0] as number) || (a[1] as number) - (b[1] as number));
    let running = 0;
    let peak = 0;
    for (const [, delta] of events) peak = Math.max(peak, (running += delta as number));
    expect(peak).toBe(10);
  });

  it("several iterables are zipped into arguments; the shortest ends the map", async () => {
    const add = harness.kiln.function<typeof h.add>("e2e", "add");
    expect(await collect(add.map([1, 2, 3, 4], [10, 20, 30]))).toEqual([11, 22, 33]);
  });

  it("takes async iterables", async () => {
    const add = harness.kiln.function<typeof h.add>("e2e", "add");
    async function* numbers() {
      for (let i = 0; i < 3; i++) yield i;
    }
    expect(await collect(add.map(numbers(), [1, 1, 1]))).toEqual([1, 2, 3]);
  });

  it("returnExceptions yields errors in place; without it the first error is thrown", async () => {
    const throws = harness.kiln.function<(m: string) => never>("e2e", "throws");
    const out = await collect(throws.map(["a", "b"], { returnExceptions: true }));
    expect(out).toHaveLength(2);
    expect(out[0]).toBeInstanceOf(RemoteError);
    expect((out[1] as RemoteError).remoteMessage).toBe("b");
    await expect(collect(throws.map(["a"]))).rejects.toBeInstanceOf(RemoteError);
  });

  it("a map larger than the 1,000 in-flight window streams through it", async () => {
    const add = harness.kiln.function<typeof h.add>("e2e", "add");
    const n = 2_500;
    const xs = Array.from({ length: n }, (_, i) => i);
    const out = await collect(add.map(xs, xs));
    expect(out).toEqual(xs.map((x) => 2 * x));
  });

  it("breaking out of a map drops its queued inputs", async () => {
    const sleep = harness.kiln.function<typeof h.sleep>("e2e", "sleep");
    let seen = 0;
    for await (const _ of sleep.map(Array.from({ length: 200 }, () => 20))) {
      seen += 1;
      if (seen === 3) break;
    }
    const status = await harness.kiln.status();
    const fn = status.apps.find((a) => a.name === "e2e")?.functions.find((f) => f.name === "sleep");
    expect(fn?.queue.pending).toBe(0);
  });
});

describe("remoteGen", () => {
  it("streams what a generator yields", async () => {
    const count = harness.kiln.function<typeof h.count>("e2e", "count");
    expect(await collect(count.remoteGen(5))).toEqual([0, 1, 2, 3, 4]);
  });

  it("an error mid-stream arrives after the items yielded before it", async () => {
    const count = harness.kiln.function<typeof h.count>("e2e", "count");
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const i of count.remoteGen(5, 2)) seen.push(i);
      })(),
    ).rejects.toMatchObject({ name: "RemoteError", remoteMessage: "stopped at 2" });
    expect(seen).toEqual([0, 1]);
  });

  it("calling a generator with remote() (or a function with remoteGen) says which to use", async () => {
    const count = harness.kiln.function("e2e", "count");
    await expect(count.remote(1)).rejects.toMatchObject({
      name: "InvalidError",
      message: expect.stringContaining("remoteGen"),
    });
    const add = harness.kiln.function("e2e", "add");
    await expect(collect(add.remoteGen(1, 2))).rejects.toMatchObject({ name: "InvalidError" });
  });
});

describe("logs", () => {
  it("captures stdout and stderr per call", async () => {
    const logs = harness.kiln.function<typeof h.logs>("e2e", "logs");
    const call = await logs.spawn("tagged");
    await call.get({ timeoutMs: NOT_HUNG_MS });
    const { lines } = await harness.kiln.http.request<{
      lines: { callId: string | null; stream: string; text: string }[];
    }>("GET", "/v1/apps/e2e/logs", { query: { function: "logs" } });
    const mine = lines.filter((l) => l.callId === call.id);
    expect(mine.map((l) => [l.stream, l.text.trim()])).toEqual(
      expect.arrayContaining([
        ["stdout", "hello from tagged"],
        ["stderr", "warning from tagged"],
      ]),
    );
  });
});
