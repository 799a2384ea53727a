/**
 * Per-container scratch directories with a hard quota enforced by the kernel: a sparse image file
 * of `ephemeralDisk` MiB, formatted ext4 (no journal, no reserved blocks) and loop-mounted at
 * `<root>/<container-id>`. Writes past the quota fail with ENOSPC in the handler. Not tmpfs: its
 * pages would count against the container's memory limit. The image is sparse, so a large quota
 * costs nothing until written. `release()` unmounts and deletes it.
 *
 * Where loop mounts are refused (no /dev/loop*, no CAP_SYS_ADMIN, no mkfs.ext4), scratch is a
 * plain directory without a quota; `enforcement` says "directory" and `notice` why (printed once).
 *
 * Not promised: the whole quota is usable (ext4 metadata takes ~1-2%); host disk reservation —
 * quotas are overcommitted sparse files, so a host whose disk fills shows disk pressure (and a
 * full host disk surfaces as I/O errors in the containers).
 */
import { execFile } from "node:child_process";
import { chmod, mkdir, open, readdir, readFile, rm, rmdir, statfs } from "node:fs/promises";
import { join } from "node:path";

export type DiskEnforcement = "loop-ext4" | "directory";

/** The platform's default ephemeral disk when a function sets none: 512 GiB (capped by free disk). */
const DEFAULT_EPHEMERAL_DISK_MIB = 512 * 1024;
/** The smallest image mkfs.ext4 formats reliably. */
const MIN_IMAGE_MIB = 2;
const COMMAND_TIMEOUT_MS = 30_000;
const UMOUNT_ATTEMPTS = 5;

export interface ScratchDisksOptions {
  /** Where mount points (`<root>/<id>`) and images (`<root>/.images/<id>.img`) live. */
  root: string;
  /** Used when ephemeralDisk is null; capped by the host's free disk. Default 512 GiB. */
  defaultMiB?: number;
  /** Disk pressure when free space is below this fraction of the filesystem. Default 0.1. */
  pressureFreeFraction?: number;
  /** ...or below this many bytes. Default 5 GiB. */
  pressureFreeBytes?: number;
  /** Force plain directories with this reason. */
  disabledReason?: string;
  log?: (line: string) => void;
}

export interface ScratchDisk {
  containerId: string;
  dir: string;
  /** The quota in MiB (null: a plain directory, no quota). */
  quotaMiB: number | null;
  enforcement: DiskEnforcement;
  /** Unmount and delete (idempotent). */
  release(): Promise<void>;
}

export interface DiskPressure {
  path: string;
  freeBytes: number;
  totalBytes: number;
  pressure: boolean;
  /** "disk pressure: 3.1 GiB free of 250 GiB" or null. */
  message: string | null;
}

export class ScratchDisks {
  readonly enforcement: DiskEnforcement;
  /** Why quotas are not enforced (directory mode), printed once at open. */
  readonly notice: string | null;
  private readonly images: string;
  private readonly live = new Map<string, ScratchDisk>();

  private constructor(
    private readonly options: ScratchDisksOptions,
    enforcement: DiskEnforcement,
    notice: string | null,
  ) {
    this.enforcement = enforcement;
    this.notice = notice;
    this.images = join(options.root, ".images");
  }

  /** Probe whether this host allows loop-mounted ext4 images (an 8 MiB trial). Never throws. */
  static async open(options: ScratchDisksOptions): Promise<ScratchDisks> {
    await mkdir(join(options.root, ".images"), { recursive: true });
    const reason = options.disabledReason ?? (await probeLoop(options.root));
    if (reason !== null) {
      const notice = `scratch disk quotas unavailable: ${reason}; scratch is a plain directory without a quota`;
      options.log?.(notice);
      return new ScratchDisks(options, "directory", notice);
    }
    return new ScratchDisks(options, "loop-ext4", null);
  }

  /** Where a container's scratch directory will be (known before `create`). */
  pathFor(containerId: string): string {
    return join(this.options.root, containerId);
  }

  /** The quota a function gets: its ephemeralDisk, or the default capped by the host's free disk. */
  async quotaFor(ephemeralDiskMiB: number | null): Promise<number> {
    if (ephemeralDiskMiB !== null) return ephemeralDiskMiB;
    const { freeBytes } = await this.pressure();
    return Math.max(
      MIN_IMAGE_MIB,
      Math.min(
        this.options.defaultMiB ?? DEFAULT_EPHEMERAL_DISK_MIB,
        Math.floor(freeBytes / (1024 * 1024)),
      ),
    );
  }

