import { describe, expect, it } from "vitest";
import { detectHierarchy, parseMountinfo } from "../../runtime/containers/cgroups/hierarchy.js";
import {
  cfsQuotaUs,
  cpuShares,
  cpuWeight,
  formatDeviceRule,
  gpuDeviceRules,
  planWrites,
} from "../../runtime/containers/cgroups/settings.js";
import { classifyExit, outOfMemoryError } from "../../runtime/containers/oom.js";
import {
  cgroupWrapper,
  rlimitCommands,
  shellQuote,
  wrapFork,
  wrapperScript,
} from "../../runtime/containers/spawn-wrapper.js";
import { OutOfMemoryError } from "../../runtime/errors.js";

const HYBRID = `
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const COMOUNTED = `
25 24 0:22 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct
26 24 0:23 / /sys/fs/cgroup/memory rw,nosuid shared:10 - cgroup cgroup rw,memory
`;
const UNIFIED = `
26 22 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;

describe("hierarchy detection, per controller", () => {
  it("hybrid host: cpu, cpuacct, memory, devices on v1; the cgroup2 mount holds only hugetlb", () => {
    const h = detectHierarchy(parseMountinfo(HYBRID), (m) =>
      m === "/sys/fs/cgroup/unified" ? "hugetlb\n" : null,
    );
    expect(
      Object.fromEntries([...h.controllers].map(([c, m]) => [c, `v${m.version} ${m.mountpoint}`])),
    ).toEqual({
      cpu: "v1 /sys/fs/cgroup/cpu",
      cpuacct: "v1 /sys/fs/cgroup/cpuacct",
      memory: "v1 /sys/fs/cgroup/memory",
      devices: "v1 /sys/fs/cgroup/devices",
    });
    expect(h.unified).toBe("/sys/fs/cgroup/unified");
  });

  it("co-mounted cpu,cpuacct share one directory", () => {
    const h = detectHierarchy(parseMountinfo(COMOUNTED), () => null);
    expect(h.controllers.get("cpu")?.mountpoint).toBe("/sys/fs/cgroup/cpu,cpuacct");
    expect(h.controllers.get("cpuacct")?.mountpoint).toBe("/sys/fs/cgroup/cpu,cpuacct");
    expect(h.controllers.has("devices")).toBe(false);
  });

  it("pure v2: controllers from cgroup.controllers, cpu.stat for accounting, no devices files", () => {
    const h = detectHierarchy(
      parseMountinfo(UNIFIED),
      () => "cpuset cpu io memory hugetlb pids rdma misc\n",
    );
    expect([...h.controllers].map(([c, m]) => `${c}:v${m.version}`).sort()).toEqual([
      "cpu:v2",
      "cpuacct:v2",
      "memory:v2",
    ]);
  });

  it("a controller on v1 stays v1 even if the v2 mount lists it", () => {
    const h = detectHierarchy(parseMountinfo(HYBRID), () => "memory pids");
    expect(h.controllers.get("memory")?.version).toBe(1);
  });
});

describe("kubelet / runc conversions", () => {
  it("shares = millicores x 1024 / 1000, clamped to [2, 262144]", () => {
    expect(cpuShares(1)).toBe(1024);
    expect(cpuShares(1.5)).toBe(1536);
    expect(cpuShares(0.5)).toBe(512);
    expect(cpuShares(0.125)).toBe(128);
    expect(cpuShares(0.001)).toBe(2);
    expect(cpuShares(0)).toBe(2);
    expect(cpuShares(1000)).toBe(262_144);
  });

  it("v2 weight = 1 + (shares - 2) x 9999 / 262142", () => {
    expect(cpuWeight(2)).toBe(1);
    expect(cpuWeight(1024)).toBe(39);
    expect(cpuWeight(262_144)).toBe(10_000);
  });

  it("quota = limit x 100000 us, at least 1000; null is unlimited", () => {
    expect(cfsQuotaUs(0.5)).toBe(50_000);
    expect(cfsQuotaUs(4.125)).toBe(412_500);
    expect(cfsQuotaUs(0.001)).toBe(1_000);
    expect(cfsQuotaUs(null)).toBeNull();
  });

  it("plans v1 writes: shares, CFS quota, hard + memsw + soft memory, devices deny-all then allow", () => {
    const writes = planWrites(
      {
        cpu: { request: 0.5, limit: 1 },
        memory: { request: 128, limit: 256 },
        devices: gpuDeviceRules([3], 511),
      },
      new Map([
        ["cpu", 1],
        ["cpuacct", 1],
        ["memory", 1],
        ["devices", 1],
      ] as const),
    );
    const pairs = writes.map((w) => `${w.file}=${w.value}`);
    expect(pairs.slice(0, 6)).toEqual([
      "cpu.shares=512",
      "cpu.cfs_period_us=100000",
      "cpu.cfs_quota_us=100000",
      `memory.limit_in_bytes=${256 * 1024 * 1024}`,
      `memory.memsw.limit_in_bytes=${256 * 1024 * 1024}`,
      `memory.soft_limit_in_bytes=${128 * 1024 * 1024}`,
    ]);
    expect(pairs[6]).toBe("devices.deny=a");
    expect(pairs).toContain("devices.allow=c 1:3 rwm");
    expect(pairs).toContain("devices.allow=c 136:* rwm");
    expect(pairs).toContain("devices.allow=c 195:3 rwm");
    expect(pairs).toContain("devices.allow=c 195:255 rwm");
    expect(pairs).toContain("devices.allow=c 511:0 rwm");
    expect(pairs.filter((p) => p.startsWith("devices.allow=c 195:"))).toHaveLength(3); // gpu 3, ctl, modeset
    expect(writes.find((w) => w.file === "memory.memsw.limit_in_bytes")?.optional).toBe(true);
  });

  it("plans v2 writes: cpu.weight, cpu.max, memory.max / low; unlimited as 'max'", () => {
    const writes = planWrites(
      { cpu: { request: 1.5, limit: null }, memory: { request: 64, limit: null }, devices: [] },
      new Map([
        ["cpu", 2],
        ["memory", 2],
      ] as const),
    );
    const pairs = writes.filter((w) => !w.optional).map((w) => `${w.file}=${w.value}`);
    expect(pairs).toEqual([
      "cpu.weight=59",
      "cpu.max=max 100000",
      "memory.max=max",
      `memory.low=${64 * 1024 * 1024}`,
    ]);
  });

  it("device rules format as the kernel reads them", () => {
    expect(formatDeviceRule({ type: "a", major: null, minor: null, access: "rwm" })).toBe("a");
    expect(formatDeviceRule({ type: "b", major: null, minor: null, access: "m" })).toBe("b *:* m");
    expect(gpuDeviceRules([], 511)).toEqual([]);
  });
});

