/**
 * Schedules end to end on a real agent: a fake clock drives the agent's scheduler (handlers run in
 * real time), so minutes and nights pass at once. Runs are spawned calls visible in status; a
 * failing run does not stop later ticks; ephemeral apps do not fire.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Kiln, ScheduleStatus } from "../../runtime/client/index.js";
import { FakeClock } from "../store/fake-clock.js";
import { DATA_APP, dataSpec, deployData } from "./data-harness.js";
import { startAgent, type Harness } from "./harness.js";
import { waitFor } from "../support/wait.js";

const harnesses: Harness[] = [];

afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close();
});

async function start(
  at: string,
): Promise<{ h: Harness; kiln: Kiln; clock: FakeClock; advance: (ms: number) => Promise<void> }> {
  const clock = new FakeClock(Date.parse(at));
  const h = await startAgent({ clock });
  harnesses.push(h);
  const advance = async (ms: number): Promise<void> => {
    clock.advance(ms);
    await h.agent.scheduler.idle();
  };
  return { h, kiln: h.kiln, clock, advance };
}

async function schedules(kiln: Kiln): Promise<ScheduleStatus[]> {
  const status = await kiln.status();
  return status.apps.find((a) => a.name === DATA_APP)?.schedules ?? [];
}

describe("schedules on an agent", () => {
  it("a period schedule fires spawned calls of its function with its args; runs and outcomes show in status", async () => {
    const { kiln, clock, advance } = await start("2024-05-01T10:00:00Z");
    await deployData(kiln, (spec) => {
      spec["schedules"] = {
        every: { function: "recordTick", period: { minutes: 1 }, args: ["every-minute"] },
      };
    });
    await advance(0);
    const t0 = clock.now();
    const ticks = kiln.queue<{ label: string }>(DATA_APP, "ticks");
    await ticks.clear({ all: true });
    await advance(60_000);
    expect(await ticks.get({ timeoutMs: 15_000 })).toMatchObject({ label: "every-minute" });
    await advance(60_000);
    expect(await ticks.get({ timeoutMs: 15_000 })).toMatchObject({ label: "every-minute" });
    const [every] = await waitFor("both runs to succeed", async () => {
      const s = await schedules(kiln);
      return s[0]?.runs.length === 2 && s[0].runs.every((r) => r.status === "succeeded")
        ? s
        : undefined;
    });
    expect(every).toMatchObject({
      name: "every",
      function: "recordTick",
      cron: null,
      periodS: 60,
      catchUp: 0,
      timezone: "UTC",
    });
    expect(every!.runs.map((r) => r.callId)).toEqual([
      `sched:${DATA_APP}:every:${t0 + 120_000}`,
      `sched:${DATA_APP}:every:${t0 + 60_000}`,
    ]);
    expect(every!.lastTickAt).toBe(new Date(t0 + 120_000).toISOString());
    expect(every!.nextTickAt).toBe(new Date(t0 + 180_000).toISOString());
    // A run is an ordinary spawned call.
    expect(await kiln.functionCall(every!.runs[0]!.callId).get({ timeoutMs: 5_000 })).toBe(
      "every-minute",
    );
  });

  it("a failing run follows the function's retries, shows its error, and later ticks still fire", async () => {
    const { kiln, advance } = await start("2024-05-01T10:00:00Z");
    await deployData(kiln, (spec) => {
      spec["schedules"] = {
        broken: { function: "failTick", period: { minutes: 1 }, args: ["boom"] },
      };
    });
    await advance(0);
    const ticks = kiln.queue<{ label: string; failed?: boolean }>(DATA_APP, "ticks");
    await ticks.clear({ all: true });
    await advance(60_000);
    await waitFor(
      "the first run to fail",
      async () => ((await schedules(kiln))[0]?.runs[0]?.status === "failed" ? true : undefined),
      15_000,
    );
    await advance(60_000);
    const [broken] = await waitFor(
      "the second run to fail",
      async () => {
        const s = await schedules(kiln);
        return s[0]?.runs.length === 2 && s[0].runs.every((r) => r.status === "failed")
          ? s
          : undefined;
      },
      15_000,
    );
    expect(broken!.runs[0]!.error).toMatch(/scheduled failure: boom/);
    // Two runs, each tried twice (retries: 1).
    expect(await ticks.len()).toBe(4);
    expect((await kiln.functionCall(broken!.runs[0]!.callId).info()).attempts).toBe(2);
  });

  it("a redeploy with a new period takes effect at the next tick; an ephemeral deploy does not fire", async () => {
    const { kiln, clock, advance } = await start("2024-05-01T10:00:00Z");
    await deployData(kiln, (spec) => {
      spec["schedules"] = { s: { function: "recordTick", period: { minutes: 10 }, args: ["ten"] } };
    });
    await advance(0);
    await advance(5 * 60_000);
    const result = await deployData(kiln, (spec) => {
      spec["schedules"] = { s: { function: "recordTick", period: { minutes: 1 }, args: ["one"] } };
    });
    await advance(0);
    const redeployed = clock.now();
    await advance(60_000);
    const [s] = await waitFor("the new timing's first run", async () =>
      (await schedules(kiln))[0]?.runs.length === 1 ? schedules(kiln) : undefined,
    );
    expect(s!.runs[0]!.tickAt).toBe(new Date(redeployed + 60_000).toISOString());

    // The same app as `kiln run` would deploy it: ephemeral.
    const spec = await dataSpec();
    spec["schedules"] = {
      s: { function: "recordTick", period: { minutes: 1 }, args: ["ephemeral"] },
    };
    const bundles = Object.fromEntries(result.artifacts.map((a) => [a.file, a.sha256]));
    await kiln.http.request("PUT", `/v1/apps/${DATA_APP}`, {
      body: { spec, bundles, ephemeral: true },
    });
    await advance(0);
    await advance(5 * 60_000);
    const [after] = await schedules(kiln);
    expect(after!.nextTickAt).toBeNull();
    expect(after!.runs).toHaveLength(1);
  });

  it("batch embeddings: a dict cache shared by calls, and a nightly schedule (America/New_York, over the DST night)", async () => {
    const { kiln, clock, advance } = await start("2024-03-09T12:00:00Z");
    await deployData(kiln, (spec) => {
      spec["schedules"] = {
        nightly: { function: "nightly", cron: "0 3 * * *", timezone: "America/New_York" },
      };
    });
    await advance(0);
    const embed = kiln.function<(texts: string[]) => { vectors: number[][]; computed: number }>(
      DATA_APP,
      "embed",
    );
    const first = await embed.remote(["alpha", "beta", "gamma"]);
    expect(first.computed).toBe(3);
    const again = await embed.remote(["beta", "alpha", "delta"]);
    expect(again.computed).toBe(1);
    expect(again.vectors[0]).toEqual(first.vectors[1]);
    const cache = kiln.dict<string, number[]>(DATA_APP, "embeddings");
    expect(await cache.len()).toBe(4);

    // Documents wait on a queue for the night.
    await kiln.queue<string>(DATA_APP, "pending-docs").putMany(["doc-1", "doc-2", "alpha"]);
    const [scheduled] = await schedules(kiln);
    // 03:00 EDT on the night clocks go forward (02:00 -> 03:00).
    expect(scheduled!.nextTickAt).toBe("2024-03-10T07:00:00.000Z");
    await advance(Date.parse("2024-03-10T07:00:01Z") - clock.now());
    const stats = kiln.dict<string, number>(DATA_APP, "stats");
    await waitFor(
      "the nightly run",
      async () => ((await stats.get("nightlyRuns")) === 1 ? true : undefined),
      20_000,
    );
    expect(await cache.len()).toBe(6);
    expect(await cache.contains("doc-2")).toBe(true);
    expect(await kiln.queue(DATA_APP, "pending-docs").len()).toBe(0);
    expect(await stats.get("computed")).toBe(6);

    // The next night is 03:00 EDT again (07:00Z); nothing fires in between.
    await advance(Date.parse("2024-03-11T06:59:00Z") - clock.now());
    expect(await stats.get("nightlyRuns")).toBe(1);
    await advance(Date.parse("2024-03-11T07:00:01Z") - clock.now());
    await waitFor(
      "the second nightly run",
      async () => ((await stats.get("nightlyRuns")) === 2 ? true : undefined),
      20_000,
    );
    // The handler counts the run before it returns: wait for both runs' outcomes to be recorded.
    const done = await waitFor("both runs to succeed", async () => {
      const [schedule] = await schedules(kiln);
      return schedule!.runs.length === 2 && schedule!.runs.every((r) => r.status === "succeeded")
        ? schedule
        : undefined;
    });
    expect(done.runs.map((r) => r.tickAt)).toEqual([
      "2024-03-11T07:00:00.000Z",
      "2024-03-10T07:00:00.000Z",
    ]);
  });
});
