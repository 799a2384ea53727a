/**
 * The scheduler with a fake clock, against the embedded store (sharing the clock) and a real
 * redis-server (leases on the server's clock): cron in a DST-switching zone, periods, no double
 * fire across a restart or with several schedulers, the catch-up policy, redeploys, ephemeral apps.
 */
import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { OutcomeWriter } from "../../runtime/agent/outcomes.js";
import { Replies } from "../../runtime/agent/replies.js";
import {
  Scheduler,
  dueTicks,
  tickCallId,
  type SchedulerOptions,
} from "../../runtime/agent/scheduler.js";
import { keys, registries, scheduleField, type InputEnvelope } from "../../runtime/agent/inputs.js";
import { Registry } from "../../runtime/agent/registry.js";
import type { CallInfo } from "../../runtime/protocol.js";
import { decode } from "../../runtime/serde.js";
import { compileAppSpec, type CompiledScheduleSpec } from "../../runtime/spec/index.js";
import { EmbeddedStore } from "../../runtime/store/embedded/index.js";
import type { Store } from "../../runtime/store/store.js";
import { FakeClock } from "../store/fake-clock.js";
import { redisPresent, startRedisServer, type RedisServer } from "../store/redis-server.js";
import { waitFor } from "../support/wait.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** For runs over days: few passes (the scheduler still wakes exactly at each tick). */
const LONG_POLLS = { pollMs: HOUR, leaseMs: 2 * HOUR };

interface Backend {
  name: string;
  open(clock: FakeClock): Promise<Store>;
  /** Whether the store's leases follow the fake clock (embedded) or real time (Redis). */
  fakeLeases: boolean;
}

let redis: RedisServer | null = null;
const backends: Backend[] = [
  { name: "embedded", fakeLeases: true, open: (clock) => EmbeddedStore.open({ clock }) },
];
const withRedis = redisPresent("the scheduler runs against the embedded store only");
if (withRedis) {
  backends.push({
    name: "redis",
    fakeLeases: false,
    async open(clock) {
      const { RedisStore } = await import("../../runtime/store/redis/index.js");
      return RedisStore.open({ url: redis!.url, prefix: `kiln-test-${randomUUID()}:`, clock });
    },
  });
}

beforeAll(async () => {
  if (withRedis) redis = await startRedisServer();
});
afterAll(async () => {
  await redis?.dispose();
});

function appRecord(
  name: string,
  schedules: Record<string, unknown>,
  extra: Record<string, unknown> = {},
) {
  const spec = compileAppSpec({
    name,
    functions: { tick: { handler: "./h.ts#tick" }, other: { handler: "./h.ts#other" } },
    schedules,
  });
  return {
    name,
    version: 1,
    deployedAt: new Date().toISOString(),
    digest: randomUUID(),
    spec,
    bundles: {},
    ...extra,
  };
}

function schedule(input: Record<string, unknown>): CompiledScheduleSpec {
  return compileAppSpec({
    name: "x",
    functions: { tick: { handler: "./h.ts#tick" } },
    schedules: { s: { function: "tick", ...input } },
  }).schedules["s"]!;
}

