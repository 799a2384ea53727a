/**
 * One container: a Node worker process running `runtime/worker/main.js` for one function version.
 *
 * The agent talks to it over IPC. `start()` resolves once the handler is loaded and `enter()`
 * ran; `run()` resolves with the input's outcome; a process that exits fails every input it held
 * with {@link WorkerExitedError}, which the pool turns into a platform retry (or a timeout,
 * cancel or OOM, when the pool itself killed it for that reason).
 */
import { fork, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { FromWorker, InputMode, RemoteErrorInfo, ToWorker } from "../worker/protocol.js";
import { WORKER_ENV } from "../worker/protocol.js";
import { Outbox, unbatch, type Batch } from "../worker/outbox.js";
import type { WorkerSandbox } from "./sandbox.js";
import { wrapFork } from "./spawn-wrapper.js";

/** How much of a worker's stderr is kept for classifying its death (heap OOM messages). */
const STDERR_TAIL_CHARS = 8192;
/** After exit, how long to wait for the rest of stderr to drain. */
const STDERR_DRAIN_MS = 200;

export interface WorkerProcessOptions {
  id: string;
  bundlePath: string;
  exportName: string;
  method: string | null;
  app: string;
  fn: string;
  /** User env and secrets; KILN_* variables are set by the agent and win. */
  env: Record<string, string>;
  agentUrl: string;
  token: string;
  cwd: string;
  startupTimeoutMs: number;
  /** Extra Node flags (heap limit). */
  execArgv?: string[];
  /**
   * Resource enforcement (cgroup, scratch disk, GPUs): the process is started once
   * `sandbox.ready` resolves, through its wrapper, so it runs inside the container's cgroup from
   * its first instruction; `attach(pid)` is called once it runs. If `ready` rejects, the start
   * fails with WorkerStartError. Without it the worker is forked directly (no limits).
   */
  sandbox?: WorkerSandbox;
  onLog: (inputId: string | null, stream: "stdout" | "stderr", text: string) => void;
}

export type RunOutcome = { ok: true; value: string } | { ok: false; error: RemoteErrorInfo };
export type BatchOutcome = { ok: true; values: string[] } | { ok: false; error: RemoteErrorInfo };

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Why the agent killed it, when it did ("timeout", "cancel", "stop", "startup-timeout"). */
  killedFor: string | null;
  /** The last few KiB the process wrote to stderr (V8's "JavaScript heap out of memory" lands here). */
  stderrTail?: string;
}

/**
 * The worker process exited while holding the input. `beside`: how many other runs (inputs, or
 * batches) it held when it exited; the input may not be what brought it down.
 */
