import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { present } from "../support/requirements.js";
import { GpuAllocator } from "../../runtime/containers/gpus.js";
import {
  meterSubject,
  UsageAccumulator,
  UsageMeter,
  type MeterSubject,
} from "../../runtime/containers/metering.js";
import { Sandbox, SandboxHost } from "../../runtime/containers/sandbox.js";
import { FakeClock } from "../store/fake-clock.js";
import { BUSY, sleep, spawnNode, specWith, testAgentId } from "./helpers.js";

const MIB = 1024 * 1024;
const subject = (over: Partial<MeterSubject> = {}): MeterSubject => ({
  containerId: "c1",
  app: "app",
  fn: "f",
  cpuRequest: 0.5,
  memoryRequestMiB: 256,
  gpus: 0,
  ...over,
});

describe("UsageAccumulator (fake samples)", () => {
  it("an idle container costs its request; a busy one its usage", () => {
    const acc = new UsageAccumulator();
    acc.start(subject({ containerId: "idle" }), { atMs: 0, cpuNs: 0, memoryBytes: 10 * MIB });
    acc.start(subject({ containerId: "busy", fn: "g" }), {
      atMs: 0,
      cpuNs: 0,
      memoryBytes: 10 * MIB,
    });
    for (let s = 1; s <= 10; s += 1) {
      acc.record("idle", { atMs: s * 1000, cpuNs: s * 0.01e9, memoryBytes: 10 * MIB });
      acc.record("busy", { atMs: s * 1000, cpuNs: s * 2e9, memoryBytes: 512 * MIB });
    }
    const [idle, busy] = acc.totals();
    expect(idle).toMatchObject({
      fn: "f",
      containerSeconds: 10,
      billedCpuSeconds: 5,
      billedMemoryMiBSeconds: 2560,
    });
    expect(idle?.cpuSeconds).toBeCloseTo(0.1);
    expect(busy).toMatchObject({
      fn: "g",
      containerSeconds: 10,
      cpuSeconds: 20,
      billedCpuSeconds: 20,
      memoryMiBSeconds: 5120,
      billedMemoryMiBSeconds: 5120,
    });
  });

  it("bills max(request, usage) per interval, not over the whole run", () => {
    const acc = new UsageAccumulator();
    acc.start(subject(), { atMs: 0, cpuNs: 0, memoryBytes: 0 });
    acc.record("c1", { atMs: 1000, cpuNs: 2e9, memoryBytes: 0 }); // 2 cores for a second
    acc.record("c1", { atMs: 2000, cpuNs: 2e9, memoryBytes: 0 }); // idle for a second
    expect(acc.totals()[0]?.billedCpuSeconds).toBeCloseTo(2.5); // max(0.5, 2) + max(0.5, 0)
    expect(acc.totals()[0]?.cpuSeconds).toBeCloseTo(2);
  });

  it("disk bills as memory: max(memory request, disk / 20), via the spec", () => {
    const spec = specWith({ memory: 1024, ephemeralDisk: 512_000 });
    expect(meterSubject("c", "a", "f", spec, 0).memoryRequestMiB).toBe(25_600);
    expect(
      meterSubject("c", "a", "f", specWith({ memory: 4096, ephemeralDisk: 20_480 }), 0)
        .memoryRequestMiB,
    ).toBe(4096);
    expect(meterSubject("c", "a", "f", specWith({}), 0).memoryRequestMiB).toBe(128);
  });

  it("GPU seconds; per app/function; since; unknown or stopped containers ignored", () => {
    const acc = new UsageAccumulator(60_000);
    acc.start(subject({ containerId: "g1", app: "b", gpus: 2 }), {
      atMs: 0,
      cpuNs: null,
      memoryBytes: null,
    });
    acc.record("g1", { atMs: 30_000, cpuNs: null, memoryBytes: null });
    acc.record("g1", { atMs: 90_000, cpuNs: null, memoryBytes: null });
    acc.stop("g1", { atMs: 120_000, cpuNs: null, memoryBytes: null });
    acc.record("g1", { atMs: 200_000, cpuNs: null, memoryBytes: null });
    acc.record("nobody", { atMs: 1, cpuNs: 1, memoryBytes: 1 });
    expect(acc.totals({ app: "b" })[0]).toMatchObject({
      gpuSeconds: 240,
      containerSeconds: 120,
      billedCpuSeconds: 60,
      billedMemoryMiBSeconds: 256 * 120,
    });
    expect(acc.totals({ app: "b", sinceMs: 60_000 })[0]).toMatchObject({ gpuSeconds: 180 }); // buckets from minute 1 on
    expect(acc.totals({ app: "other" })).toEqual([]);
    expect(acc.tracked).toEqual([]);
  });

  it("UsageMeter samples on its clock and takes a final sample at untrack", async () => {
    const clock = new FakeClock(0);
    let cpuNs = 0;
    const meter = new UsageMeter(new UsageAccumulator(), { clock, intervalMs: 1000 });
    await meter.track(subject(), async () => ({ cpuNs, memoryBytes: 300 * MIB }));
    for (let s = 0; s < 3; s += 1) {
      clock.advance(1000);
      cpuNs += 1e9;
      await meter.tick();
    }
    clock.advance(500);
    await meter.untrack("c1");
    const [row] = meter.totals();
    expect(row).toMatchObject({
      containerSeconds: 3.5,
      cpuSeconds: 3,
      billedCpuSeconds: 3.25,
      billedMemoryMiBSeconds: 300 * 3.5,
    });
  });
});

