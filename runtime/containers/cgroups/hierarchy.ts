/**
 * Which cgroup version each controller is on, read from the mount table.
 *
 * Decided per controller, as runc and the kubelet do on hybrid hosts: a controller bound to a
 * cgroup v1 mount (`cgroup` fstype, the controller in its super options) is driven through its v1
 * files; a controller listed in the cgroup2 mount's `cgroup.controllers` is driven through the
 * unified hierarchy. A host may have both (e.g. cpu, memory and devices on v1 while the cgroup2
 * mount holds only hugetlb): each controller is used where it lives.
 *
 * Not promised: cgroup namespaces are taken as they appear (paths are relative to the mount
 * point); controllers mounted twice use the first mount found.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** The controllers kiln drives. `cpuacct` exists on v1 only; on v2 `cpu.stat` is always there. */
const CONTROLLERS = ["cpu", "cpuacct", "memory", "devices"] as const;
export type Controller = (typeof CONTROLLERS)[number];
export type CgroupVersion = 1 | 2;

export interface ControllerMount {
  controller: Controller;
  version: CgroupVersion;
  /** Where its hierarchy is mounted (`/sys/fs/cgroup/memory`, or the cgroup2 mount). */
  mountpoint: string;
}

export interface Hierarchy {
  /** The controllers found, each on the version it lives on. */
  controllers: Map<Controller, ControllerMount>;
  /** The cgroup2 mount point, when there is one (even if it holds none of kiln's controllers). */
  unified: string | null;
}

export interface MountEntry {
  mountpoint: string;
  fstype: string;
  superOptions: string[];
}

/** Parse `/proc/self/mountinfo` (proc(5)): fields up to "-", then fstype, source, super options. */
export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const fields = line.trim().split(" ");
    const dash = fields.indexOf("-");
    if (dash < 6 || fields.length < dash + 4) continue;
    const mountpoint = unescapeMount(fields[4] ?? "");
    entries.push({
      mountpoint,
      fstype: fields[dash + 1] ?? "",
      superOptions: (fields[dash + 3] ?? "").split(","),
    });
  }
  return entries;
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescapeMount(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) =>
    String.fromCharCode(parseInt(octal, 8)),
  );
}

/**
 * Decide the version of each controller. `readControllers(mountpoint)` returns the content of a
 * cgroup2 mount's `cgroup.controllers` (null when unreadable).
 */
export function detectHierarchy(
  mounts: MountEntry[],
  readControllers: (mountpoint: string) => string | null,
): Hierarchy {
  const controllers = new Map<Controller, ControllerMount>();
  let unified: string | null = null;
  for (const mount of mounts) {
    if (mount.fstype !== "cgroup") continue;
    for (const option of mount.superOptions) {
      if (!isController(option) || controllers.has(option)) continue;
      controllers.set(option, { controller: option, version: 1, mountpoint: mount.mountpoint });
    }
  }
  for (const mount of mounts) {
    if (mount.fstype !== "cgroup2" || unified !== null) continue;
    unified = mount.mountpoint;
    const available = (readControllers(mount.mountpoint) ?? "").split(/\s+/).filter(Boolean);
    for (const name of available) {
      if (isController(name) && !controllers.has(name)) {
        controllers.set(name, { controller: name, version: 2, mountpoint: mount.mountpoint });
      }
    }
    // v2 has no cpuacct: usage is in cpu.stat of every cgroup, with or without the cpu controller.
    if (!controllers.has("cpuacct"))
      controllers.set("cpuacct", {
        controller: "cpuacct",
        version: 2,
        mountpoint: mount.mountpoint,
      });
    // v2 has no devices files either (it needs an eBPF program): not listed, so not "found".
  }
  return { controllers, unified };
}

/** The hierarchy of this host, from `/proc/self/mountinfo`. */
export function detectHostHierarchy(mountinfoPath = "/proc/self/mountinfo"): Hierarchy {
  let text = "";
  try {
    text = readFileSync(mountinfoPath, "utf8");
  } catch {
    return { controllers: new Map(), unified: null };
  }
  return detectHierarchy(parseMountinfo(text), readCgroupControllers);
}

/**
 * The hierarchy under a given root laid out like `/sys/fs/cgroup`: `<root>/<controller>` as v1
 * mounts, or `<root>` itself as a cgroup2 mount when it has a `cgroup.controllers` file. For tests
 * and for hosts that mount cgroups elsewhere.
 */
export function hierarchyAt(root: string): Hierarchy {
  const mounts: MountEntry[] = [];
  if (existsSync(join(root, "cgroup.controllers")))
    mounts.push({ mountpoint: root, fstype: "cgroup2", superOptions: ["rw"] });
  for (const controller of CONTROLLERS) {
    const dir = join(root, controller);
    if (existsSync(dir))
      mounts.push({ mountpoint: dir, fstype: "cgroup", superOptions: ["rw", controller] });
  }
  return detectHierarchy(mounts, readCgroupControllers);
}

function readCgroupControllers(mountpoint: string): string | null {
  try {
    return readFileSync(join(mountpoint, "cgroup.controllers"), "utf8");
  } catch {
    return null;
  }
}

function isController(name: string): name is Controller {
  return (CONTROLLERS as readonly string[]).includes(name);
}
