/**
 * One container's cgroup: a directory per hierarchy (`<mount>/kiln/<agent>/<container>`), the
 * files that say where a process must be written to enter it, usage and OOM readings, and removal.
 *
 * Not promised: readings are as fresh as the kernel's counters (cpuacct is exact; memory usage is
 * the charge at the moment of reading). Removal kills every task left in the group.
 */
import { readdir, readFile, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { CgroupVersion, Controller } from "./hierarchy.js";
import type { CgroupWrite } from "./settings.js";

export interface GroupDir {
  controller: Controller;
  version: CgroupVersion;
  dir: string;
}

/** A reading of a container's resource use. */
export interface CgroupUsage {
  /** CPU time used since the group was created, nanoseconds (null: no accounting controller). */
  cpuNs: number | null;
  /** Working set: memory charged minus inactive page cache (what the kubelet reports), bytes. */
  memoryBytes: number | null;
  /** Everything charged, page cache included, bytes. */
  memoryChargedBytes: number | null;
  /** The high-water mark of the charge, bytes (null where the kernel does not keep one). */
  maxMemoryBytes: number | null;
}

/** The kernel's OOM evidence for a group. */
export interface OomCounters {
  /** Processes the OOM killer killed in this group (null: the kernel has no such counter). */
  oomKills: number | null;
  /** Times the charge hit the hard limit (v1 failcnt, v2 `max` events). Not an OOM by itself. */
  limitHits: number | null;
}

const KILL_WAIT_MS = 2_000;
const RMDIR_ATTEMPTS = 10;

export class ContainerCgroup {
  private destroyed = false;

  constructor(
    readonly id: string,
    private readonly dirs: readonly GroupDir[],
  ) {}

  /** The distinct directories of the group (co-mounted controllers share one). */
  get directories(): string[] {
    return [...new Set(this.dirs.map((d) => d.dir))];
  }

  /** The `cgroup.procs` files a process writes its pid into to enter the group, every hierarchy. */
  get procsFiles(): string[] {
    return this.directories.map((dir) => join(dir, "cgroup.procs"));
  }

  dirOf(controller: Controller): GroupDir | undefined {
    return this.dirs.find((d) => d.controller === controller);
  }

  /** Apply writes from `planWrites`. A failing required write throws, naming file and value. */
  async apply(writes: readonly CgroupWrite[]): Promise<void> {
    for (const write of writes) {
      const group = this.dirOf(write.controller);
      if (!group) continue;
      const file = join(group.dir, write.file);
      try {
        await writeFile(file, write.value);
      } catch (error) {
        if (write.optional) continue;
        throw new Error(
          `cannot write ${JSON.stringify(write.value)} to ${file}: ${(error as Error).message}`,
          { cause: error },
        );
      }
    }
  }

  /** The pids in the group (union over hierarchies). */
  async pids(): Promise<number[]> {
    const pids = new Set<number>();
    for (const dir of this.directories) {
      const text = await readFile(join(dir, "cgroup.procs"), "utf8").catch(() => "");
      for (const line of text.split("\n")) if (line.trim()) pids.add(Number(line));
    }
    return [...pids];
  }

  async usage(): Promise<CgroupUsage> {
    const usage: CgroupUsage = {
      cpuNs: null,
      memoryBytes: null,
      memoryChargedBytes: null,
      maxMemoryBytes: null,
    };
    const acct = this.dirOf("cpuacct") ?? this.dirOf("cpu");
    if (acct?.version === 1 && acct.controller === "cpuacct") {
      usage.cpuNs = await readNumber(join(acct.dir, "cpuacct.usage"));
    } else if (acct?.version === 2) {
      const usec = keyed(await readText(join(acct.dir, "cpu.stat")), "usage_usec");
      usage.cpuNs = usec === null ? null : usec * 1000;
    }
    const memory = this.dirOf("memory");
    if (memory?.version === 1) {
      usage.memoryChargedBytes = await readNumber(join(memory.dir, "memory.usage_in_bytes"));
      usage.maxMemoryBytes = await readNumber(join(memory.dir, "memory.max_usage_in_bytes"));
      const stat = await readText(join(memory.dir, "memory.stat"));
      const inactive = keyed(stat, "total_inactive_file") ?? keyed(stat, "inactive_file") ?? 0;
      if (usage.memoryChargedBytes !== null)
        usage.memoryBytes = Math.max(0, usage.memoryChargedBytes - inactive);
    } else if (memory?.version === 2) {
      usage.memoryChargedBytes = await readNumber(join(memory.dir, "memory.current"));
      usage.maxMemoryBytes = await readNumber(join(memory.dir, "memory.peak"));
      const inactive = keyed(await readText(join(memory.dir, "memory.stat")), "inactive_file") ?? 0;
      if (usage.memoryChargedBytes !== null)
        usage.memoryBytes = Math.max(0, usage.memoryChargedBytes - inactive);
    }
    return usage;
  }

  /** v1 `memory.oom_control` oom_kill + `memory.failcnt` / `memory.memsw.failcnt`; v2 `memory.events` oom_kill + max. */
  async oomCounters(): Promise<OomCounters> {
    const memory = this.dirOf("memory");
    if (memory?.version === 1) {
      const control = await readText(join(memory.dir, "memory.oom_control"));
      // With memsw set to the same limit, the memsw counter is the one that moves.
      const hits = [
        await readNumber(join(memory.dir, "memory.failcnt")),
        await readNumber(join(memory.dir, "memory.memsw.failcnt")),
      ];
      const known = hits.filter((n): n is number => n !== null);
      return {
        oomKills: keyed(control, "oom_kill"),
        limitHits: known.length > 0 ? Math.max(...known) : null,
      };
    }
    if (memory?.version === 2) {
      const events = await readText(join(memory.dir, "memory.events"));
      return { oomKills: keyed(events, "oom_kill"), limitHits: keyed(events, "max") };
    }
    return { oomKills: null, limitHits: null };
  }

  /** The file whose changes signal an OOM kill (v2 `memory.events` supports inotify). */
  get oomEventsFile(): string | null {
    const memory = this.dirOf("memory");
    return memory?.version === 2 ? join(memory.dir, "memory.events") : null;
  }

  /**
   * Kill every task left in the group, then remove its directories (bounded retries: a cgroup
   * with a dying task refuses rmdir with EBUSY for a moment). Idempotent.
   */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await killAll(this);
    const failures: string[] = [];
    for (const dir of this.directories) {
      const error = await removeDir(dir);
      if (error !== null) failures.push(`${dir}: ${error}`);
    }
    if (failures.length > 0)
      throw new Error(`could not remove cgroup ${this.id}: ${failures.join("; ")}`);
  }
}