describe("metering from real cgroup readings", () => {
  const root = mkdtempSync(join(tmpdir(), "kiln-meter-"));
  const hostPromise = SandboxHost.open({
    agentId: testAgentId(),
    scratchRoot: join(root, "scratch"),
    gpus: new GpuAllocator([]),
    env: {},
    meter: new UsageMeter(new UsageAccumulator(), { intervalMs: 250 }),
  });
  afterAll(async () => {
    const host = await hostPromise;
    expect(await host.close()).toEqual([]);
    rmSync(root, { recursive: true, force: true });
  });

  it("a sleep costs its request; a busy loop costs its usage; disk/20 sets the memory floor", async (ctx) => {
    const host = await hostPromise;
    if (
      !present(
        "cgroups",
        host.cgroups.available ? null : (host.cgroups.reason ?? "unavailable"),
        "the metering test is skipped",
      )
    )
      ctx.skip();
    const prepare = async (fn: string, spec: ReturnType<typeof specWith>) => {
      const sandbox = await host.prepare({ containerId: `ct-${fn}`, app: "meter", fn, spec });
      if (!(sandbox instanceof Sandbox)) throw new Error(sandbox.message);
      return sandbox;
    };
    const sleeper = await prepare(
      "sleeper",
      specWith({ cpu: 0.5, memory: 64, ephemeralDisk: 20_480 }),
    );
    const spinner = await prepare("spinner", specWith({ cpu: [0.25, 1], memory: 64 }));
    const runs = [
      spawnNode(await sleeper.ready, "setTimeout(() => {}, 60_000)"),
      spawnNode(await spinner.ready, BUSY),
    ];
    sleeper.attach(runs[0]?.child.pid ?? -1);
    spinner.attach(runs[1]?.child.pid ?? -1);
    await sleep(1600);
    await Promise.all([sleeper.release(), spinner.release()]);
    await Promise.all(runs.map((r) => r.exit));
    const rows = Object.fromEntries(host.meter.totals({ app: "meter" }).map((r) => [r.fn, r]));
    const idle = rows["sleeper"];
    const busy = rows["spinner"];
    if (!idle || !busy) throw new Error("no usage recorded");
    console.info(
      `sleeper: ${idle.containerSeconds.toFixed(2)} s, used ${idle.cpuSeconds.toFixed(3)} core-s, billed ${idle.billedCpuSeconds.toFixed(3)} core-s; ` +
        `spinner: used ${busy.cpuSeconds.toFixed(3)} core-s, billed ${busy.billedCpuSeconds.toFixed(3)} core-s over ${busy.containerSeconds.toFixed(2)} s`,
    );
    expect(idle.containerSeconds).toBeGreaterThan(1);
    expect(idle.billedCpuSeconds / idle.containerSeconds).toBeCloseTo(0.5, 1); // its request
    expect(idle.cpuSeconds).toBeLessThan(idle.billedCpuSeconds / 2);
    expect(idle.billedMemoryMiBSeconds / idle.containerSeconds).toBeCloseTo(1024, 0); // 20 GiB disk / 20
    expect(busy.cpuSeconds / busy.containerSeconds).toBeGreaterThan(0.6); // capped at 1 core
    expect(busy.cpuSeconds / busy.containerSeconds).toBeLessThan(1.1);
    expect(busy.billedCpuSeconds).toBeGreaterThanOrEqual(busy.cpuSeconds - 1e-9);
    expect(busy.billedCpuSeconds - busy.cpuSeconds).toBeLessThan(
      0.25 * busy.containerSeconds * 0.5,
    ); // usage above the request almost always
    expect(busy.memoryMiBSeconds).toBeGreaterThan(0);
  });
});
