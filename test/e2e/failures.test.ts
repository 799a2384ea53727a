/**
 * Failure handling through a real agent: platform retries when a worker dies, user retries when
 * the handler throws, timeouts and cancellation of synchronous infinite loops, broken enter().
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RemoteError } from "../../runtime/client/index.js";
import type * as h from "./fixtures/handlers.js";
import { deployFixture, startAgent, type Harness } from "./harness.js";
import { NOT_HUNG_MS, waitFor } from "../support/wait.js";

let harness: Harness;
let scratch: string;

beforeAll(async () => {
  harness = await startAgent();
  await deployFixture(harness.kiln);
  scratch = await mkdtemp(join(tmpdir(), "kiln-failures-"));
});

afterAll(async () => {
  await harness?.close();
  await rm(scratch, { recursive: true, force: true });
});

describe("platform retries", () => {
  it("a worker that exits mid-input is replaced and the input retried: the right result arrives", async () => {
    const crashOnce = harness.kiln.function<typeof h.crashOnce>("e2e", "crashOnce");
    expect(await crashOnce.remote(join(scratch, "crash-marker"))).toBe("survived");
    const { lines } = await harness.kiln.http.request<{ lines: { text: string }[] }>(
      "GET",
      "/v1/apps/e2e/logs",
      {
        query: { function: "crashOnce" },
      },
    );
    expect(lines.some((l) => l.text.includes("platform retry 1/3"))).toBe(true);
  });

  it("a worker that always dies fails the input after the platform retries, saying why", async () => {
    const alwaysCrash = harness.kiln.function("e2e", "alwaysCrash");
    const error = (await alwaysCrash.remote().catch((e: unknown) => e)) as RemoteError;
    expect(error).toBeInstanceOf(RemoteError);
    expect(error.remoteName).toBe("WorkerCrashed");
    expect(error.remoteMessage).toContain("failed 4 times");
    expect(error.remoteMessage).toContain("code 3");
  });
});

describe("a crash beside other inputs", () => {
  it("the inputs that shared the dead worker run alone: the crasher alone runs out of platform retries, the others succeed", async () => {
    const crashBeside = harness.kiln.function<typeof h.crashBeside>("e2e", "crashBeside");
    // One container, four slots: the crasher exits the worker while the three others still run.
    const crasher = await crashBeside.spawn("crash", 300);
    const good = await Promise.all([1, 2, 3].map(() => crashBeside.spawn("ok", 1_500)));
    const [bad, ...oks] = await Promise.allSettled(
      [crasher, ...good].map((call) => call.get({ timeoutMs: NOT_HUNG_MS })),
    );
    expect(oks.map((r) => r.status === "fulfilled" && r.value)).toEqual(["ok", "ok", "ok"]);
    expect(bad?.status).toBe("rejected");
    const error = (bad as PromiseRejectedResult).reason as RemoteError;
    expect(error).toBeInstanceOf(RemoteError);
    expect(error.remoteName).toBe("WorkerCrashed");
    expect(error.remoteMessage).toContain("failed 4 times");
    expect(error.remoteMessage).toContain("code 3");
    for (const call of good) expect((await call.info()).status).toBe("succeeded");

    const { lines } = await harness.kiln.http.request<{ lines: { text: string }[] }>(
      "GET",
      "/v1/apps/e2e/logs",
      { query: { function: "crashBeside" } },
    );
    const text = lines.map((l) => l.text);
    // The first crash charged none of them: each was isolated.
    expect(text.some((t) => t.includes(`input ${crasher.id}: `) && t.includes("runs alone"))).toBe(
      true,
    );
    // The crasher, alone, is the culprit: charged; the others never were.
    expect(text.some((t) => t.includes(`input ${crasher.id} (ran alone)`))).toBe(true);
    expect(text.some((t) => t.includes("platform retry 3/3"))).toBe(true);
    for (const call of good)
      expect(text.some((t) => t.includes(`input ${call.id}`) && /platform retry \d/.test(t))).toBe(
        false,
      );
  });

  it("inputs waiting to run alone are shown in the status and can be cancelled there", async () => {
    const crashBeside = harness.kiln.function<typeof h.crashBeside>("e2e", "crashBeside");
    const blocked = async (): Promise<string> => {
      const status = await harness.kiln.status();
      const app = status.apps.find((a) => a.name === "e2e");
      return app?.functions.find((f) => f.name === "crashBeside")?.blocked ?? "";
    };
    const crasher = await crashBeside.spawn("crash", 300);
    const sleepers = await Promise.all([1, 2].map(() => crashBeside.spawn("ok", 30_000)));
    // After the shared crash one of them runs alone in the only container; the others wait:
    // held by the pool (the status says so) or, when the crashed inputs came back one by one,
    // still queued behind the one that runs alone.
    await waitFor("one input to run alone while the others wait", async () => {
      const status = await harness.kiln.status();
      const fn = status.apps
        .find((a) => a.name === "e2e")
        ?.functions.find((f) => f.name === "crashBeside");
      if (!fn || fn.scaling.busy !== 1) return undefined;
      const { lines } = await harness.kiln.http.request<{ lines: { text: string }[] }>(
        "GET",
        "/v1/apps/e2e/logs",
        { query: { function: "crashBeside", tail: 5_000 } },
      );
      const isolated = (id: string) =>
        lines.some((l) => l.text.includes(`input ${id}:`) && l.text.includes("runs alone"));
      if (!sleepers.some((call) => isolated(call.id))) return undefined;
      const held = (fn.blocked ?? "").includes("wait to run alone");
      return held || fn.queue.spawnPending > 0 ? true : undefined;
    });
    await Promise.all(sleepers.map((call) => call.cancel()));
    for (const call of sleepers) {
      await expect(call.get({ timeoutMs: NOT_HUNG_MS })).rejects.toMatchObject({
        name: "CancelledError",
      });
      expect(await call.status()).toBe("cancelled");
    }
    await expect(crasher.get({ timeoutMs: NOT_HUNG_MS })).rejects.toMatchObject({
      remoteName: "WorkerCrashed",
    });
    await waitFor("nothing held", async () =>
      (await blocked()).includes("wait to run alone") ? undefined : true,
    );
    expect(await crashBeside.remote("ok", 10)).toBe("ok");
  });
});

describe("thrown values that are not Errors", () => {
  it("throw null, undefined, an object or a string is a RemoteError of that input alone; the inputs beside it succeed", async () => {
    const throwValue = harness.kiln.function<typeof h.throwValue>("e2e", "throwValue");
    // One container, four slots: the bad input shares it with three good ones.
    const [bad, ...good] = await Promise.allSettled([
      throwValue.remote("null", 300),
      throwValue.remote("ok", 300),
      throwValue.remote("ok", 300),
      throwValue.remote("ok", 300),
    ]);
    expect(good.map((r) => r.status === "fulfilled" && r.value)).toEqual(["ok", "ok", "ok"]);
    expect(bad?.status).toBe("rejected");
    const error = (bad as PromiseRejectedResult).reason as RemoteError;
    expect(error).toBeInstanceOf(RemoteError);
    expect(error.remoteName).toBe("NonErrorThrown");
    expect(error.remoteMessage).toBe("the handler threw null, not an Error");

    const undef = (await throwValue.remote("undefined").catch((e: unknown) => e)) as RemoteError;
    expect(undef.remoteMessage).toBe("the handler threw undefined, not an Error");
    const text = (await throwValue.remote("string").catch((e: unknown) => e)) as RemoteError;
    expect(text.remoteMessage).toBe("the handler threw 'plain text', not an Error");
    const object = (await throwValue.remote("object").catch((e: unknown) => e)) as RemoteError;
    expect(object).toBeInstanceOf(RemoteError);
    expect(object.remoteMessage).toBe(
      "the handler threw { code: 42, reason: 'quota' }, not an Error",
    );
    expect(object.remoteFields).toEqual({ code: 42, reason: "quota" });
  });
});

describe("user retries", () => {
  it("retries a throwing handler per the function's policy, then succeeds", async () => {
    const flaky = harness.kiln.function<typeof h.flaky>("e2e", "flaky");
    expect(await flaky.remote(join(scratch, "flaky-ok"), 2)).toBe(3);
  });

  it("gives up after maxRetries and reports the handler's last error", async () => {
    const flaky = harness.kiln.function<typeof h.flaky>("e2e", "flaky");
    await expect(flaky.remote(join(scratch, "flaky-fail"), 5)).rejects.toMatchObject({
      name: "RemoteError",
      remoteMessage: "flaky failure 3",
    });
  });

  it("retries 0 by default: a throwing handler runs once", async () => {
    const throws = harness.kiln.function("e2e", "throws");
    const call = await throws.spawn("once");
    await expect(call.get({ timeoutMs: NOT_HUNG_MS })).rejects.toBeInstanceOf(RemoteError);
    expect((await call.info()).attempts).toBe(1);
  });
});

describe("timeouts and cancellation kill the work", () => {
  it("a synchronous infinite loop past its timeout fails with FunctionTimeoutError, and the next input succeeds", async () => {
    const busy = harness.kiln.function("e2e", "busyLoop");
    const started = Date.now();
    await expect(busy.remote()).rejects.toMatchObject({
      name: "FunctionTimeoutError",
      message: expect.stringContaining("timeout of 1 s"),
    });
    // Far below a hang (the call would wait out its 50 s long poll); the cold start before the 1 s
    // timeout can take seconds on a busy 2-core CI box (another suite writes 900 MiB meanwhile).
    expect(Date.now() - started).toBeLessThan(20_000);
    // The worker was killed: the pool holds no busy container for it.
    const status = await harness.kiln.status();
    const fn = status.apps[0]?.functions.find((f) => f.name === "busyLoop");
    expect(fn?.containers.every((c) => c.inFlight === 0)).toBe(true);
    const echo = harness.kiln.function<typeof h.echo>("e2e", "echo");
    expect(await echo.remote("after")).toBe("after");
  });

  it("cancel kills a synchronous infinite loop; the function serves the next input", async () => {
    const busy = harness.kiln.function("e2e", "busyLoopLong");
    const call = await busy.spawn();
    await waitFor("the loop to run", async () =>
      (await call.status()) === "running" ? true : undefined,
    );
    const pidsBefore = await containerPids("busyLoopLong");
    await call.cancel();
    await expect(call.get({ timeoutMs: NOT_HUNG_MS })).rejects.toMatchObject({
      name: "CancelledError",
    });
    for (const pid of pidsBefore) {
      await waitFor(`process ${pid} to be gone`, () => (alive(pid) ? undefined : true));
    }
    // The same function takes new work (it starts a fresh worker).
    const next = await busy.spawn();
    await waitFor("the next input to run", async () =>
      (await next.status()) === "running" ? true : undefined,
    );
    await next.cancel();
  });
});

describe("container start failures", () => {
  it("an enter() that throws fails the input with the start error instead of spinning", async () => {
    const broken = harness.kiln.function("e2e", "brokenEnter");
    await expect(broken.remote()).rejects.toMatchObject({
      name: "RemoteError",
      remoteMessage: expect.stringContaining("while starting the container: weights not found"),
    });
    const status = await harness.kiln.status();
    const fn = status.apps[0]?.functions.find((f) => f.name === "brokenEnter");
    expect(fn?.startFailures).toBeGreaterThanOrEqual(1);
    expect(fn?.lastStartError).toContain("weights not found");
  });
});

async function containerPids(fn: string): Promise<number[]> {
  const status = await harness.kiln.status();
  return (status.apps[0]?.functions.find((f) => f.name === fn)?.containers ?? []).flatMap((c) =>
    c.pid ? [c.pid] : [],
  );
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