async function killAll(group: ContainerCgroup): Promise<void> {
  const deadline = Date.now() + KILL_WAIT_MS;
  for (const dir of group.directories) {
    // v2: one write kills the whole subtree (kernel 5.14+).
    await writeFile(join(dir, "cgroup.kill"), "1").catch(() => undefined);
  }
  for (;;) {
    const pids = await group.pids();
    if (pids.length === 0 || Date.now() > deadline) return;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone already
      }
    }
    await sleep(20);
  }
}

/** rmdir with bounded retries; ENOENT counts as removed. Returns the last error, or null. */
export async function removeDir(dir: string): Promise<string | null> {
  let last: string | null = null;
  for (let attempt = 0; attempt < RMDIR_ATTEMPTS; attempt += 1) {
    try {
      await rmdir(dir);
      return null;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return null;
      last = (error as Error).message;
      if (code !== "EBUSY" && code !== "ENOTEMPTY") return last;
      await sleep(25 * (attempt + 1));
    }
  }
  return last;
}

/** Remove a cgroup subtree bottom-up (child groups first), killing its tasks. */
export async function removeTree(dir: string): Promise<string[]> {
  const failures: string[] = [];
  let entries: string[] = [];
  try {
    entries = (await readdir(dir, { withFileTypes: true }))
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
  }
  for (const name of entries) failures.push(...(await removeTree(join(dir, name))));
  const procs = await readFile(join(dir, "cgroup.procs"), "utf8").catch(() => "");
  for (const line of procs.split("\n")) {
    if (!line.trim()) continue;
    try {
      process.kill(Number(line), "SIGKILL");
    } catch {
      // gone already
    }
  }
  const error = await removeDir(dir);
  if (error !== null) failures.push(`${dir}: ${error}`);
  return failures;
}

async function readText(file: string): Promise<string | null> {
  try {
    return await readFile(file, "utf8");
  } catch {
    return null;
  }
}

async function readNumber(file: string): Promise<number | null> {
  const text = await readText(file);
  if (text === null) return null;
  const value = Number(text.trim());
  return Number.isFinite(value) ? value : null;
}

/** The value of `key N` in a flat-keyed cgroup file (memory.stat, cpu.stat, memory.events). */
export function keyed(text: string | null, key: string): number | null {
  if (text === null) return null;
  for (const line of text.split("\n")) {
    const [name, value] = line.trim().split(/\s+/);
    if (name === key && value !== undefined) {
      const n = Number(value);
      return Number.isFinite(n) ? n : null;
    }
  }
  return null;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