describe("spawn wrapper", () => {
  it("writes $$ into every procs file, then execs node with its flags", () => {
    const wrapper = cgroupWrapper(
      ["/sys/fs/cgroup/cpu/kiln/a b/cgroup.procs", "/x/it's/cgroup.procs"],
      rlimitCommands({ dataBytes: 1024 * 1024 }),
    );
    const script = wrapperScript(wrapper);
    expect(script).toContain(
      `echo $$ > '/sys/fs/cgroup/cpu/kiln/a b/cgroup.procs' && echo $$ > '/x/it'\\''s/cgroup.procs'`,
    );
    expect(script).toContain("ulimit -c 0 2>/dev/null");
    expect(script).toContain("ulimit -d 1024 2>/dev/null");
    expect(script.endsWith(`exec "$0" "$@"`)).toBe(true);
    const forked = wrapFork(wrapper, ["--max-old-space-size=96"], "/usr/bin/node");
    expect(forked).toEqual({
      execPath: "/bin/sh",
      execArgv: ["-c", script, "/usr/bin/node", "--max-old-space-size=96"],
    });
    expect(shellQuote("a'b")).toBe(`'a'\\''b'`);
  });
});

describe("OOM classifier", () => {
  it("the cgroup's oom_kill counter moving is OOM", () => {
    expect(classifyExit({ code: null, signal: "SIGKILL", cgroupOomKills: 1 })).toMatchObject({
      oom: true,
      cause: "cgroup",
    });
  });
  it("a plain SIGKILL is not", () => {
    expect(classifyExit({ code: null, signal: "SIGKILL", cgroupOomKills: 0 })).toEqual({
      oom: false,
    });
    expect(classifyExit({ code: 1, signal: null, stderrTail: "Error: boom" })).toEqual({
      oom: false,
    });
  });
  it("the RSS watchdog's kill is OOM", () => {
    expect(classifyExit({ code: null, signal: "SIGKILL", rssKilled: true })).toMatchObject({
      oom: true,
      cause: "rss",
    });
  });
  it("JS heap exhaustion: the message, SIGABRT, or exit 134", () => {
    const tail =
      "<--- Last few GCs --->\nFATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n";
    expect(classifyExit({ code: null, signal: "SIGABRT", stderrTail: tail })).toMatchObject({
      oom: true,
      cause: "js-heap",
    });
    expect(classifyExit({ code: 1, signal: null, stderrTail: tail })).toMatchObject({
      oom: true,
      cause: "js-heap",
    });
    expect(classifyExit({ code: null, signal: "SIGABRT" })).toMatchObject({
      oom: true,
      cause: "js-heap",
    });
    expect(classifyExit({ code: 134, signal: null })).toMatchObject({
      oom: true,
      cause: "js-heap",
    });
  });
  it("the error names the limit", () => {
    const error = outOfMemoryError("app.f", 256, { oom: true, cause: "cgroup", detail: "killed" });
    expect(error).toBeInstanceOf(OutOfMemoryError);
    expect(error.code).toBe("OUT_OF_MEMORY");
    expect(error.message).toContain("256 MiB");
    expect(error.details).toEqual({ limitMiB: 256, cause: "cgroup" });
  });
});
