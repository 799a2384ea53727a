/**
 * What to write into a container's cgroup files: pure conversions from a function's compiled
 * resources, after the kubelet (cpu) and runc (devices, v1 → v2 mapping).
 */
import type { CgroupVersion, Controller } from "./hierarchy.js";

/** CFS period, microseconds (kubelet's default 100 ms). */
export const CFS_PERIOD_US = 100_000;
/** The smallest CFS quota the kernel accepts (kubelet's MinQuotaPeriod), microseconds. */
export const MIN_CFS_QUOTA_US = 1_000;
export const MIN_SHARES = 2;
export const MAX_SHARES = 262_144;

const MIB = 1024 * 1024;

/** kubelet MilliCPUToShares: millicores x 1024 / 1000, clamped to [2, 262144]. */
export function cpuShares(cores: number): number {
  const milli = Math.round(cores * 1000);
  if (milli <= 0) return MIN_SHARES;
  const shares = Math.floor((milli * 1024) / 1000);
  return Math.min(MAX_SHARES, Math.max(MIN_SHARES, shares));
}

/** runc ConvertCPUSharesToCgroupV2Value: 1 + (shares - 2) x 9999 / 262142, in [1, 10000]. */
export function cpuWeight(shares: number): number {
  if (shares <= 0) return 0;
  return 1 + Math.floor(((shares - 2) * 9999) / 262_142);
}

/** kubelet MilliCPUToQuota: the CFS quota for `cores` per period (min 1000 us); null = unlimited. */
export function cfsQuotaUs(cores: number | null, periodUs = CFS_PERIOD_US): number | null {
  if (cores === null || !Number.isFinite(cores)) return null;
  const milli = Math.round(cores * 1000);
  return Math.max(MIN_CFS_QUOTA_US, Math.floor((milli * periodUs) / 1000));
}

/** A devices cgroup rule: `c 195:0 rwm`. `null` major/minor is the wildcard `*`. */
export interface DeviceRule {
  type: "a" | "b" | "c";
  major: number | null;
  minor: number | null;
  access: string;
}

export function formatDeviceRule(rule: DeviceRule): string {
  if (rule.type === "a") return "a";
  const part = (n: number | null) => (n === null ? "*" : String(n));
  return `${rule.type} ${part(rule.major)}:${part(rule.minor)} ${rule.access}`;
}

const c = (major: number | null, minor: number | null, access = "rwm"): DeviceRule => ({
  type: "c",
  major,
  minor,
  access,
});

/**
 * The devices every container may use: runc's default allow list (mknod of any node, /dev/null,
 * zero, full, random, urandom, tty, console, ptmx and /dev/pts/*). Everything else is denied,
 * including every /dev/nvidia* node the container was not given.
 */
export const DEFAULT_DEVICE_RULES: readonly DeviceRule[] = [
  c(null, null, "m"),
  { type: "b", major: null, minor: null, access: "m" },
  c(1, 3), // /dev/null
  c(1, 5), // /dev/zero
  c(1, 7), // /dev/full
  c(1, 8), // /dev/random
  c(1, 9), // /dev/urandom
  c(5, 0), // /dev/tty
  c(5, 1), // /dev/console
  c(5, 2), // /dev/ptmx
  c(136, null), // /dev/pts/*
];

/** The NVIDIA character major: /dev/nvidiaN is 195:N, nvidiactl 195:255, nvidia-modeset 195:254. */
export const NVIDIA_MAJOR = 195;
export const NVIDIACTL_MINOR = 255;
export const NVIDIA_MODESET_MINOR = 254;

/**
 * Rules for granted GPUs: each /dev/nvidiaN by minor, plus the control nodes every CUDA process
 * opens (nvidiactl, nvidia-modeset, nvidia-uvm and nvidia-uvm-tools when the uvm major is known).
 */
