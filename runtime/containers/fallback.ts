/**
 * Enforcement without cgroups (an unprivileged laptop, a read-only cgroup mount): rlimits set by
 * the spawn wrapper, and a watchdog that polls the worker's resident memory and kills it past the
 * memory limit (reported as OOM, cause "rss"). Usage readings come from /proc/<pid>.
 *
 * Not promised: CPU limits and shares (nothing enforces them here); processes the worker spawns
 * are neither measured nor killed; an allocation burst between two polls can overshoot the limit.
 * RLIMIT_AS is not used: V8 reserves far more address space than it touches.
 */
import { readFile } from "node:fs/promises";

/** How often the watchdog reads RSS, ms. */
export const RSS_POLL_MS = 250;
/** Data-segment rlimit headroom above the memory limit: a backstop for bursts, never the limit. */
export const DATA_RLIMIT_HEADROOM_BYTES = 256 * 1024 * 1024;

export interface ProcUsage {
  /** utime + stime, nanoseconds. */
  cpuNs: number;
  rssBytes: number;
  /** Peak RSS (VmHWM), bytes. */
  maxRssBytes: number;
}

/** Clock ticks per second for /proc/<pid>/stat times (USER_HZ; 100 on every Linux ABI in use). */
const CLOCK_TICKS = 100;

/** CPU and memory of one process from /proc, or null when it is gone. */
export async function readProcUsage(pid: number): Promise<ProcUsage | null> {
  try {
    const [stat, status] = await Promise.all([
      readFile(`/proc/${pid}/stat`, "utf8"),
      readFile(`/proc/${pid}/status`, "utf8"),
    ]);
    // Fields after the command name (which may hold spaces) start at ") ".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]); // utime (14th), stime (15th)
    return {
      cpuNs: (ticks / CLOCK_TICKS) * 1e9,
      rssBytes: statusKiB(status, "VmRSS") * 1024,
      maxRssBytes: statusKiB(status, "VmHWM") * 1024,
    };
  } catch {
    return null;
  }
}

function statusKiB(status: string, key: string): number {
  const match = new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(status);
  return match ? Number(match[1]) : 0;
}

/** Polls a pid's RSS; past `limitBytes` it SIGKILLs the process and calls `onKill` once. */
export class RssWatchdog {
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  /** Set once the watchdog killed the process. */
  killed = false;
  /** The RSS seen when it killed, bytes. */
  killedAtBytes: number | null = null;

  constructor(
    private readonly pid: number,
    private readonly limitBytes: number,
    private readonly onKill: (rssBytes: number) => void,
    private readonly intervalMs = RSS_POLL_MS,
  ) {}

  start(): this {
    this.timer ??= setInterval(() => void this.check(), this.intervalMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One poll (exposed for tests). */
  async check(): Promise<void> {
    if (this.busy || this.killed) return;
    this.busy = true;
    try {
      const usage = await readProcUsage(this.pid);
      if (usage === null) {
        this.stop();
        return;
      }
      if (usage.rssBytes > this.limitBytes) {
        this.killed = true;
        this.killedAtBytes = usage.rssBytes;
        try {
          process.kill(this.pid, "SIGKILL");
        } catch {
          // exited meanwhile
        }
        this.stop();
        this.onKill(usage.rssBytes);
      }
    } finally {
      this.busy = false;
    }
  }
}
