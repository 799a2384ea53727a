/**
 * Real cgroups on this host (root, v1 controllers under /sys/fs/cgroup/<controller>). Skipped,
 * with the reason printed, only where the kernel refuses to let us create groups.
 */
import { execFileSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { present } from "../support/requirements.js";
import type { ContainerCgroup } from "../../runtime/containers/cgroups/container-cgroup.js";
import { detectHostHierarchy } from "../../runtime/containers/cgroups/hierarchy.js";
import { CgroupManager } from "../../runtime/containers/cgroups/manager.js";
import { gpuDeviceRules, type CgroupLimits } from "../../runtime/containers/cgroups/settings.js";
import { classifyExit } from "../../runtime/containers/oom.js";
import { cgroupWrapper, rlimitCommands } from "../../runtime/containers/spawn-wrapper.js";
import { BUSY, sleep, spawnNode, testAgentId } from "./helpers.js";
import { waitFor, within } from "../support/wait.js";

const agentId = testAgentId();
const logged: string[] = [];
const manager = await CgroupManager.open({ agentId, log: (line) => logged.push(line) });
const skip = manager.available ? null : manager.reason;
const enforced = present("cgroups", skip, "the real cgroup tests are skipped");

const children = new Set<ChildProcess>();
const groups: ContainerCgroup[] = [];
let seq = 0;

async function group(limits: Partial<CgroupLimits> = {}): Promise<ContainerCgroup> {
  const g = await manager.create(`ct-${(seq += 1)}`, {
    cpu: { request: 1, limit: null },
    memory: { request: 64, limit: null },
    devices: null,
    ...limits,
  });
  groups.push(g);
  return g;
}

function run(g: ContainerCgroup, code: string, flags: string[] = [], cpus?: string) {
  const started = spawnNode(cgroupWrapper(g.procsFiles, rlimitCommands()), code, flags, {}, cpus);
  children.add(started.child);
  void started.exit.then(() => children.delete(started.child));
  return started;
}

async function cpuSeconds(g: ContainerCgroup): Promise<number> {
  return ((await g.usage()).cpuNs ?? Number.NaN) / 1e9;
}

afterAll(async () => {
  for (const child of children) child.kill("SIGKILL");
  for (const g of groups) await g.destroy().catch(() => undefined);
  const failures = await manager.close();
  expect(failures).toEqual([]);
});

describe.skipIf(!enforced)("cgroups on this host", () => {
  it("uses each controller on the version its mount says", () => {
    const host = detectHostHierarchy();
    for (const [controller, version] of manager.versions)
      expect(host.controllers.get(controller)?.version).toBe(version);
    expect(manager.enforcement).toMatch(/^(cgroup-v1|cgroup-v2|mixed)$/);
    console.info(
      `enforcement ${manager.enforcement}: ${[...manager.versions].map(([c, v]) => `${c} v${v}`).join(", ")}`,
    );
    expect(logged.filter((l) => l.startsWith("cgroups unavailable"))).toEqual([]);
  });

  it("writes kubelet's settings and places the process before it runs", async () => {
    const g = await group({
      cpu: { request: 0.5, limit: 1.5 },
      memory: { request: 64, limit: 128 },
    });
    const cpu = g.dirOf("cpu");
    const memory = g.dirOf("memory");
    if (cpu?.version === 1) {
      expect(readFileSync(join(cpu.dir, "cpu.shares"), "utf8").trim()).toBe("512");
      expect(readFileSync(join(cpu.dir, "cpu.cfs_quota_us"), "utf8").trim()).toBe("150000");
    } else if (cpu) {
      expect(readFileSync(join(cpu.dir, "cpu.max"), "utf8").trim()).toBe("150000 100000");
    }
    if (memory?.version === 1) {
      expect(readFileSync(join(memory.dir, "memory.limit_in_bytes"), "utf8").trim()).toBe(
        String(128 * 1024 * 1024),
      );
      expect(readFileSync(join(memory.dir, "memory.soft_limit_in_bytes"), "utf8").trim()).toBe(
        String(64 * 1024 * 1024),
      );
    } else if (memory) {
      expect(readFileSync(join(memory.dir, "memory.max"), "utf8").trim()).toBe(
        String(128 * 1024 * 1024),
      );
    }
    // The first thing the program does is read its own cgroup: it is already inside.
    const { child, exit } = run(
      g,
      "process.stdout.write(require('fs').readFileSync('/proc/self/cgroup','utf8'))",
    );
    let out = "";
    child.stdout?.setEncoding("utf8").on("data", (t: string) => (out += t));
    await within(5_000, "exit", exit);
    for (const controller of manager.versions.keys()) {
      if (manager.versions.get(controller) === 1)
        expect(out).toMatch(new RegExp(`:${controller}:/kiln/${agentId}/${g.id}\n`));
      else expect(out).toMatch(new RegExp(`^0::/kiln/${agentId}/${g.id}$`, "m"));
    }
  });

  it("CPU quota holds: a busy loop under a 0.5-core limit uses about 0.5 core", async () => {
    const g = await group({ cpu: { request: 0.25, limit: 0.5 } });
    run(g, BUSY);
    await sleep(300);
    const t0 = performance.now();
    const u0 = await cpuSeconds(g);
    await sleep(1500);
    const cores = ((await cpuSeconds(g)) - u0) / ((performance.now() - t0) / 1000);
    console.info(`busy loop under a 0.5-core limit used ${cores.toFixed(3)} cores`);
    expect(cores).toBeGreaterThan(0.4);
    expect(cores).toBeLessThan(0.6);
    await g.destroy();
  });

  it("requests 1.5 and 0.5 share two cores about 3:1 under contention", async () => {
    const big = await group({ cpu: { request: 1.5, limit: 5.5 } });
    const small = await group({ cpu: { request: 0.5, limit: 4.5 } });
    // Two busy workers each, all pinned to CPUs 0-1: four runnable loops on two cores, so shares
    // decide (on any host size).
    for (const g of [big, small, big, small]) run(g, BUSY, [], "0,1");
    await sleep(600);
    // Five 400 ms windows; the median ratio (the load balancer briefly parks both of a group's
    // loops on one core, and this VM's CPU time is noisy).
    const ratios: number[] = [];
    let [b0, s0] = [await cpuSeconds(big), await cpuSeconds(small)];
    const [bStart, sStart] = [b0, s0];
    for (let window = 0; window < 5; window += 1) {
      await sleep(400);
      const [b1, s1] = [await cpuSeconds(big), await cpuSeconds(small)];
      ratios.push((b1 - b0) / (s1 - s0));
      [b0, s0] = [b1, s1];
    }
    const median = [...ratios].sort((x, y) => x - y)[2] ?? Number.NaN;
    console.info(
      `shares 1536:512 → used ${(b0 - bStart).toFixed(2)} s : ${(s0 - sStart).toFixed(2)} s of CPU in 2 s ` +
        `(overall ${((b0 - bStart) / (s0 - sStart)).toFixed(2)}), window ratios ${ratios.map((r) => r.toFixed(2)).join(" ")}, median ${median.toFixed(2)}`,
    );
    expect(median).toBeGreaterThan(2.1); // 3:1 within -30% / +40%; without shares it would be 1:1
    expect(median).toBeLessThan(4.2);
    await Promise.all([big.destroy(), small.destroy()]);
  });

  it("memory past the hard limit: the kernel OOM-kills, the counter moves, the death is OOM", async () => {
    const g = await group({ memory: { request: 32, limit: 96 } });
    const before = await g.oomCounters();
    const { exit } = run(g, "const a=[]; for(;;){ a.push(Buffer.alloc(8<<20, 1)); }");
    const died = await within(10_000, "the OOM kill", exit);
    const after = await g.oomCounters();
    expect(died.signal).toBe("SIGKILL");
    // oom_kill (kernel 4.13+) is the evidence; older kernels only have the failcnt.
    if (after.oomKills !== null) expect(after.oomKills - (before.oomKills ?? 0)).toBe(1);
    else expect(after.limitHits).toBeGreaterThan(0);
    const verdict = classifyExit({
      ...died,
      stderrTail: died.stderr,
      cgroupOomKills: (after.oomKills ?? 1) - (before.oomKills ?? 0),
    });
    expect(verdict).toMatchObject({ oom: true, cause: "cgroup" });
    expect((await g.usage()).maxMemoryBytes).toBeGreaterThan(64 * 1024 * 1024);
  });

  it("running out of JS heap (V8 limit from the memory limit) is classified OOM", async () => {
    const g = await group({ memory: { request: 32, limit: 256 } });
    const { exit } = run(
      g,
      "const a=[]; for(;;){ a.push({ n: Math.random(), s: 'x'.repeat(32) + Math.random() }); }",
      ["--max-old-space-size=24"],
    );
    const died = await within(20_000, "heap exhaustion", exit);
    expect(died.stderr).toMatch(/heap out of memory/);
    expect(died.signal === "SIGABRT" || died.code === 134).toBe(true);
    const counters = await g.oomCounters();
    expect(counters.oomKills ?? 0).toBe(0);
    expect(classifyExit({ ...died, stderrTail: died.stderr, cgroupOomKills: 0 })).toMatchObject({
      oom: true,
      cause: "js-heap",
    });
  });

  it.skipIf(!manager.versions.has("devices") || manager.versions.get("devices") !== 1)(
    "the devices cgroup denies nodes it does not allow (granted GPU minors only)",
    async () => {
      const g = await group({ devices: gpuDeviceRules([1], null) });
      const list = readFileSync(join(g.dirOf("devices")?.dir ?? "", "devices.list"), "utf8");
      expect(list).toContain("c 195:1 rwm");
      expect(list).not.toContain("c 195:0 ");
      expect(list).not.toContain("a *:* rwm");
      const probe =
        "const fs=require('fs'); const r={}; for (const p of ['/dev/null','/dev/urandom','/dev/kmsg']) { try { fs.closeSync(fs.openSync(p,'r')); r[p]='ok' } catch (e) { r[p]=e.code } } process.stdout.write(JSON.stringify(r))";
      const { child, exit } = run(g, probe);
      let out = "";
      child.stdout?.setEncoding("utf8").on("data", (t: string) => (out += t));
      await within(5_000, "exit", exit);
      expect(JSON.parse(out)).toEqual({
        "/dev/null": "ok",
        "/dev/urandom": "ok",
        "/dev/kmsg": "EPERM",
      });
    },
  );

  it("removal kills what is left and removes every directory", async () => {
    const g = await group();
    const { exit } = run(g, "setInterval(() => {}, 1000)");
    await waitFor("the process in the group", async () =>
      (await g.pids()).length > 0 ? true : undefined,
    );
    await g.destroy();
    const died = await within(5_000, "the kill", exit);
    expect(died.signal).toBe("SIGKILL");
    for (const dir of g.directories)
      expect(() => readFileSync(join(dir, "cgroup.procs"))).toThrow(/ENOENT/);
  });
});

describe("fallback when cgroups cannot be written", () => {
  let root = "";
  let readOnly = false;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), "kiln-ro-cgroup-"));
    for (const controller of ["cpu", "memory"]) mkdirSync(join(root, controller));
    try {
      execFileSync("mount", ["--bind", root, root], { stdio: "ignore" });
      readOnly = true; // mounted: unmount in afterAll even if the remount fails
      execFileSync("mount", ["-o", "remount,bind,ro", root], { stdio: "ignore" });
    } catch {
      // Not allowed to mount here: the root stays a tree without cgroup files, unusable too.
    }
  });
  afterAll(() => {
    if (readOnly) execFileSync("umount", [root], { stdio: "ignore" });
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it("says so once and reports enforcement 'fallback'", async () => {
    const lines: string[] = [];
    const fallback = await CgroupManager.open({
      agentId: testAgentId(),
      root,
      log: (line) => lines.push(line),
    });
    expect(fallback.enforcement).toBe("fallback");
    expect(fallback.available).toBe(false);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^cgroups unavailable: .+; falling back to rlimits \+ RSS polling$/);
    if (readOnly) expect(lines[0]).toMatch(/read-only file system|EROFS/);
    await expect(
      fallback.create("x", {
        cpu: { request: 1, limit: null },
        memory: { request: 1, limit: null },
        devices: null,
      }),
    ).rejects.toThrow(/cgroups unavailable/);
  });

  it("no controllers at all, or disabled on purpose, also fall back", async () => {
    expect(
      (await CgroupManager.open({ agentId: "a", root: join(root, "nothing-here") })).reason,
    ).toMatch(/no cpu or memory controller mounted/);
    expect(
      (await CgroupManager.open({ agentId: "a", disabledReason: "KILN_CGROUPS=off" })).reason,
    ).toBe("KILN_CGROUPS=off");
  });
});
