/**
 * kill -9 of the agent: deployed apps, spawned calls and their results survive; nothing is lost.
 * Metered usage survives a graceful stop whole and a kill -9 but for the last flush interval.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { connect, type Kiln } from "../../runtime/client/index.js";
import { reclaimStateDir } from "../../runtime/containers/reclaim.js";
import type * as h from "./fixtures/handlers.js";
import { deployFixture, portOf, startChildAgent, type ChildAgent } from "./harness.js";
import { NOT_HUNG_MS, waitFor } from "../support/wait.js";

const children: ChildAgent[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) {
    c.child.kill("SIGKILL");
    await c.exited;
  }
  for (const d of dirs.splice(0)) {
    // The agents were killed: reclaim their mounts and cgroups as the next agent would.
    await reclaimStateDir(d);
    await rm(d, { recursive: true, force: true });
  }
});

async function killHard(agent: ChildAgent): Promise<void> {
  agent.child.kill("SIGKILL");
  await agent.exited;
}

/** A child agent on a fresh state dir, with the fixture app deployed. */
async function startDeployed(): Promise<{ stateDir: string; first: ChildAgent; kiln: Kiln }> {
  const stateDir = await mkdtemp(join(tmpdir(), "kiln-kill9-"));
  dirs.push(stateDir);
  const first = await startChildAgent(stateDir);
  children.push(first);
  const kiln = await connect({ url: first.url, token: first.token });
  await deployFixture(kiln);
  return { stateDir, first, kiln };
}

/** A new agent on the same state dir and port as the one that was killed. */
async function restartOn(stateDir: string, first: ChildAgent): Promise<Kiln> {
  const second = await startChildAgent(stateDir, portOf(first.url));
  children.push(second);
  return connect({ url: second.url, token: second.token });
}

describe("kill -9", () => {
  it("right after spawn() returned: the app and the spawned calls survive and complete after restart", async () => {
    const { stateDir, first, kiln } = await startDeployed();
    const sleep = kiln.function<typeof h.sleep>("e2e", "sleep");
    const calls = await Promise.all(
      Array.from({ length: 5 }, (_, i) => sleep.spawn(50, `value-${i}`)),
    );
    await killHard(first);

    const again = await restartOn(stateDir, first);
    expect((await again.apps()).map((a) => a.name)).toEqual(["e2e"]);
    const results = await Promise.all(
      calls.map((c) => again.functionCall<string>(c.id).get({ timeoutMs: NOT_HUNG_MS })),
    );
    expect(results).toEqual(["value-0", "value-1", "value-2", "value-3", "value-4"]);
  });

  it("mid-run: an input that was running when the agent died runs again (platform retry) and completes", async () => {
    const { stateDir, first, kiln } = await startDeployed();
    const call = await kiln.function<typeof h.sleep>("e2e", "sleep").spawn(1_500, "finished");
    await waitFor("the input to run", async () => (await call.status()) === "running");
    await killHard(first);

    const again = await restartOn(stateDir, first);
    expect(await again.functionCall<string>(call.id).get({ timeoutMs: NOT_HUNG_MS })).toBe(
      "finished",
    );
    expect((await again.functionCall(call.id).info()).attempts).toBe(2);
  });

  it("a finished call's result is still there after a restart", async () => {
    const { stateDir, first, kiln } = await startDeployed();
    const call = await kiln.function<typeof h.add>("e2e", "add").spawn(20, 22);
    expect(await call.get({ timeoutMs: NOT_HUNG_MS })).toBe(42);
    await killHard(first);
    const again = await restartOn(stateDir, first);
    expect(await again.functionCall<number>(call.id).get({ timeoutMs: 1_000 })).toBe(42);
    expect(await again.functionCall(call.id).status()).toBe("succeeded");
  });
});

describe("metered usage across restarts", () => {
  interface Row {
    fn: string;
    containerSeconds: number;
    billedCpuSeconds: number;
  }
  const usageOf = async (kiln: Kiln): Promise<Row | undefined> => {
    const { usage } = await kiln.http.request<{ usage: Row[] }>("GET", "/v1/usage", {
      query: { app: "e2e", function: "sleep" },
    });
    return usage[0];
  };

  it("a graceful stop keeps all of it: a new agent on the state dir answers GET /v1/usage with it", async () => {
    const { stateDir, first, kiln } = await startDeployed();
    expect(await kiln.function<typeof h.sleep>("e2e", "sleep").remote(1_200, "x")).toBe("x");
    const before = await usageOf(kiln);
    expect(before?.containerSeconds).toBeGreaterThan(1);
    first.child.kill("SIGTERM");
    expect(await first.exited).toBe(0);

    const again = await restartOn(stateDir, first);
    const after = await usageOf(again);
    // The warm container ran on until the stop took its last sample: at least as much as before.
    expect(after?.containerSeconds).toBeGreaterThanOrEqual(before?.containerSeconds ?? Infinity);
    expect(after?.billedCpuSeconds).toBeGreaterThanOrEqual(before?.billedCpuSeconds ?? Infinity);
  });

  it("kill -9 loses at most the last flush interval: periodic flushes kept what ran since the last read", async () => {
    const { stateDir, first, kiln } = await startDeployed();
    expect(await kiln.function<typeof h.sleep>("e2e", "sleep").remote(500, "x")).toBe("x");
    const read = await usageOf(kiln); // a read flushes first: the store has this much
    expect(read?.containerSeconds).toBeGreaterThan(0);
    // The container stays warm (scale-down window 60 s) and is metered each second; the ledger
    // flushes every 2 s. Wait long enough for at least two flushes without reading.
    await new Promise((r) => setTimeout(r, 5_000));
    await killHard(first);

    const again = await restartOn(stateDir, first);
    const after = await usageOf(again);
    // 5 s more ran; at most the last 2 s flush interval plus a 1 s sample are lost.
    expect(after?.containerSeconds).toBeGreaterThan((read?.containerSeconds ?? Infinity) + 1.5);
  });
});
