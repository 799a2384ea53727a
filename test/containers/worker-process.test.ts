/** WorkerProcess with and without a sandbox (fake sandboxes: no cgroups needed). */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { present } from "../support/requirements.js";
import type { WorkerSandbox } from "../../runtime/containers/sandbox.js";
import {
  cgroupWrapper,
  rlimitCommands,
  type SpawnWrapper,
} from "../../runtime/containers/spawn-wrapper.js";
import {
  WorkerExitedError,
  WorkerProcess,
  WorkerStartError,
} from "../../runtime/containers/worker-process.js";
import { decode, encode } from "../../runtime/serde.js";
import { within } from "../support/wait.js";

const BUNDLE = join(dirname(fileURLToPath(import.meta.url)), "fixtures", "handlers.mjs");
const built = present(
  "the built worker",
  existsSync(join(process.cwd(), "dist", "runtime", "worker", "main.js"))
    ? null
    : "dist/runtime/worker/main.js is missing (npm run build)",
);
const workers: WorkerProcess[] = [];

afterAll(async () => {
  for (const w of workers) w.kill("stop");
  await Promise.all(workers.map((w) => w.exited));
});

function worker(
  exportName: string,
  sandbox?: WorkerSandbox,
  execArgv: string[] = [],
): WorkerProcess {
  const w = new WorkerProcess({
    id: `w-${workers.length}`,
    bundlePath: BUNDLE,
    exportName,
    method: null,
    app: "app",
    fn: "f",
    env: {},
    agentUrl: "http://127.0.0.1:9",
    token: "t",
    cwd: process.cwd(),
    startupTimeoutMs: 10_000,
    execArgv,
    onLog: () => undefined,
    ...(sandbox ? { sandbox } : {}),
  });
  workers.push(w);
  return w;
}

function deferred<T>(): {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: Error) => void;
} {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

describe.skipIf(!built)("WorkerProcess", () => {
  it("without a sandbox forks directly, as before", async () => {
    const w = worker("double");
    await within(10_000, "ready", w.ready());
    const outcome = await w.run("i1", encode([4]), "value");
    expect(outcome.ok && decode(outcome.value)).toBe(8);
  });

  it("a worker that exits says, to each run it held, how many others it held; a later run gets them all", async () => {
    const w = worker("napOrExit");
    await within(10_000, "ready", w.ready());
    const runs = [
      w.run("i1", encode(["exit", 200]), "value"),
      w.run("i2", encode(["nap", 10_000]), "value"),
      w.run("i3", encode(["nap", 10_000]), "value"),
    ];
    for (const run of runs) {
      const error = await within(
        10_000,
        "the exit",
        run.catch((e: unknown) => e),
      );
      expect(error).toBeInstanceOf(WorkerExitedError);
      expect((error as WorkerExitedError).exit.code).toBe(3);
      expect((error as WorkerExitedError).beside).toBe(2);
    }
    const late = await w.run("i4", encode(["nap", 0]), "value").catch((e: unknown) => e);
    expect((late as WorkerExitedError).beside).toBe(3);
  });

  it("with a sandbox, waits for it, starts through the wrapper (node flags kept) and attaches the pid", async () => {
    const ready = deferred<SpawnWrapper | null>();
    const attached: number[] = [];
    const w = worker("where", { ready: ready.promise, attach: (pid) => attached.push(pid) }, [
      "--max-old-space-size=77",
    ]);
    expect(w.pid).toBeUndefined();
    ready.resolve(cgroupWrapper([], rlimitCommands()));
    await within(10_000, "ready", w.ready());
    expect(attached).toEqual([w.pid]);
    const outcome = await w.run("i2", encode([]), "value");
    if (!outcome.ok) throw new Error(outcome.error.message);
    expect(decode(outcome.value)).toMatchObject({
      pid: w.pid,
      execArgv: ["--max-old-space-size=77"],
    });
  });

  it("a sandbox that fails to set up fails the start with WorkerStartError", async () => {
    const w = worker("double", { ready: Promise.reject(new Error("mkfs.ext4 exploded")) });
    await expect(w.ready()).rejects.toThrow(WorkerStartError);
    await expect(w.ready()).rejects.toThrow(/container sandbox setup failed: mkfs.ext4 exploded/);
    expect(await w.exited).toEqual({ code: null, signal: null, killedFor: "start-failed" });
  });

  it("killed while the sandbox is being set up: never spawns, exits with the reason", async () => {
    const ready = deferred<SpawnWrapper | null>();
    const w = worker("double", { ready: ready.promise });
    const run = w.run("i3", encode([1]), "value");
    w.kill("cancel");
    await expect(run).rejects.toBeInstanceOf(WorkerExitedError);
    ready.resolve(null);
    expect(await w.exited).toEqual({ code: null, signal: null, killedFor: "cancel" });
    expect(w.pid).toBeUndefined();
  });

  it("a worker that could not enter its cgroup exits before running anything (exit 125)", async () => {
    const w = worker("double", {
      ready: Promise.resolve(cgroupWrapper(["/proc/nonexistent/cgroup.procs"])),
    });
    await expect(within(10_000, "start", w.ready())).rejects.toThrow(
      /exited during start-up \(code 125\)/,
    );
    const exit = await w.exited;
    expect(exit.stderrTail).toMatch(/could not confine the worker/);
  });
});