export class WorkerExitedError extends Error {
  constructor(
    readonly exit: ExitInfo,
    readonly beside = 0,
  ) {
    super(
      exit.killedFor
        ? `worker was stopped (${exit.killedFor})`
        : `worker exited unexpectedly (${exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`})`,
    );
    this.name = "WorkerExitedError";
  }
}

/** A container that failed to become ready. */
export class WorkerStartError extends Error {
  constructor(
    message: string,
    readonly remote: RemoteErrorInfo | null,
  ) {
    super(message);
    this.name = "WorkerStartError";
  }
}

interface Pending {
  resolve: (outcome: RunOutcome | BatchOutcome) => void;
  reject: (error: Error) => void;
  onYield: ((value: string) => void) | undefined;
}

/** Where the compiled worker entry lives, whether kiln runs from `dist/` or from source (tests). */
function workerEntryPath(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith(".js")) return join(dirname(here), "..", "worker", "main.js");
  const root = resolve(dirname(here), "..", "..");
  const built = join(root, "dist", "runtime", "worker", "main.js");
  if (!existsSync(built))
    throw new Error(`worker entry ${built} is missing: run 'npm run build' first`);
  return built;
}

export class WorkerProcess {
  readonly id: string;
  readonly exited: Promise<ExitInfo>;
  private child: ChildProcess | null = null;
  private readonly pending = new Map<string, Pending>();
  private killedFor: string | null = null;
  private exitInfo: ExitInfo | null = null;
  /** How many runs it held when it exited. */
  private heldAtExit = 0;
  private readyPromise: Promise<number>;
  private stderrTail = "";
  private resolveExit!: (exit: ExitInfo) => void;
  private resolveReady!: (loadMs: number) => void;
  private rejectReady!: (error: Error) => void;

  constructor(private readonly options: WorkerProcessOptions) {
    this.id = options.id;
    this.exited = new Promise((resolveExit) => {
      this.resolveExit = resolveExit;
    });
    this.readyPromise = new Promise<number>((resolveReady, rejectReady) => {
      this.resolveReady = resolveReady;
      this.rejectReady = rejectReady;
    });
    // A rejected start that nobody awaits must not crash the agent.
    this.readyPromise.catch(() => undefined);

    const timer = setTimeout(() => {
      this.rejectReady(
        new WorkerStartError(
          `container did not become ready within ${options.startupTimeoutMs} ms (startupTimeout)`,
          null,
        ),
      );
      this.kill("startup-timeout");
    }, options.startupTimeoutMs);
    void this.readyPromise.then(
      () => clearTimeout(timer),
      () => clearTimeout(timer),
    );
    void this.exited.then((exit) => {
      this.rejectReady(
        new WorkerStartError(
          `container exited during start-up (${exit.signal ?? `code ${exit.code}`})`,
          null,
        ),
      );
    });

    if (options.sandbox) {
      const { sandbox } = options;
      sandbox.ready.then(
        (wrapper) => {
          if (this.exitInfo) return; // killed while the sandbox was being set up
          try {
            this.spawn(wrapper === null ? null : wrapFork(wrapper, options.execArgv ?? []));
          } catch (error) {
            this.failStart(`cannot start the worker: ${messageOf(error)}`);
            return;
          }
          if (this.child?.pid !== undefined) sandbox.attach?.(this.child.pid);
        },
        (error: unknown) => this.failStart(`container sandbox setup failed: ${messageOf(error)}`),
      );
    } else {
      this.spawn(null);
    }
  }

  private spawn(wrapped: { execPath: string; execArgv: string[] } | null): void {
    const options = this.options;
    const child = fork(workerEntryPath(), [], {
      cwd: options.cwd,
      env: {
        ...process.env,
        ...options.env,
        [WORKER_ENV.bundle]: options.bundlePath,
        [WORKER_ENV.exportName]: options.exportName,
        [WORKER_ENV.method]: options.method ?? "",
        [WORKER_ENV.app]: options.app,
        [WORKER_ENV.fn]: options.fn,
        [WORKER_ENV.containerId]: options.id,
        [WORKER_ENV.url]: options.agentUrl,
        [WORKER_ENV.token]: options.token,
      },
      ...(wrapped ?? { execArgv: options.execArgv ?? [] }),
      serialization: "advanced",
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    this.child = child;
    child.stdout
      ?.setEncoding("utf8")
      .on("data", (text: string) => options.onLog(null, "stdout", text));
    child.stderr?.setEncoding("utf8").on("data", (text: string) => {
      this.stderrTail = (this.stderrTail + text).slice(-STDERR_TAIL_CHARS);
      options.onLog(null, "stderr", text);
    });
    child.once("exit", (code, signal) => {
      void drained(child, STDERR_DRAIN_MS).then(() => {
        this.finish({
          code,
          signal,
          killedFor: this.killedFor,
          ...(this.stderrTail ? { stderrTail: this.stderrTail } : {}),
        });
      });
    });
    child.on("message", (arrived: Batch<FromWorker>) => {
      for (const message of unbatch(arrived)) {
        switch (message.t) {
          case "ready":
            this.resolveReady(message.loadMs);
            break;
          case "start-failed":
            this.rejectReady(
              new WorkerStartError(
                `${message.error.name}: ${message.error.message}`,
                message.error,
              ),
            );
            break;
          default:
            this.onMessage(message);
        }
      }
    });
  }

  private failStart(message: string): void {
    this.rejectReady(new WorkerStartError(message, null));
    this.finish({ code: null, signal: null, killedFor: this.killedFor ?? "start-failed" });
  }

  private finish(exit: ExitInfo): void {
    if (this.exitInfo) return;
    this.exitInfo = exit;
    this.heldAtExit = this.pending.size;
    const error = new WorkerExitedError(exit, this.heldAtExit - 1);
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
    this.resolveExit(exit);
  }

  /** Resolves with the load time in ms once the worker is ready; rejects with WorkerStartError. */
  ready(): Promise<number> {
    return this.readyPromise;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get alive(): boolean {
    return this.exitInfo === null;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** Send one input; resolves with its outcome, rejects with WorkerExitedError if the process dies. */
  run(
    id: string,
    args: string,
    mode: InputMode,
    onYield?: (value: string) => void,
  ): Promise<RunOutcome> {
    if (this.exitInfo) return Promise.reject(this.exitedBefore());
    return new Promise<RunOutcome>((resolveRun, rejectRun) => {
      this.pending.set(id, {
        resolve: resolveRun as (o: RunOutcome | BatchOutcome) => void,
        reject: rejectRun,
        onYield,
      });
      this.post({ t: "input", id, args, mode });
    });
  }

  /** Send one dynamic batch (each item an input's encoded arguments); resolves with one result per item. */
  runBatch(id: string, items: string[]): Promise<BatchOutcome> {
    if (this.exitInfo) return Promise.reject(this.exitedBefore());
    return new Promise<BatchOutcome>((resolveRun, rejectRun) => {
      this.pending.set(id, {
        resolve: resolveRun as (o: RunOutcome | BatchOutcome) => void,
        reject: rejectRun,
        onYield: undefined,
      });
      this.post({ t: "batch", id, items });
    });
  }

  /** A run sent after the exit: whatever it held when it exited ran beside this one. */
  private exitedBefore(): WorkerExitedError {
    return new WorkerExitedError(this.exitInfo as ExitInfo, this.heldAtExit);
  }

  /** Kill at once (SIGKILL): the only way to stop a synchronous infinite loop. */
  kill(reason: string): void {
    if (this.exitInfo) return;
    this.killedFor ??= reason;
    if (this.child) this.child.kill("SIGKILL");
    else this.finish({ code: null, signal: null, killedFor: this.killedFor }); // not started yet
  }

  /** Ask the worker to run `exit()` and leave; SIGKILL after `graceMs`. */
  async stop(graceMs: number): Promise<ExitInfo> {
    if (this.exitInfo) return this.exitInfo;
    this.killedFor ??= "stop";
    if (!this.child) {
      this.kill("stop");
      return this.exited;
    }
    this.post({ t: "shutdown" });
    const child = this.child;
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }

  private post(message: ToWorker): void {
    if (!this.child?.connected) return;
    this.outbox.post(message);
  }

  /** Messages to the worker, batched while a send is in flight (outbox.ts). */
  private readonly outbox = new Outbox<ToWorker>((message, done) => {
    if (!this.child?.connected) return done(null);
    this.child.send(message, (error) => {
      if (error && this.alive) this.kill("ipc-error");
      done(error);
    });
  });

  private onMessage(message: FromWorker): void {
    switch (message.t) {
      case "log":
        this.options.onLog(message.id, message.stream, message.text);
        return;
      case "yield":
        this.pending.get(message.id)?.onYield?.(message.value);
        return;
      case "result": {
        const pending = this.pending.get(message.id);
        if (!pending) return;
        this.pending.delete(message.id);
        pending.resolve(
          message.ok ? { ok: true, value: message.value } : { ok: false, error: message.error },
        );
        return;
      }
      case "batch-result": {
        const pending = this.pending.get(message.id);
        if (!pending) return;
        this.pending.delete(message.id);
        pending.resolve(
          message.ok ? { ok: true, values: message.values } : { ok: false, error: message.error },
        );
        return;
      }
      default:
        return;
    }
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Resolves when the child's stderr has ended (all output read), or after `ms`. */
function drained(child: ChildProcess, ms: number): Promise<void> {
  const stream = child.stderr;
  if (!stream || stream.readableEnded || stream.destroyed) return Promise.resolve();
  return new Promise((resolveDrain) => {
    const timer = setTimeout(done, ms);
    stream.once("end", done);
    stream.once("close", done);
    function done(): void {
      clearTimeout(timer);
      stream?.off("end", done);
      stream?.off("close", done);
      resolveDrain();
    }
  });
}
