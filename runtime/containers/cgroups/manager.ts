/**
 * The agent's cgroup tree: `<mount>/<parent>/<agent-id>/<container-id>` in every hierarchy kiln
 * uses, the version of each controller decided from the mounts, and the enforcement this host
 * gets (`kiln status` shows it).
 *
 * When cgroups cannot be written (not root, a read-only mount, no cpu or memory controller) the
 * manager says so once — "cgroups unavailable: <reason>; falling back to rlimits + RSS polling" —
 * and `enforcement` is "fallback": containers then run with rlimits and an RSS watchdog
 * (see ../fallback.ts).
 *
 * Not promised: groups left by an agent that was killed are removed only by `sweep()` of an agent
 * with the same id.
 */
import { mkdir, readdir, readFile, rmdir, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { ContainerCgroup, removeDir, removeTree, type GroupDir } from "./container-cgroup.js";
import {
  detectHostHierarchy,
  hierarchyAt,
  type CgroupVersion,
  type Controller,
  type Hierarchy,
} from "./hierarchy.js";
import { planWrites, type CgroupLimits } from "./settings.js";

export type Enforcement = "cgroup-v1" | "cgroup-v2" | "mixed" | "fallback";

/** Controllers without which there is no cgroup enforcement at all. */
const REQUIRED: readonly Controller[] = ["cpu", "memory"];

export interface CgroupManagerOptions {
  /** This agent's id; its containers live under `<parent>/<agentId>`. */
  agentId: string;
  /** The group under each hierarchy's root holding every agent. Default "kiln". */
  parent?: string;
  /**
   * Where the hierarchies are mounted, laid out like /sys/fs/cgroup (`<root>/<controller>` for v1,
   * `<root>` for a cgroup2 mount). Default: read from `mountinfoPath`.
   */
  root?: string;
  /** Default /proc/self/mountinfo. */
  mountinfoPath?: string;
  /** Force the fallback with this reason (e.g. `KILN_CGROUPS=off`). */
  disabledReason?: string;
  /** Told once, at open, when cgroups are unavailable; and of degraded controllers. */
  log?: (line: string) => void;
}

export class CgroupManager {
  /** How limits are enforced on this host. */
  readonly enforcement: Enforcement;
  /** Why cgroups are not used (fallback only). */
  readonly reason: string | null;
  /** What is degraded though cgroups are used (e.g. no devices controller). */
  readonly notes: string[];
  /** The version each usable controller is driven through. */
  readonly versions: ReadonlyMap<Controller, CgroupVersion>;
  private readonly agentDirs: GroupDir[];

  private constructor(init: {
    enforcement: Enforcement;
    reason: string | null;
    notes: string[];
    agentDirs: GroupDir[];
  }) {
    this.enforcement = init.enforcement;
    this.reason = init.reason;
    this.notes = init.notes;
    this.agentDirs = init.agentDirs;
    this.versions = new Map(init.agentDirs.map((d) => [d.controller, d.version]));
  }

  /** Detect the hierarchy, create the agent's groups and decide the enforcement. Never throws. */
  static async open(options: CgroupManagerOptions): Promise<CgroupManager> {
    const fallback = (reason: string): CgroupManager => {
      options.log?.(`cgroups unavailable: ${reason}; falling back to rlimits + RSS polling`);
      return new CgroupManager({ enforcement: "fallback", reason, notes: [], agentDirs: [] });
    };
    if (options.disabledReason) return fallback(options.disabledReason);
    const hierarchy: Hierarchy = options.root
      ? hierarchyAt(options.root)
      : detectHostHierarchy(options.mountinfoPath);
    const missing = REQUIRED.filter((c) => !hierarchy.controllers.has(c));
    if (missing.length > 0) {
      return fallback(
        `no ${missing.join(" or ")} controller mounted${options.root ? ` under ${options.root}` : ""}`,
      );
    }
    const path = [options.parent ?? "kiln", safeName(options.agentId)];
    const agentDirs: GroupDir[] = [];
    const notes: string[] = [];
    try {
      const v2 = [...hierarchy.controllers.values()].filter(
        (m) => m.version === 2 && m.controller !== "cpuacct",
      );
      if (v2.length > 0 && hierarchy.unified) {
        await enableV2Controllers(
          hierarchy.unified,
          path,
          v2.map((m) => m.controller),
        );
      }
      for (const mount of hierarchy.controllers.values()) {
        const dir = join(mount.mountpoint, ...path);
        try {
          await mkdirs(dir);
          agentDirs.push({ controller: mount.controller, version: mount.version, dir });
        } catch (error) {
          if (REQUIRED.includes(mount.controller)) throw error;
          notes.push(`${mount.controller} controller not writable (${(error as Error).message})`);
        }
      }
      await probe(agentDirs);
    } catch (error) {
      return fallback((error as Error).message);
    }
    if (!hierarchy.controllers.has("devices"))
      notes.push(
        "no devices controller (cgroup v2 needs eBPF): GPU isolation is by environment variables only",
      );
    if (
      !agentDirs.some(
        (d) => d.controller === "cpuacct" || (d.controller === "cpu" && d.version === 2),
      )
    ) {
      notes.push("no cpu accounting controller: CPU usage is read from /proc");
    }
    const versions = new Set(
      agentDirs.filter((d) => d.controller !== "cpuacct" || d.version === 1).map((d) => d.version),
    );
    const enforcement: Enforcement =
      versions.size > 1 ? "mixed" : versions.has(2) ? "cgroup-v2" : "cgroup-v1";
    for (const note of notes) options.log?.(`cgroups: ${note}`);
    return new CgroupManager({ enforcement, reason: null, notes, agentDirs });
  }

  get available(): boolean {
    return this.enforcement !== "fallback";
  }

  /** Where the agent's groups live, per controller. */
  get agentDirectories(): string[] {
    return [...new Set(this.agentDirs.map((d) => d.dir))];
  }

  /** Create the container's group in every hierarchy and apply `limits`. Throws in fallback mode. */
  async create(containerId: string, limits: CgroupLimits): Promise<ContainerCgroup> {
    if (!this.available) throw new Error(`cgroups unavailable: ${this.reason ?? "unknown"}`);
    const name = safeName(containerId);
    const dirs = this.agentDirs.map((d) => ({ ...d, dir: join(d.dir, name) }));
    const group = new ContainerCgroup(containerId, dirs);
    try {
      for (const dir of group.directories) await mkdir(dir);
      await group.apply(planWrites(limits, this.versions));
    } catch (error) {
      await group.destroy().catch(() => undefined);
      throw error;
    }
    return group;
  }

  /** Remove every container group of this agent (left by a crashed run). Returns failures. */
  async sweep(): Promise<string[]> {
    const failures: string[] = [];
    for (const dir of this.agentDirectories) {
      const children = await readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const child of children)
        if (child.isDirectory()) failures.push(...(await removeTree(join(dir, child.name))));
    }
    return failures;
  }

  /** Sweep, then remove the agent's own groups (and the shared parent when no other agent uses it). */
  async close(): Promise<string[]> {
    const failures = await this.sweep();
    for (const dir of this.agentDirectories) {
      const error = await removeDir(dir);
      if (error !== null) failures.push(`${dir}: ${error}`);
      else await rmdir(dirname(dir)).catch(() => undefined); // busy: another agent's
    }
    return failures;
  }
}