  /** Create and mount the container's scratch directory. */
  async create(containerId: string, ephemeralDiskMiB: number | null): Promise<ScratchDisk> {
    if (this.live.has(containerId)) throw new Error(`scratch for ${containerId} exists already`);
    const dir = this.pathFor(containerId);
    await mkdir(dir, { recursive: true, mode: 0o1777 });
    if (this.enforcement === "directory") {
      const disk: ScratchDisk = {
        containerId,
        dir,
        quotaMiB: null,
        enforcement: "directory",
        release: once(() => this.remove(containerId, dir, null)),
      };
      this.live.set(containerId, disk);
      return disk;
    }
    const quotaMiB = await this.quotaFor(ephemeralDiskMiB);
    const image = join(this.images, `${containerId}.img`);
    try {
      await makeImage(image, Math.max(MIN_IMAGE_MIB, quotaMiB));
      await run("mount", ["-o", "loop,noinit_itable,nosuid,nodev", image, dir]);
      await rm(join(dir, "lost+found"), { recursive: true, force: true });
      await chmod(dir, 0o1777);
    } catch (error) {
      await this.remove(containerId, dir, image).catch(() => undefined);
      throw new Error(
        `cannot create the scratch disk of ${containerId}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    const disk: ScratchDisk = {
      containerId,
      dir,
      quotaMiB,
      enforcement: "loop-ext4",
      release: once(() => this.remove(containerId, dir, image)),
    };
    this.live.set(containerId, disk);
    return disk;
  }

  /** Free space of the filesystem holding the images, and whether it is under pressure. */
  async pressure(): Promise<DiskPressure> {
    const stats = await statfs(this.images);
    const freeBytes = stats.bavail * stats.bsize;
    const totalBytes = stats.blocks * stats.bsize;
    const fraction = this.options.pressureFreeFraction ?? 0.1;
    const floor = this.options.pressureFreeBytes ?? 5 * 1024 ** 3;
    const pressure =
      freeBytes < Math.min(floor, totalBytes * 0.5) || freeBytes < totalBytes * fraction;
    const gib = (n: number) => `${(n / 1024 ** 3).toFixed(1)} GiB`;
    return {
      path: this.images,
      freeBytes,
      totalBytes,
      pressure,
      message: pressure ? `disk pressure: ${gib(freeBytes)} free of ${gib(totalBytes)}` : null,
    };
  }

  /** Scratch disks in use. */
  get active(): ScratchDisk[] {
    return [...this.live.values()];
  }

  /** Unmount and delete every scratch left under the root (a crashed agent's). Returns failures. */
  async sweep(): Promise<string[]> {
    return sweepScratch(this.options.root, new Set(this.live.keys()));
  }

  private async remove(containerId: string, dir: string, image: string | null): Promise<void> {
    this.live.delete(containerId);
    if (image !== null) {
      if ((await mountsUnder(dir)).includes(dir)) {
        const error = await unmount(dir);
        if (error) throw new Error(`cannot unmount ${dir}: ${error}`);
      }
      await rm(image, { force: true });
      await rmdir(dir).catch(async () => rm(dir, { recursive: true, force: true }));
    } else {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

/**
 * Unmount every scratch disk under `root` and delete its directories and images, except those
 * of the containers in `keep`. Returns what failed.
 */
export async function sweepScratch(root: string, keep: ReadonlySet<string>): Promise<string[]> {
  const failures: string[] = [];
  for (const dir of await mountsUnder(root)) {
    const error = await unmount(dir);
    if (error) failures.push(`${dir}: ${error}`);
  }
  for (const entry of await readdir(root, { withFileTypes: true }).catch(() => [])) {
    if (entry.name === ".images" || keep.has(entry.name)) continue;
    await rm(join(root, entry.name), { recursive: true, force: true }).catch((e: Error) =>
      failures.push(e.message),
    );
  }
  const images = join(root, ".images");
  for (const entry of await readdir(images).catch(() => [] as string[])) {
    if (keep.has(entry.replace(/\.img$/, ""))) continue;
    await rm(join(images, entry), { force: true });
  }
  return failures;
}

/** A sparse file of `mib` MiB, formatted ext4: no journal (scratch), no reserved blocks, lazy tables. */
async function makeImage(image: string, mib: number): Promise<void> {
  const handle = await open(image, "w", 0o600);
  try {
    await handle.truncate(mib * 1024 * 1024);
  } finally {
    await handle.close();
  }
  await run("mkfs.ext4", [
    "-q",
    "-F",
    "-m",
    "0",
    "-O",
    "^has_journal",
    "-i",
    "65536",
    "-E",
    "lazy_itable_init=1,nodiscard",
    image,
  ]);
}

/** Why loop-mounted images cannot be used here, or null when they can. */
async function probeLoop(root: string): Promise<string | null> {
  const image = join(root, ".images", `probe-${process.pid}.img`);
  const dir = join(root, ".images", `probe-${process.pid}`);
  try {
    await mkdir(dir, { recursive: true });
    await makeImage(image, 8);
    await run("mount", ["-o", "loop,noinit_itable", image, dir]);
    const error = await unmount(dir);
    if (error) return `cannot unmount a trial loop mount: ${error}`;
    return null;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT")
      return `${(error as { path?: string }).path ?? "a tool"} not found (install e2fsprogs and util-linux)`;
    return (error as Error).message.split("\n")[0] ?? "loop mount failed";
  } finally {
    await rm(image, { force: true }).catch(() => undefined);
    await rmdir(dir).catch(() => undefined);
  }
}

/** umount with bounded retries (EBUSY while a dying process still holds a file), then lazy. */
export async function unmount(dir: string): Promise<string | null> {
  let last = "";
  for (let attempt = 0; attempt < UMOUNT_ATTEMPTS; attempt += 1) {
    try {
      await run("umount", [dir]);
      return null;
    } catch (error) {
      last = (error as Error).message;
      if (/not mounted|no mount point/i.test(last)) return null;
      await new Promise((resolve) => setTimeout(resolve, 50 * (attempt + 1)));
    }
  }
  try {
    await run("umount", ["-l", dir]);
    return null;
  } catch {
    return last;
  }
}

/** Mount points at or under `path`, deepest first. */
export async function mountsUnder(path: string): Promise<string[]> {
  const text = await readFile("/proc/self/mountinfo", "utf8").catch(() => "");
  const points = text
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((p): p is string => p !== undefined)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === path || p.startsWith(`${path}/`));
  return points.sort((a, b) => b.length - a.length);
}

function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: COMMAND_TIMEOUT_MS }, (error, stdout, stderr) => {
      if (error) {
        const detail = String(stderr).trim() || error.message;
        reject(
          Object.assign(new Error(`${file} ${args.join(" ")}: ${detail}`), {
            code: (error as NodeJS.ErrnoException).code,
            path: file,
          }),
        );
      } else resolve(String(stdout));
    });
  });
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | null = null;
  return () => (done ??= fn());
}