describe.each(backends)("Scheduler ($name store)", (backend) => {
  let clock: FakeClock;
  let store: Store;
  let schedulers: Scheduler[];

  async function setup(start: string | number): Promise<void> {
    clock = new FakeClock(typeof start === "number" ? start : Date.parse(start));
    store = await backend.open(clock);
    schedulers = [];
  }

  afterEach(async () => {
    for (const s of schedulers) await s.stop();
    await store?.close();
  });

  function scheduler(options: Partial<SchedulerOptions> = {}): Scheduler {
    const s = new Scheduler({
      store,
      outcomes: new OutcomeWriter(store, DAY, new Replies(store, `agent-${schedulers.length}`)),
      owner: `agent-${schedulers.length}`,
      clock,
      onError: (error) => {
        throw error;
      },
      ...options,
    });
    schedulers.push(s);
    s.start();
    return s;
  }

  async function deploy(record: ReturnType<typeof appRecord>): Promise<void> {
    await new Registry(store, registries.apps).put(record.name, JSON.stringify(record));
    for (const s of schedulers) s.poke();
    await settle();
  }

  /** Run what is due now and let the passes it starts finish. */
  async function settle(): Promise<void> {
    for (let round = 0; round < 3; round++) {
      clock.advance(0);
      await Promise.all(schedulers.map((s) => s.idle()));
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Run every timer up to `until`, one at a time, letting passes finish in between. */
  async function runUntil(until: number): Promise<void> {
    await settle();
    for (let guard = 0; guard < 200_000; guard++) {
      const next = clock.nextAt();
      if (next === null || next > until) break;
      clock.advance(Math.max(0, next - clock.now()));
      await settle();
    }
    clock.advance(Math.max(0, until - clock.now()));
    await settle();
  }

  /** Tick times (epoch ms) of the runs fired for a schedule, from the call records. */
  async function fired(app: string, name: string): Promise<number[]> {
    const prefix = keys.call(tickCallId(app, name, 0)).slice(0, -1);
    const found = await store.keys(prefix);
    return found.map((key) => Number(key.slice(prefix.length))).sort((a, b) => a - b);
  }

  it("period: fires every period from the deploy, as spawned calls with the schedule's args", async () => {
    await setup("2024-01-01T00:00:00Z");
    const t0 = clock.now();
    scheduler();
    await deploy(
      appRecord("per", {
        every: { function: "tick", period: { minutes: 1 }, args: [1, "two", { three: 3 }] },
      }),
    );
    await runUntil(t0 + 3 * 60_000 + 5_000);
    expect(await fired("per", "every")).toEqual([t0 + 60_000, t0 + 120_000, t0 + 180_000]);
    const claims = await store.claim([keys.spawnQueue("per", "tick")], {
      owner: "test",
      leaseMs: 60_000,
      max: 10,
    });
    expect(claims.map((c) => c.id)).toEqual(
      [1, 2, 3].map((k) => tickCallId("per", "every", t0 + k * 60_000)),
    );
    const input = JSON.parse(claims[0]!.payload) as InputEnvelope;
    expect(input.kind).toBe("spawn");
    expect(decode(input.args)).toEqual([1, "two", { three: 3 }]);
    const call = JSON.parse((await store.get(keys.call(claims[0]!.id)))!) as CallInfo;
    expect(call).toMatchObject({ app: "per", function: "tick", kind: "spawn", status: "pending" });
  });

  it("cron in America/New_York across the autumn switch: 01:30 fires once that day, hourly fires 25 times", async () => {
    await setup("2024-11-02T12:00:00Z");
    scheduler(LONG_POLLS);
    await deploy(
      appRecord("dst", {
        daily: { function: "tick", cron: "30 1 * * *", timezone: "America/New_York" },
        hourly: { function: "tick", cron: "0 * * * *", timezone: "America/New_York" },
      }),
    );
    await runUntil(Date.parse("2024-11-05T12:00:00Z"));
    expect((await fired("dst", "daily")).map((t) => new Date(t).toISOString())).toEqual([
      "2024-11-03T05:30:00.000Z", // 01:30 EDT; the repeated 01:30 EST (06:30Z) does not fire
      "2024-11-04T06:30:00.000Z",
      "2024-11-05T06:30:00.000Z",
    ]);
    // The local day of Nov 3 (00:00 EDT = 04:00Z to 00:00 EST = 05:00Z next day) has 25 hours.
    const hourly = (await fired("dst", "hourly")).filter(
      (t) => t >= Date.parse("2024-11-03T04:00:00Z") && t < Date.parse("2024-11-04T05:00:00Z"),
    );
    expect(hourly).toHaveLength(25);
    expect(new Set(hourly).size).toBe(25);
  });

  it("cron in America/New_York across the spring switch: a skipped 02:30 fires once, at 03:30 EDT", async () => {
    await setup("2024-03-09T12:00:00Z");
    scheduler(LONG_POLLS);
    await deploy(
      appRecord("spring", {
        nightly: { function: "tick", cron: "30 2 * * *", timezone: "America/New_York" },
      }),
    );
    await runUntil(Date.parse("2024-03-11T12:00:00Z"));
    expect((await fired("spring", "nightly")).map((t) => new Date(t).toISOString())).toEqual([
      "2024-03-10T07:30:00.000Z",
      "2024-03-11T06:30:00.000Z",
    ]);
  });

  it("cron defaults to UTC", async () => {
    await setup("2024-06-01T23:59:00Z");
    scheduler();
    await deploy(appRecord("utc", { midnight: { function: "tick", cron: "0 0 * * *" } }));
    await runUntil(Date.parse("2024-06-02T00:01:00Z"));
    expect(await fired("utc", "midnight")).toEqual([Date.parse("2024-06-02T00:00:00Z")]);
  });

  it("no double fire across a restart, even when the state write was lost", async () => {
    await setup("2024-01-01T00:00:00Z");
    const t0 = clock.now();
    const first = scheduler();
    await deploy(appRecord("rs", { every: { function: "tick", period: { minutes: 10 } } }));
    await runUntil(t0 + 10 * 60_000 + 1_000);
    expect(await fired("rs", "every")).toEqual([t0 + 600_000]);
    const states = new Registry(store, registries.schedules);
    const stateBefore = await states.get(scheduleField("rs", "every"));
    await first.stop();
    // A crash after the call record but before the state: put back the state of before the tick.
    const state = JSON.parse(stateBefore!) as {
      since: number;
      lastTickAt: number | null;
      runs: unknown[];
    };
    await states.put(
      scheduleField("rs", "every"),
      JSON.stringify({ ...state, since: t0, lastTickAt: null, runs: [] }),
    );
    scheduler();
    await settle();
    await runUntil(t0 + 10 * 60_000 + 5_000);
    expect(await fired("rs", "every")).toEqual([t0 + 600_000]);
    expect(await store.stats(keys.spawnQueue("rs", "tick"))).toMatchObject({ pending: 1 });
    await runUntil(t0 + 20 * 60_000 + 1_000);
    expect(await fired("rs", "every")).toEqual([t0 + 600_000, t0 + 1_200_000]);
  });

  it("three schedulers: one leader; each tick fires once; a crashed leader's successor goes on", async () => {
    await setup("2024-01-01T00:00:00Z");
    const t0 = clock.now();
    const agents = [scheduler(), scheduler(), scheduler()];
    await deploy(appRecord("multi", { every: { function: "tick", period: { seconds: 30 } } }));
    await runUntil(t0 + 5 * 30_000 + 1_000);
    expect(agents.filter((a) => a.leader)).toHaveLength(1);
    const leader = agents.find((a) => a.leader)!;
    await leader.stop({ handBack: false }); // as if killed: the lock stays until its lease lapses
    if (backend.fakeLeases) {
      await runUntil(t0 + 12 * 30_000 + 1_000);
    } else {
      // Redis leases run on the server's clock: wait for the lease (10 s) to lapse for real,
      // with the followers trying (fake time stands still meanwhile).
      await waitFor(
        "a follower to take the lapsed lease",
        async () => {
          for (const a of agents) a.poke();
          await settle();
          return agents.some((a) => a !== leader && a.leader);
        },
        { intervalMs: 250 },
      );
      await runUntil(t0 + 12 * 30_000 + 1_000);
    }
    expect(agents.filter((a) => a.leader)).toHaveLength(1);
    const ticks = await fired("multi", "every");
    expect(ticks).toEqual(Array.from({ length: 12 }, (_, i) => t0 + (i + 1) * 30_000));
    expect((await store.stats(keys.spawnQueue("multi", "tick"))).pending).toBe(12);
  });

  it("two schedulers passing at the same instant still fire a tick once", async () => {
    await setup("2024-01-01T00:00:00Z");
    const t0 = clock.now();
    // Both think they lead (a hand-over): the call record decides.
    const a = scheduler({ owner: "same" });
    const b = scheduler({ owner: "same" });
    await deploy(appRecord("race", { every: { function: "tick", period: { seconds: 10 } } }));
    await runUntil(t0 + 60_000 + 100);
    expect(a.leader && b.leader).toBe(true);
    expect(await fired("race", "every")).toEqual(
      Array.from({ length: 6 }, (_, i) => t0 + (i + 1) * 10_000),
    );
    expect((await store.stats(keys.spawnQueue("race", "tick"))).pending).toBe(6);
  });

  it("catchUp 0: ticks missed while no scheduler ran are skipped; the next one fires on time", async () => {
    await setup("2024-01-01T00:00:00Z");
    const t0 = clock.now();
    const first = scheduler();
    await deploy(appRecord("skip", { every: { function: "tick", period: { minutes: 5 } } }));
    await runUntil(t0 + 5 * 60_000 + 1_000);
    await first.stop();
    clock.advance(17 * 60_000); // down over ticks at 10, 15 and 20 min
    const second = scheduler();
    await settle();
    expect(await fired("skip", "every")).toEqual([t0 + 300_000]);
    await runUntil(t0 + 25 * 60_000 + 1_000);
    expect(await fired("skip", "every")).toEqual([t0 + 300_000, t0 + 1_500_000]);
    const [status] = await second.status(
      "skip",
      appRecord("skip", { every: { function: "tick", period: { minutes: 5 } } }).spec,
    );
    expect(status!.lastTickAt).toBe(new Date(t0 + 1_500_000).toISOString());
    expect(status!.nextTickAt).toBe(new Date(t0 + 1_800_000).toISOString());
  });

  it("catchUp 1: only the last missed tick runs, late, and is marked as caught up", async () => {
    await setup("2024-01-01T00:00:00Z");
    const t0 = clock.now();
    const record = appRecord("catch", {
      every: { function: "tick", period: { minutes: 5 }, catchUp: 1 },
    });
    const first = scheduler();
    await deploy(record);
    await runUntil(t0 + 5 * 60_000 + 1_000);
    await first.stop();
    clock.advance(17 * 60_000);
    const second = scheduler();
    await settle();
    expect(await fired("catch", "every")).toEqual([t0 + 300_000, t0 + 1_200_000]);
    const [status] = await second.status("catch", record.spec);
    expect(status!.runs.map((r) => [r.tickAt, r.catchUp ?? false])).toEqual([
      [new Date(t0 + 1_200_000).toISOString(), true],
      [new Date(t0 + 300_000).toISOString(), false],
    ]);
    await runUntil(t0 + 25 * 60_000 + 1_000);
    expect(await fired("catch", "every")).toEqual([t0 + 300_000, t0 + 1_200_000, t0 + 1_500_000]);
  });

  it("a redeploy with a changed timing takes effect at the next tick; other changes keep the timing", async () => {
    await setup("2024-01-01T00:00:00Z");
    const t0 = clock.now();
    scheduler();
    await deploy(appRecord("re", { s: { function: "tick", period: { minutes: 10 } } }));
    await runUntil(t0 + 12 * 60_000);
    expect(await fired("re", "s")).toEqual([t0 + 600_000]);
    // New timing at 12 min: the old 20-min tick does not fire; the new one ticks from the redeploy.
    await deploy(appRecord("re", { s: { function: "tick", period: { minutes: 3 } } }));
    const redeployed = clock.now();
    await runUntil(t0 + 21 * 60_000);
    expect(await fired("re", "s")).toEqual([
      t0 + 600_000,
      redeployed + 180_000,
      redeployed + 360_000,
      redeployed + 540_000,
    ]);
    // Same timing, another function: the next tick calls it.
    await deploy(appRecord("re", { s: { function: "other", period: { minutes: 3 } } }));
    await runUntil(redeployed + 720_000 + 1_000);
    expect((await store.stats(keys.spawnQueue("re", "other"))).pending).toBe(1);
  });

  it("ephemeral apps do not fire; deleting an app forgets its schedule state", async () => {
    await setup("2024-01-01T00:00:00Z");
    const t0 = clock.now();
    const s = scheduler();
    const record = appRecord(
      "eph",
      { every: { function: "tick", period: { seconds: 10 } } },
      { ephemeral: true },
    );
    await deploy(record);
    await runUntil(t0 + 60_000);
    expect(await fired("eph", "every")).toEqual([]);
    expect((await s.status("eph", record.spec, true))[0]!.nextTickAt).toBeNull();

    await deploy(appRecord("gone", { every: { function: "tick", period: { seconds: 10 } } }));
    await runUntil(t0 + 80_000);
    expect((await fired("gone", "every")).length).toBeGreaterThan(0);
    expect(
      await new Registry(store, registries.schedules).get(scheduleField("gone", "every")),
    ).not.toBeNull();
    await new Registry(store, registries.apps).delete("gone");
    s.poke();
    await runUntil(t0 + 90_000);
    expect(
      await new Registry(store, registries.schedules).get(scheduleField("gone", "every")),
    ).toBeNull();
  });

  it("a refused submission (spawn queue full) is a failed run in status; later ticks still fire", async () => {
    await setup("2024-01-01T00:00:00Z");
    const t0 = clock.now();
    const record = appRecord("full", { every: { function: "tick", period: { minutes: 1 } } });
    const s = scheduler({ maxSpawnPending: 1 });
    await deploy(record);
    await runUntil(t0 + 2 * 60_000 + 1_000);
    const [status] = await s.status("full", record.spec);
    expect(status!.runs.map((r) => r.status)).toEqual(["failed", "pending"]);
    expect(status!.runs[0]!.error).toMatch(/pending spawned inputs, the limit of 1/);
    await store.claim([keys.spawnQueue("full", "tick")], { owner: "t", leaseMs: 60_000 });
    await runUntil(t0 + 3 * 60_000 + 1_000);
    expect((await s.status("full", record.spec))[0]!.runs[0]!.status).toBe("pending");
  });
});

describe("dueTicks", () => {
  it("period: the latest tick after since, and the next", () => {
    const spec = schedule({ period: { seconds: 10 } });
    expect(dueTicks(spec, { since: 0, anchor: 0 }, 5_000)).toEqual({ latest: null, next: 10_000 });
    expect(dueTicks(spec, { since: 0, anchor: 0 }, 35_000)).toEqual({
      latest: 30_000,
      next: 40_000,
    });
    expect(dueTicks(spec, { since: 30_000, anchor: 0 }, 35_000)).toEqual({
      latest: null,
      next: 40_000,
    });
  });

  it("cron: a monthly tick older than the look-back window is still found", () => {
    const spec = schedule({ cron: "0 0 1 * *" });
    const since = Date.parse("2024-01-01T00:00:00Z");
    const now = Date.parse("2024-02-20T00:00:00Z");
    expect(dueTicks(spec, { since, anchor: since }, now)).toEqual({
      latest: Date.parse("2024-02-01T00:00:00Z"),
      next: Date.parse("2024-03-01T00:00:00Z"),
    });
  });
});