/** v2: controllers must be enabled in `cgroup.subtree_control` of every ancestor of a container. */
async function enableV2Controllers(
  unified: string,
  path: string[],
  controllers: Controller[],
): Promise<void> {
  let dir = unified;
  for (const part of ["", ...path]) {
    if (part) {
      dir = join(dir, part);
      await mkdirs(dir);
    }
    const available = (await readFile(join(dir, "cgroup.controllers"), "utf8")).split(/\s+/);
    const enable = controllers.filter((c) => available.includes(c)).map((c) => `+${c}`);
    if (enable.length > 0) await writeFile(join(dir, "cgroup.subtree_control"), enable.join(" "));
  }
}

/** A group can be created and written: mkdir a child, write a harmless value, remove it. */
async function probe(agentDirs: GroupDir[]): Promise<void> {
  for (const group of agentDirs.filter((d) => REQUIRED.includes(d.controller))) {
    const dir = join(group.dir, `probe-${process.pid}`);
    await mkdirs(dir);
    try {
      const file =
        group.controller === "cpu"
          ? group.version === 1
            ? "cpu.shares"
            : "cpu.weight"
          : group.version === 1
            ? "memory.soft_limit_in_bytes"
            : "memory.low";
      const value = group.controller === "cpu" ? (group.version === 1 ? "1024" : "100") : "0";
      await writeFile(join(dir, file), value);
    } finally {
      await removeDir(dir);
    }
  }
}

/**
 * `mkdir -p` one level at a time, so the real error surfaces (recursive mkdir reports ENOENT
 * for a read-only file system).
 */
async function mkdirs(dir: string): Promise<void> {
  const parts = resolve(dir).split("/").filter(Boolean);
  let path = "";
  for (const part of parts) {
    path += `/${part}`;
    try {
      await mkdir(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
  }
}

/** Cgroup directory names: letters, digits, `-`, `_`, `.`. */
function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, "_") || "_";
}