export function gpuDeviceRules(minors: readonly number[], uvmMajor: number | null): DeviceRule[] {
  if (minors.length === 0) return [];
  const rules = minors.map((minor) => c(NVIDIA_MAJOR, minor));
  rules.push(c(NVIDIA_MAJOR, NVIDIACTL_MINOR), c(NVIDIA_MAJOR, NVIDIA_MODESET_MINOR));
  if (uvmMajor !== null) rules.push(c(uvmMajor, 0), c(uvmMajor, 1));
  return rules;
}

/** What one container's cgroup enforces. */
export interface CgroupLimits {
  /** Cores: request → shares/weight; limit → CFS quota (null: unlimited). */
  cpu: { request: number; limit: number | null };
  /** MiB: request → soft limit (memory.low); limit → hard limit, OOM kill (null: none). */
  memory: { request: number; limit: number | null };
  /** Allowed devices beyond the defaults (GPU nodes); null leaves the devices cgroup unset. */
  devices: DeviceRule[] | null;
}

/** One write into a cgroup file. `optional` writes may fail (file absent on this kernel). */
export interface CgroupWrite {
  controller: Controller;
  file: string;
  value: string;
  optional?: boolean;
}

/**
 * The writes, in order, that give a fresh cgroup `limits`, for the version of each controller.
 * Controllers absent from `versions` are skipped.
 */
export function planWrites(
  limits: CgroupLimits,
  versions: ReadonlyMap<Controller, CgroupVersion>,
): CgroupWrite[] {
  const writes: CgroupWrite[] = [];
  const shares = cpuShares(limits.cpu.request);
  const quota = cfsQuotaUs(limits.cpu.limit);
  const hard = limits.memory.limit === null ? null : Math.floor(limits.memory.limit * MIB);
  const soft = Math.floor(limits.memory.request * MIB);

  const cpu = versions.get("cpu");
  if (cpu === 1) {
    writes.push({ controller: "cpu", file: "cpu.shares", value: String(shares) });
    writes.push({ controller: "cpu", file: "cpu.cfs_period_us", value: String(CFS_PERIOD_US) });
    writes.push({
      controller: "cpu",
      file: "cpu.cfs_quota_us",
      value: quota === null ? "-1" : String(quota),
    });
  } else if (cpu === 2) {
    writes.push({ controller: "cpu", file: "cpu.weight", value: String(cpuWeight(shares)) });
    writes.push({
      controller: "cpu",
      file: "cpu.max",
      value: `${quota === null ? "max" : quota} ${CFS_PERIOD_US}`,
    });
  }

  const memory = versions.get("memory");
  if (memory === 1) {
    // limit_in_bytes before memsw (memsw must stay >= it); memsw only exists with swap accounting.
    writes.push({
      controller: "memory",
      file: "memory.limit_in_bytes",
      value: hard === null ? "-1" : String(hard),
    });
    writes.push({
      controller: "memory",
      file: "memory.memsw.limit_in_bytes",
      value: hard === null ? "-1" : String(hard),
      optional: true,
    });
    writes.push({ controller: "memory", file: "memory.soft_limit_in_bytes", value: String(soft) });
  } else if (memory === 2) {
    writes.push({
      controller: "memory",
      file: "memory.max",
      value: hard === null ? "max" : String(hard),
    });
    writes.push({
      controller: "memory",
      file: "memory.swap.max",
      value: hard === null ? "max" : "0",
      optional: true,
    });
    writes.push({ controller: "memory", file: "memory.low", value: String(soft) });
    writes.push({ controller: "memory", file: "memory.oom.group", value: "1", optional: true });
  }

  if (limits.devices !== null && versions.get("devices") === 1) {
    writes.push({ controller: "devices", file: "devices.deny", value: "a" });
    for (const rule of [...DEFAULT_DEVICE_RULES, ...limits.devices]) {
      writes.push({ controller: "devices", file: "devices.allow", value: formatDeviceRule(rule) });
    }
  }
  return writes;
}
