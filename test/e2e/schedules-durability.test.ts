/**
 * kill -9 of an agent (its own process, from dist): dict and queue contents and the schedules'
 * state survive; after the restart the schedule goes on from its anchor and no tick fires twice.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { connect, type Kiln, type ScheduleStatus } from "../../runtime/client/index.js";
import { EmbeddedStore } from "../../runtime/store/embedded/index.js";
import { DATA_APP, deployData } from "./data-harness.js";
import { ensureBuilt, portOf, startChildAgent, type ChildAgent } from "./harness.js";
import { waitFor } from "../support/wait.js";

const children: ChildAgent[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) {
    c.child.kill("SIGKILL");
    await c.exited;
  }
  // Best effort: a container killed with its agent may leave its scratch disk mounted for a while.
  for (const d of dirs.splice(0))
    await rm(d, { recursive: true, force: true, maxRetries: 5 }).catch((error: unknown) =>
      console.warn(`could not remove ${d}: ${String(error)}`),
    );
});

async function schedule(kiln: Kiln): Promise<ScheduleStatus | undefined> {
  return (await kiln.status()).apps.find((a) => a.name === DATA_APP)?.schedules?.[0];
}

describe("kill -9 with dicts, queues and schedules", () => {
  it("contents and the last ticks survive; the schedule goes on without firing a tick twice", async () => {
    ensureBuilt();
    const stateDir = await mkdtemp(join(tmpdir(), "kiln-kill9-data-"));
    dirs.push(stateDir);
    const first = await startChildAgent(stateDir);
    children.push(first);
    const kiln = await connect({ url: first.url, token: first.token });
    await deployData(kiln, (spec) => {
      spec["schedules"] = {
        pulse: { function: "recordTick", period: { seconds: 1 }, args: ["pulse"] },
      };
    });
    await kiln.dict(DATA_APP, "cache").update([
      ["durable", { n: 1 }],
      [new Date(0), "epoch"],
    ]);
    await kiln.dict(DATA_APP, "cache").put("with-ttl", "kept", { ttlS: 3600 });
    await kiln.queue(DATA_APP, "jobs").putMany(["j1", "j2"], { partition: "p" });
    const named = kiln.dict<string, string>("survivor", { createIfMissing: true });
    await named.put("k", "v");
    const before = await waitFor(
      "two runs",
      async () => {
        const s = await schedule(kiln);
        return s && s.runs.length >= 2 ? s : undefined;
      },
      15_000,
    );
    first.child.kill("SIGKILL");
    await first.exited;

    const second = await startChildAgent(stateDir, portOf(first.url));
    children.push(second);
    const again = await connect({ url: second.url, token: second.token });
    expect(await again.dict(DATA_APP, "cache").get("durable")).toEqual({ n: 1 });
    expect(await again.dict(DATA_APP, "cache").get(new Date(0))).toBe("epoch");
    expect(await again.dict(DATA_APP, "cache").get("with-ttl")).toBe("kept");
    expect(
      await again.queue(DATA_APP, "jobs").getMany(10, { partition: "p", block: false }),
    ).toEqual(["j1", "j2"]);
    expect(await again.dict<string, string>("survivor").get("k")).toBe("v");
    // The state came back: the runs fired before the kill are still listed.
    const restored = (await schedule(again))!;
    for (const run of before.runs) expect(restored.runs.map((r) => r.callId)).toContain(run.callId);
    const after = await waitFor(
      "two more runs",
      async () => {
        const s = await schedule(again);
        return s &&
          s.runs.filter((r) => Date.parse(r.tickAt) > Date.parse(before.lastTickAt!)).length >= 2
          ? s
          : undefined;
      },
      15_000,
    );
    second.child.kill("SIGTERM"); // a clean stop: containers and their scratch disks go too
    await second.exited;
    children.splice(0);

    // Every tick fired once, all on the first anchor's grid (the restart did not re-anchor).
    const store = await EmbeddedStore.open({ dir: join(stateDir, "store") });
    try {
      const prefix = `call:sched:${DATA_APP}:pulse:`;
      const ticks = (await store.keys(prefix))
        .map((k) => Number(k.slice(prefix.length)))
        .sort((a, b) => a - b);
      expect(new Set(ticks).size).toBe(ticks.length);
      expect(ticks.length).toBeGreaterThanOrEqual(4);
      for (const t of ticks) expect((t - ticks[0]!) % 1000).toBe(0);
      for (const run of after.runs) expect(ticks).toContain(Date.parse(run.tickAt));
    } finally {
      await store.close();
    }
  });
});
