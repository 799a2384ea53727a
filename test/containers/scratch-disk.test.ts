/**
 * Loop-mounted ext4 scratch disks (real mounts). Skipped, with the reason printed, only where the
 * kernel refuses loop mounts.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { present } from "../support/requirements.js";
import { reclaimStateDir } from "../../runtime/containers/reclaim.js";
import { ScratchDisks } from "../../runtime/containers/scratch-disk.js";
import { cgroupWrapper } from "../../runtime/containers/spawn-wrapper.js";
import { spawnNode } from "./helpers.js";
import { within } from "../support/wait.js";

const root = mkdtempSync(join(tmpdir(), "kiln-scratch-"));
const notices: string[] = [];
const disks = await ScratchDisks.open({ root, log: (line) => notices.push(line) });
const skip = disks.enforcement === "loop-ext4" ? null : disks.notice;
const loopMounts = present("loop mounts", skip, "the loop-mount tests are skipped");

afterAll(async () => {
  for (const disk of disks.active) await disk.release();
  expect(await disks.sweep()).toEqual([]);
  expect(mounted(root)).toEqual([]);
  rmSync(root, { recursive: true, force: true });
});

function mounted(path: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[4] ?? "")
    .filter((p) => p.startsWith(path));
}

/** Write `mib` MiB in 4 MiB chunks into `dir`; report what was written and the error code, if any. */
const WRITER = `
const fs = require("fs"); const [dir, mib] = [process.argv[1], Number(process.argv[2])];
const chunk = Buffer.alloc(4 << 20, 7); let written = 0; let code = null;
const fd = fs.openSync(dir + "/data", "w");
try { while (written < mib * 1048576) { written += fs.writeSync(fd, chunk); } fs.fsyncSync(fd); }
catch (e) { code = e.code; } finally { fs.closeSync(fd); }
process.stdout.write(JSON.stringify({ writtenMiB: Math.floor(written / 1048576), code }));`;

async function write(
  dir: string,
  mib: number,
): Promise<{ writtenMiB: number; code: string | null }> {
  const started = spawnNode(cgroupWrapper([]), WRITER, [], {}, undefined, [dir, String(mib)]);
  let out = "";
  started.child.stdout?.setEncoding("utf8").on("data", (t: string) => (out += t));
  const died = await within(30_000, "the writer", started.exit);
  if (died.code !== 0) throw new Error(`writer failed: ${died.stderr}`);
  return JSON.parse(out) as { writtenMiB: number; code: string | null };
}

describe.skipIf(!loopMounts)("scratch disk with a kernel-enforced quota", () => {
  it("writes past the quota fail with ENOSPC; release unmounts and deletes", async () => {
    const disk = await disks.create("ct-small", 32);
    expect(disk.enforcement).toBe("loop-ext4");
    expect(mounted(disk.dir)).toEqual([disk.dir]);
    expect(statSync(disk.dir).mode & 0o7777).toBe(0o1777);
    const result = await write(disk.dir, 64);
    expect(result.code).toBe("ENOSPC");
    expect(result.writtenMiB).toBeGreaterThan(24);
    expect(result.writtenMiB).toBeLessThanOrEqual(32);
    await disk.release();
    await disk.release(); // idempotent
    expect(mounted(disk.dir)).toEqual([]);
    expect(existsSync(disk.dir)).toBe(false);
    expect(existsSync(join(root, ".images", "ct-small.img"))).toBe(false);
  });

  it("a killed agent's scratch disks are unmounted and deleted, images and data, by the next agent's reclaim", async () => {
    const stateDir = join(root, "killed-agent");
    const dead = await ScratchDisks.open({ root: join(stateDir, "scratch"), log: () => undefined });
    const disk = await dead.create("ct-left", 32);
    expect((await write(disk.dir, 8)).code).toBe(null);
    // The agent dies here (no release): its mount, image and data stay behind.
    expect(mounted(disk.dir)).toEqual([disk.dir]);
    expect(await reclaimStateDir(stateDir)).toEqual([]);
    expect(mounted(stateDir)).toEqual([]);
    expect(existsSync(disk.dir)).toBe(false);
    expect(readdirSync(join(stateDir, "scratch", ".images"))).toEqual([]);
  });

  it("the image is sparse: a large quota costs nothing until written", async () => {
    const disk = await disks.create("ct-sparse", 64 * 1024);
    const image = statSync(join(root, ".images", "ct-sparse.img"));
    expect(image.size).toBe(64 * 1024 * 1024 * 1024);
    expect(image.blocks * 512).toBeLessThan(64 * 1024 * 1024);
    await disk.release();
  });

  it("default quota: 512 GiB capped by the host's free disk; pressure is reported", async () => {
    const pressure = await disks.pressure();
    expect(pressure.freeBytes).toBeGreaterThan(0);
    expect(pressure.totalBytes).toBeGreaterThanOrEqual(pressure.freeBytes);
    expect(await disks.quotaFor(null)).toBe(
      Math.min(512 * 1024, Math.floor(pressure.freeBytes / 1024 / 1024)),
    );
    expect(await disks.quotaFor(100)).toBe(100);
    const tight = await ScratchDisks.open({
      root,
      disabledReason: "test",
      pressureFreeFraction: 1.01,
    });
    expect((await tight.pressure()).message).toMatch(
      /^disk pressure: [\d.]+ GiB free of [\d.]+ GiB$/,
    );
  });
});

describe("directory fallback", () => {
  it("without loop mounts scratch is a plain directory, and says why once", async () => {
    const lines: string[] = [];
    const plain = await ScratchDisks.open({
      root,
      disabledReason: "no /dev/loop*",
      log: (l) => lines.push(l),
    });
    expect(plain.enforcement).toBe("directory");
    expect(lines).toEqual([
      "scratch disk quotas unavailable: no /dev/loop*; scratch is a plain directory without a quota",
    ]);
    const disk = await plain.create("ct-plain", 16);
    expect(disk).toMatchObject({ enforcement: "directory", quotaMiB: null });
    expect(existsSync(disk.dir)).toBe(true);
    await disk.release();
    expect(existsSync(disk.dir)).toBe(false);
  });
});
