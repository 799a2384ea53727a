/**
 * The facade end to end: real worker processes (dist/runtime/worker/main.js) started by
 * WorkerProcess through the sandbox's wrapper, inside real cgroups with a loop-mounted scratch
 * disk. Skipped, with the reason printed, only where the kernel refuses cgroups or loop mounts.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { present } from "../support/requirements.js";
import { GpuAllocator, parseFakeGpus } from "../../runtime/containers/gpus.js";
import { Sandbox, SandboxHost } from "../../runtime/containers/sandbox.js";
import { WorkerExitedError, WorkerProcess } from "../../runtime/containers/worker-process.js";
import { OutOfMemoryError } from "../../runtime/errors.js";
import { decode, encode } from "../../runtime/serde.js";
import { parseGpuOption } from "../../runtime/spec/index.js";
import { spawnNode, specWith, testAgentId } from "./helpers.js";
import { waitFor, within } from "../support/wait.js";

const BUNDLE = join(dirname(fileURLToPath(import.meta.url)), "fixtures", "handlers.mjs");
const root = mkdtempSync(join(tmpdir(), "kiln-sandbox-"));
const agentId = testAgentId();
const notices: string[] = [];
const host = await SandboxHost.open({
  agentId,
  scratchRoot: join(root, "scratch"),
  log: (line) => notices.push(line),
  gpus: new GpuAllocator(parseFakeGpus("A100-80GB:2,H100:1")),
  env: {},
});
const skip =
  host.cgroups.enforcement === "fallback"
    ? `cgroups unavailable: ${host.cgroups.reason}`
    : host.disks.enforcement !== "loop-ext4"
      ? (host.disks.notice ?? "no loop mounts")
      : !existsSync(join(process.cwd(), "dist", "runtime", "worker", "main.js"))
        ? "dist/runtime/worker/main.js is missing: run 'npm run build' first"
        : null;
const enforced = present("cgroups and loop mounts", skip, "the sandbox tests are skipped");

const workers = new Set<WorkerProcess>();
let seq = 0;

afterAll(async () => {
  for (const worker of workers) worker.kill("stop");
  await Promise.all([...workers].map((w) => w.exited));
  expect(await host.close()).toEqual([]);
  for (const controller of host.cgroups.versions.keys()) {
    expect(existsSync(join("/sys/fs/cgroup", controller, "kiln", agentId))).toBe(false);
  }
  expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(root);
  rmSync(root, { recursive: true, force: true });
});

function start(sandbox: Sandbox, exportName: string, execArgv: string[] = []): WorkerProcess {
  const worker = new WorkerProcess({
    id: sandbox.containerId,
    bundlePath: BUNDLE,
    exportName,
    method: null,
    app: sandbox.app,
    fn: sandbox.fn,
    env: sandbox.env,
    agentUrl: "http://127.0.0.1:9",
    token: "test",
    cwd: root,
    startupTimeoutMs: 10_000,
    execArgv,
    onLog: () => undefined,
    sandbox,
  });
  workers.add(worker);
  void worker.exited.then(() => workers.delete(worker));
  return worker;
}

async function call<T>(worker: WorkerProcess, ...args: unknown[]): Promise<T> {
  await within(10_000, "worker ready", worker.ready());
  const outcome = await within(
    30_000,
    "the input",
    worker.run(`in-${(seq += 1)}`, encode(args), "value"),
  );
  if (!outcome.ok) throw new Error(`${outcome.error.name}: ${outcome.error.message}`);
  return decode<T>(outcome.value);
}

function reserve(fields: Parameters<typeof specWith>[0], fn = "f"): Sandbox {
  const reservation = host.reserve({
    containerId: `ct-${(seq += 1)}`,
    app: "app",
    fn,
    spec: specWith(fields),
  });
  if (!reservation.ok) throw new Error(reservation.message);
  return reservation.sandbox;
}

describe.skipIf(!enforced)("sandbox + WorkerProcess", () => {
  it("the worker runs inside its cgroup from the start, IPC works through the wrapper, env points at the scratch disk", async () => {
    const sandbox = reserve({ cpu: [0.5, 1], memory: [64, 256], ephemeralDisk: 64 });
    const worker = start(sandbox, "where");
    const seen = await call<{ pid: number; cgroup: string; env: Record<string, string | null> }>(
      worker,
    );
    expect(seen.pid).toBe(worker.pid);
    for (const controller of ["cpu", "memory"]) {
      expect(seen.cgroup).toMatch(
        new RegExp(`:${controller}:/kiln/${agentId}/${sandbox.containerId}\\n`),
      );
    }
    expect(seen.env).toEqual({
      TMPDIR: sandbox.scratchDir,
      KILN_SCRATCH: sandbox.scratchDir,
      CUDA_VISIBLE_DEVICES: null,
      NVIDIA_VISIBLE_DEVICES: null,
    });
    expect(readFileSync("/proc/self/mountinfo", "utf8")).toContain(` ${sandbox.scratchDir} `);
    const usage = await sandbox.usage();
    expect(usage.cpuNs).toBeGreaterThan(0);
    expect(usage.memoryBytes).toBeGreaterThan(1024 * 1024);
    worker.kill("stop");
    await worker.exited;
    expect(await sandbox.release()).toEqual([]);
    expect(existsSync(sandbox.scratchDir)).toBe(false);
  });

  it("OOM at the hard limit gives OutOfMemoryError naming the limit; the next input succeeds on a fresh worker", async () => {
    const spec = { memory: [64, 128] as [number, number] };
    const sandbox = reserve(spec);
    const oomEvents: string[] = [];
    sandbox.onOom((event) => oomEvents.push(event.cause));
    const worker = start(sandbox, "hog", ["--max-old-space-size=96"]);
    const error = await call(worker).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkerExitedError);
    const exit = (error as WorkerExitedError).exit;
    expect(exit.signal).toBe("SIGKILL");
    const verdict = await sandbox.classifyExit(exit);
    if (!verdict.oom) throw new Error("expected an OOM verdict");
    expect(verdict.cause).toBe("cgroup");
    const oom = sandbox.oomError(verdict);
    expect(oom).toBeInstanceOf(OutOfMemoryError);
    expect(oom.message).toContain("128 MiB");
    await waitFor("the OOM poller", () => (oomEvents.length > 0 ? true : undefined), 2_000);
    await sandbox.release();
    expect(await sandbox.classifyExit(exit)).toMatchObject({ oom: true, cause: "cgroup" }); // still known after release

    const fresh = reserve(spec);
    expect(await call(start(fresh, "double"), 21)).toBe(42);
    await fresh.release();
  });

  it("JS heap exhaustion in the worker is classified OOM too", async () => {
    const sandbox = reserve({ memory: [64, 512] });
    const worker = start(sandbox, "heap", ["--max-old-space-size=32"]);
    const error = (await call(worker).catch((e: unknown) => e)) as WorkerExitedError;
    expect(error).toBeInstanceOf(WorkerExitedError);
    expect(error.exit.stderrTail).toMatch(/heap out of memory/);
    expect(await sandbox.classifyExit(error.exit)).toMatchObject({ oom: true, cause: "js-heap" });
    await sandbox.release();
  });

  it("disk: 900 MiB fit in a 1024 MiB quota under a 256 MiB memory limit; past the quota ENOSPC; cleaned after", async () => {
    const sandbox = reserve({ memory: [128, 256], ephemeralDisk: 1024 });
    const worker = start(sandbox, "fill", ["--max-old-space-size=192"]);
    expect(await call(worker, "a", 900)).toEqual({ writtenMiB: 900, code: null });
    const more = await call<{ writtenMiB: number; code: string | null }>(worker, "b", 200);
    expect(more.code).toBe("ENOSPC");
    expect(more.writtenMiB).toBeLessThan(124);
    worker.kill("stop");
    await worker.exited;
    await sandbox.release();
    expect(existsSync(sandbox.scratchDir)).toBe(false);
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(sandbox.scratchDir);
  });

  it("GPUs: exclusive by UUID, devices cgroup allows only those, waits for capacity, returned on crash", async () => {
    const sandbox = reserve({ gpu: "A100:2" });
    const a100s = host.gpus.all.filter((d) => d.name === "A100-80GB");
    expect(sandbox.env.CUDA_VISIBLE_DEVICES).toBe(a100s.map((d) => d.uuid).join(","));
    expect(sandbox.env.NVIDIA_VISIBLE_DEVICES).toBe(sandbox.env.CUDA_VISIBLE_DEVICES);
    await sandbox.ready;
    const devices = sandbox.cgroup?.dirOf("devices");
    if (devices) {
      const list = readFileSync(join(devices.dir, "devices.list"), "utf8");
      expect(list).toContain("c 195:0 rwm");
      expect(list).toContain("c 195:1 rwm");
      expect(list).not.toContain("c 195:2 rwm");
    }
    const spec = specWith({ gpu: "A100:2" });
    expect(host.check(spec)).toBe("waiting for capacity: needs 2 x A100, 0 free");
    expect(host.reserve({ containerId: "ct-wait", app: "app", fn: "g", spec })).toEqual({
      ok: false,
      reason: "capacity",
      message: "waiting for capacity: needs 2 x A100, 0 free",
    });
    expect(
      await Sandbox.prepare({ host, containerId: "ct-wait", app: "app", fn: "g", spec }),
    ).toMatchObject({ ok: false, reason: "capacity" });
    // Fallback list: H100 is free.
    const fallback = reserve({ gpu: ["A100:2", "H100"] });
    expect(fallback.gpus.map((d) => d.name)).toEqual(["H100"]);
    await fallback.release();
    // The GPU holder crashes; its release returns the devices.
    const worker = start(sandbox, "crash");
    const crashed = await call(worker).catch((e: unknown) => e);
    expect(crashed).toBeInstanceOf(WorkerExitedError);
    expect(await sandbox.classifyExit((crashed as WorkerExitedError).exit)).toEqual({ oom: false });
    await sandbox.release();
    expect(host.gpus.free).toHaveLength(3);
    const next = await Sandbox.prepare({
      host,
      containerId: "ct-after",
      app: "app",
      fn: "g",
      spec: {
        ...spec,
        gpu: {
          options: [
            parseGpuOption("A100:2", { min: 1, max: 8 }) as { type: string; count: number },
          ],
        },
      },
    });
    expect(next).toBeInstanceOf(Sandbox);
    await (next as Sandbox).release();
  });

  it("a sandbox whose setup fails fails the start, not the agent", async () => {
    const sandbox = reserve({ memory: [64, 128] });
    await sandbox.ready;
    await sandbox.release(); // cgroup gone before the worker starts
    const worker = start(sandbox, "double");
    await expect(within(10_000, "start", worker.ready())).rejects.toThrow(
      /exited during start-up|could not confine/,
    );
  });

  it("status says what is enforced", async () => {
    const status = await host.status();
    expect(status.enforcement).toBe(host.cgroups.enforcement);
    expect(status.controllers).toMatchObject({
      cpu: expect.stringMatching(/^v[12]$/),
      memory: expect.stringMatching(/^v[12]$/),
    });
    expect(status.disk).toMatchObject({
      enforcement: "loop-ext4",
      notice: null,
      pressure: expect.any(Boolean),
    });
    expect(status.gpus).toMatchObject({ total: 3 });
    console.info(
      `status: ${JSON.stringify({ enforcement: status.enforcement, controllers: status.controllers, notes: status.notes, disk: status.disk.enforcement })}`,
    );
  });
});

describe("fallback sandbox (cgroups not writable)", () => {
  it("rlimits + RSS polling: the watchdog kills past the memory limit and it is reported as OOM", async () => {
    const roRoot = join(root, "ro-cgroup");
    mkdirSync(join(roRoot, "cpu"), { recursive: true });
    mkdirSync(join(roRoot, "memory"), { recursive: true });
    let readOnly = false;
    try {
      execFileSync("mount", ["--bind", roRoot, roRoot], { stdio: "ignore" });
      readOnly = true;
      execFileSync("mount", ["-o", "remount,bind,ro", roRoot], { stdio: "ignore" });
    } catch {
      // stays a plain tree without cgroup files: also unusable
    }
    const lines: string[] = [];
    let fallbackHost: SandboxHost | null = null;
    let pid: number | undefined;
    try {
      fallbackHost = await SandboxHost.open({
        agentId: testAgentId(),
        scratchRoot: join(root, "fallback-scratch"),
        log: (line) => lines.push(line),
        cgroups: { root: roRoot },
        disks: { disabledReason: "test" },
        gpus: new GpuAllocator([]),
        env: {},
      });
      expect(fallbackHost.cgroups.enforcement).toBe("fallback");
      expect(lines.filter((l) => l.startsWith("cgroups unavailable: "))).toHaveLength(1);
      const prepared = await fallbackHost.prepare({
        containerId: "ct-fb",
        app: "app",
        fn: "f",
        spec: specWith({ memory: [64, 128] }),
      });
      if (!(prepared instanceof Sandbox)) throw new Error(prepared.message);
      const events: string[] = [];
      prepared.onOom((e) => events.push(e.cause));
      const wrapper = await prepared.ready;
      const { child, exit } = spawnNode(
        wrapper,
        "const a=[]; setInterval(() => a.push(Buffer.alloc(16<<20, 1)), 40)",
      );
      pid = child.pid;
      prepared.attach(child.pid ?? -1);
      // The wrapper's `ulimit -d` (limit + 256 MiB headroom) is in place once it has run.
      const dataLimit = new RegExp(`Max data size\\s+${(128 + 256) * 1024 * 1024}\\s`);
      await waitFor(
        "the data rlimit",
        () =>
          dataLimit.test(readFileSync(`/proc/${child.pid}/limits`, "utf8")) ? true : undefined,
        3_000,
      );
      const died = await within(10_000, "the watchdog", exit);
      expect(died.signal).toBe("SIGKILL");
      expect(events).toEqual(["rss"]);
      expect(await prepared.classifyExit(died)).toMatchObject({ oom: true, cause: "rss" });
      await prepared.release();
    } finally {
      if (pid !== undefined) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already dead
        }
      }
      await fallbackHost?.close();
      if (readOnly) execFileSync("umount", [roRoot], { stdio: "ignore" });
    }
  });
});
