/**
 * A function's pool of containers on this host, and the loop that feeds them.
 *
 * The loop claims only what it can place: free slots of ready or starting containers of the
 * current version, plus the slots of one more container when the pool may grow. Claimed inputs
 * beyond the free slots start that container (start on demand); idle containers stop after
 * `scaledownWindow`; `minContainers` stay up. (The windowed autoscaler replaces this simple policy
 * in its own issue.)
 *
 * Failures are kept apart:
 * - the handler threw or ran past `timeout` → the function's `retries` (with backoff), then the
 *   caller gets RemoteError / FunctionTimeoutError;
 * - the worker died for another reason, or the agent holding the input died → platform retry
 *   (up to PLATFORM_RETRIES, at the front of the queue), then an error that says so.
 * A new version (code or resources changed) drains the old containers: they finish what they
 * hold and receive nothing new.
 */
import { randomUUID } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { CancelledError, FunctionTimeoutError, InvalidError, RemoteError, toWire, type KilnError } from "../errors.js";
import { WorkerExitedError, WorkerProcess, WorkerStartError } from "../containers/worker-process.js";
import type { Outcome, ContainerStatus, FunctionStatus } from "../protocol.js";
import { PLATFORM_RETRIES, retryDelayMs, type CompiledFunctionSpec } from "../spec/index.js";
import type { Claim, Store } from "../store/store.js";
import type { HostCapacity } from "./capacity.js";
import { keys, type InputEnvelope } from "./inputs.js";
import type { LogBook } from "./logs.js";
import type { OutcomeWriter } from "./outcomes.js";
import { Wakeup } from "./wakeup.js";

/** Consecutive start failures back off 1 s, 2 s, 4 s ... up to this. */
const MAX_START_BACKOFF_MS = 30_000;
const CLAIM_WAIT_MS = 2_000;
const MAINTENANCE_INTERVAL_MS = 250;

/** What the pool runs: one deployed version of one function. */
export interface FunctionRuntime {
  app: string;
  fn: string;
  spec: CompiledFunctionSpec;
  /** Changes when code or resources change; containers of another version are drained. */
  version: string;
  bundlePath: string;
}

export interface PoolContext {
  store: Store;
  agentId: string;
  agentUrl: string;
  token: string;
  outcomes: OutcomeWriter;
  logs: LogBook;
  capacity: HostCapacity;
  scratchDir: string;
  leaseMs: number;
}

interface Active {
  claim: Claim;
  input: InputEnvelope;
  cancelled: boolean;
  timedOut: boolean;
}

interface Container {
  id: string;
  proc: WorkerProcess;
  version: string;
  cpu: number;
  state: "starting" | "ready" | "draining";
  assigned: Map<string, Active>;
  startedAt: number;
  idleSince: number;
  coldStartMs: number | null;
  scratch: string;
}

export class FunctionPool {
  private runtime: FunctionRuntime;
  private readonly containers = new Map<string, Container>();
  private readonly active = new Map<string, { container: Container; active: Active }>();
  private readonly wakeup = new Wakeup();
  private readonly abort = new AbortController();
  private stopped = false;
  private loopDone: Promise<void> = Promise.resolve();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly unregisterEvictor: () => void;
  private preferSpawn = false;
  private coldStarts = 0;
  private startFailures = 0;
  private failureStreak = 0;
  private startBlockedUntil = 0;
  private lastStartError: string | null = null;
  private blocked: string | null = null;

  constructor(
    private readonly ctx: PoolContext,
    runtime: FunctionRuntime,
  ) {
    this.runtime = runtime;
    this.unregisterEvictor = ctx.capacity.register(
      () => this.evictIdle(),
      () => this.wakeup.notify(),
    );
  }

  get name(): string {
    return this.runtime.fn;
  }

  start(): void {
    this.loopDone = this.loop().catch((error: unknown) => {
      this.system(`dispatch loop failed: ${(error as Error).stack ?? String(error)}`);
    });
    const maintenance = setInterval(() => this.maintain(), MAINTENANCE_INTERVAL_MS);
    const heartbeat = setInterval(() => void this.heartbeat(), Math.max(100, Math.floor(this.ctx.leaseMs / 3)));
    maintenance.unref();
    heartbeat.unref();
    this.timers.push(maintenance, heartbeat);
  }

  /** A new deployment of the function. Scaling-only changes keep the containers. */
  update(runtime: FunctionRuntime): void {
    const versionChanged = runtime.version !== this.runtime.version;
    this.runtime = runtime;
    if (versionChanged) {
      for (const container of this.containers.values()) {
        if (container.version !== runtime.version) this.drain(container);
      }
    }
    this.wakeup.notify();
  }

  /** Kill the work of an input this pool holds. Returns whether it held it. */
  cancel(inputId: string): boolean {
    const held = this.active.get(inputId);
    if (!held) return false;
    held.active.cancelled = true;
    held.container.proc.kill("cancel");
    return true;
  }

  /**
   * Stop the pool. `drain`: in-flight inputs finish first (app deleted); otherwise held inputs go
   * back to the queue for a later agent (agent shutdown) and containers are killed.
   */
  async stop(options: { drain: boolean; graceMs: number }): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort();
    this.wakeup.notify();
    for (const timer of this.timers) clearInterval(timer);
    this.unregisterEvictor();
    await this.loopDone;
    const containers = [...this.containers.values()];
    if (options.drain) {
      const deadline = Date.now() + options.graceMs;
      while (this.active.size > 0 && Date.now() < deadline) await this.wakeup.wait(100);
    } else {
      for (const { active } of this.active.values()) {
        await this.ctx.store.release(active.claim, { front: true }).catch(() => false);
      }
      this.active.clear();
    }
    await Promise.all(containers.map((c) => (options.drain ? c.proc.stop(2_000) : (c.proc.kill("stop"), c.proc.exited))));
  }

  async status(): Promise<FunctionStatus> {
    const { app, fn } = this.runtime;
    const [calls, spawned] = await Promise.all([
      this.ctx.store.stats(keys.queue(app, fn)),
      this.ctx.store.stats(keys.spawnQueue(app, fn)),
    ]);
    const containers: ContainerStatus[] = [...this.containers.values()].map((c) => ({
      id: c.id,
      pid: c.proc.pid ?? null,
      state: c.state,
      version: c.version,
      inFlight: c.assigned.size,
      startedAt: new Date(c.startedAt).toISOString(),
      coldStartMs: c.coldStartMs,
    }));
    return {
      name: fn,
      version: this.runtime.version,
      containers,
      queue: { pending: calls.pending, running: calls.claimed + spawned.claimed, spawnPending: spawned.pending },
      coldStarts: this.coldStarts,
      startFailures: this.startFailures,
      blocked: this.blocked,
      lastStartError: this.lastStartError,
    };
  }

  // ---- dispatch -----------------------------------------------------------------------------

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const rt = this.runtime;
      const slots = rt.spec.maxInputs;
      let free = 0;
      for (const c of this.containers.values()) {
        if (c.version === rt.version && c.state !== "draining") free += Math.max(0, slots - c.assigned.size);
      }
      const growth = free === 0 && this.mayGrow() ? slots : 0;
      if (free + growth === 0) {
        await this.wakeup.wait(1_000);
        continue;
      }
      const queues = [keys.queue(rt.app, rt.fn), keys.spawnQueue(rt.app, rt.fn)];
      if (this.preferSpawn) queues.reverse();
      this.preferSpawn = !this.preferSpawn;
      let claims: Claim[];
      try {
        claims = await this.ctx.store.claim(queues, {
          owner: this.ctx.agentId,
          leaseMs: this.ctx.leaseMs,
          max: free + growth,
          waitMs: CLAIM_WAIT_MS,
          signal: this.abort.signal,
        });
      } catch (error) {
        if (this.stopped) return;
        this.system(`claim failed: ${(error as Error).message}; retrying`);
        await this.wakeup.wait(1_000);
        continue;
      }
      for (const claim of claims) this.place(claim);
    }
  }

  private mayGrow(): boolean {
    const rt = this.runtime;
    const live = [...this.containers.values()].filter((c) => c.version === rt.version && c.state !== "draining").length;
    const cap = rt.spec.maxContainers ?? Number.POSITIVE_INFINITY;
    if (live >= cap) {
      this.blocked = `at maxContainers (${cap})`;
      return false;
    }
    if (Date.now() < this.startBlockedUntil) {
      this.blocked = `start backoff after ${this.failureStreak} failed starts: ${this.lastStartError ?? ""}`;
      return false;
    }
    const cpu = rt.spec.cpu.request;
    if (!this.ctx.capacity.canFit(cpu)) {
      const free = Math.max(0, this.ctx.capacity.total - this.ctx.capacity.inUse);
      this.blocked = `waiting for capacity: needs ${cpu} cpu, ${free.toFixed(3)} of ${this.ctx.capacity.total} free`;
      return false;
    }
    this.blocked = null;
    return true;
  }

  private place(claim: Claim): void {
    if (this.stopped) {
      void this.ctx.store.release(claim, { front: true });
      return;
    }
    const input = JSON.parse(claim.payload) as InputEnvelope;
    // Claims that lapsed (the agent holding them died) count as platform attempts.
    const lapses = claim.deliveries - input.attempt - input.platformAttempt;
    if (lapses > 0) {
      input.platformAttempt += lapses;
      input.lastPlatformError = "the agent running it stopped";
    }
    if (input.platformAttempt > PLATFORM_RETRIES) {
      void this.finish(claim, input, this.platformExhausted(input));
      return;
    }
    const rt = this.runtime;
    let target: Container | null = null;
    for (const c of this.containers.values()) {
      if (c.version !== rt.version || c.state === "draining" || c.assigned.size >= rt.spec.maxInputs) continue;
      if (target === null || (c.state === "ready" && target.state !== "ready")) target = c;
      if (target.state === "ready") break;
    }
    target ??= this.startContainer();
    if (target === null) {
      // No room after all (capacity taken meanwhile): give it back for later.
      void this.ctx.store.release(claim, { front: true });
      return;
    }
    void this.execute(target, claim, input);
  }

  private startContainer(): Container | null {
    const rt = this.runtime;
    const cpu = rt.spec.cpu.request;
    if (!this.ctx.capacity.reserve(cpu)) return null;
    const id = `ct-${randomUUID().slice(0, 8)}`;
    const scratch = join(this.ctx.scratchDir, id);
    const heapMiB = rt.spec.memory.limit === null ? null : Math.max(32, Math.floor(rt.spec.memory.limit * 0.75));
    const proc = new WorkerProcess({
      id,
      bundlePath: rt.bundlePath,
      exportName: rt.spec.handler.exportName,
      method: rt.spec.handler.method,
      app: rt.app,
      fn: rt.fn,
      env: { ...rt.spec.env, ...rt.spec.secrets, TMPDIR: scratch, KILN_SCRATCH: scratch },
      agentUrl: this.ctx.agentUrl,
      token: this.ctx.token,
      cwd: this.ctx.scratchDir,
      startupTimeoutMs: rt.spec.startupTimeout * 1000,
      execArgv: ["--enable-source-maps", ...(heapMiB === null ? [] : [`--max-old-space-size=${heapMiB}`])],
      onLog: (inputId, stream, text) =>
        this.ctx.logs.append({ app: rt.app, function: rt.fn, callId: inputId, containerId: id, stream, text }),
    });
    const container: Container = {
      id,
      proc,
      version: rt.version,
      cpu,
      state: "starting",
      assigned: new Map(),
      startedAt: Date.now(),
      idleSince: Date.now(),
      coldStartMs: null,
      scratch,
    };
    this.containers.set(id, container);
    void mkdir(scratch, { recursive: true });
    proc.ready().then(
      () => {
        container.coldStartMs = Date.now() - container.startedAt;
        this.coldStarts += 1;
        this.failureStreak = 0;
        if (container.state === "starting") container.state = "ready";
        this.system(`container ${id} ready in ${container.coldStartMs} ms`, id);
        this.wakeup.notify();
      },
      (error: Error) => {
        this.startFailures += 1;
        this.failureStreak += 1;
        this.lastStartError = error.message;
        this.startBlockedUntil = Date.now() + Math.min(MAX_START_BACKOFF_MS, 1000 * 2 ** (this.failureStreak - 1));
        this.system(`container ${id} failed to start: ${error.message}`, id);
      },
    );
    void proc.exited.then((exit) => {
      this.containers.delete(id);
      this.ctx.capacity.release(cpu);
      void rm(scratch, { recursive: true, force: true });
      if (!exit.killedFor || exit.killedFor === "timeout" || exit.killedFor === "cancel") {
        const how = exit.killedFor ? `killed (${exit.killedFor})` : `exited (${exit.signal ?? `code ${exit.code}`})`;
        this.system(`container ${id} ${how}`, id);
      }
      this.wakeup.notify();
    });
    return container;
  }

  private async execute(container: Container, claim: Claim, input: InputEnvelope): Promise<void> {
    const spec = this.runtime.spec;
    const active: Active = { claim, input, cancelled: false, timedOut: false };
    container.assigned.set(input.id, active);
    this.active.set(input.id, { container, active });
    let timer: NodeJS.Timeout | undefined;
    let yielded = false;
    let streamWrites: Promise<void> = Promise.resolve();
    let outcome: Outcome | "retry-platform" | "retry-user";
    let platformError = "";
    try {
      await container.proc.ready();
      if (active.cancelled) throw new WorkerExitedError({ code: null, signal: "SIGKILL", killedFor: "cancel" });
      await this.ctx.outcomes.markRunning(input);
      timer = setTimeout(() => {
        active.timedOut = true;
        container.proc.kill("timeout");
      }, spec.timeout * 1000);
      const run = await container.proc.run(input.id, input.args, input.kind === "stream" ? "stream" : "value", (value) => {
        yielded = true;
        streamWrites = streamWrites.then(() => this.ctx.outcomes.streamItem(input, value));
      });
      if (run.ok) outcome = { ok: true, value: run.value };
      else if (run.error.invalid) outcome = errorOutcome(new InvalidError(`${input.fn}: ${run.error.message}`));
      else outcome = this.userFailure(input, new RemoteError(run.error), yielded);
    } catch (error) {
      if (active.cancelled) {
        outcome = errorOutcome(new CancelledError(`call ${input.id} was cancelled`));
      } else if (active.timedOut) {
        outcome = this.userFailure(
          input,
          new FunctionTimeoutError(
            `${input.app}.${input.fn} ran past its timeout of ${spec.timeout} s; the worker was killed. Raise 'timeout' in the function spec if it needs longer.`,
            { details: { timeoutS: spec.timeout } },
          ),
          yielded,
        );
      } else if (error instanceof WorkerStartError && error.remote) {
        outcome = this.userFailure(
          input,
          new RemoteError({ ...error.remote, message: `while starting the container: ${error.remote.message}` }),
          false,
        );
      } else {
        platformError = error instanceof Error ? error.message : String(error);
        outcome = yielded ? errorOutcome(new RemoteError({ name: "WorkerExited", message: platformError })) : "retry-platform";
      }
    } finally {
      clearTimeout(timer);
      container.assigned.delete(input.id);
      this.active.delete(input.id);
      if (container.assigned.size === 0) {
        container.idleSince = Date.now();
        if (container.state === "draining") void container.proc.stop(5_000);
      }
      this.wakeup.notify();
    }
    await streamWrites;
    if (this.stopped && outcome === "retry-platform") return; // handed back by stop()
    if (outcome === "retry-platform") {
      const next: InputEnvelope = { ...input, platformAttempt: input.platformAttempt + 1, lastPlatformError: platformError };
      if (next.platformAttempt > PLATFORM_RETRIES) {
        await this.finish(claim, next, this.platformExhausted(next));
        return;
      }
      this.system(`input ${input.id}: ${platformError}; platform retry ${next.platformAttempt}/${PLATFORM_RETRIES}`);
      await this.ctx.store.release(claim, { front: true, payload: JSON.stringify(next) });
      return;
    }
    if (outcome === "retry-user") {
      const delayMs = retryDelayMs(spec.retries, input.attempt + 1);
      const next: InputEnvelope = { ...input, attempt: input.attempt + 1 };
      await this.ctx.store.release(claim, { front: false, delayMs, payload: JSON.stringify(next) });
      return;
    }
    await this.finish(claim, input, outcome);
  }

  /** A failure that is the handler's: retried per the function's `retries`, else final. */
  private userFailure(input: InputEnvelope, error: KilnError, yielded: boolean): Outcome | "retry-user" {
    if (!yielded && input.attempt < this.runtime.spec.retries.maxRetries) return "retry-user";
    return errorOutcome(error);
  }

  private platformExhausted(input: InputEnvelope): Outcome {
    return errorOutcome(
      new RemoteError({
        name: "WorkerCrashed",
        message:
          `the input failed ${input.platformAttempt} times for reasons outside the handler's control ` +
          `(last: ${input.lastPlatformError ?? "unknown"}). If the handler exits the process or crashes natively, fix that; ` +
          "otherwise check the host.",
      }),
    );
  }

  private async finish(claim: Claim, input: InputEnvelope, outcome: Outcome): Promise<void> {
    try {
      await this.ctx.outcomes.deliver(input, outcome);
      const held = await this.ctx.store.complete(claim);
      const cancelled = !outcome.ok && outcome.error.code === "CANCELLED";
      if (!held && !cancelled) this.system(`input ${input.id} finished after its lease lapsed; the first stored result stands`);
    } catch (error) {
      this.system(`could not store the outcome of ${input.id}: ${(error as Error).message}; it will be retried`);
      await this.ctx.store.release(claim, { front: true }).catch(() => false);
    }
  }

  private async heartbeat(): Promise<void> {
    if (this.active.size === 0) return;
    const held = [...this.active.values()];
    try {
      const alive = await this.ctx.store.renew(
        held.map((h) => h.active.claim),
        this.ctx.leaseMs,
      );
      alive.forEach((ok, i) => {
        if (!ok) this.system(`lost the lease on input ${held[i]?.active.input.id}; another delivery may run it`);
      });
    } catch (error) {
      this.system(`lease renewal failed: ${(error as Error).message}`);
    }
  }

  // ---- container lifecycle ----------------------------------------------------------------

  private maintain(): void {
    if (this.stopped) return;
    const rt = this.runtime;
    const now = Date.now();
    const current = [...this.containers.values()].filter((c) => c.version === rt.version && c.state !== "draining");
    let live = current.length;
    for (const c of current) {
      const idleMs = now - c.idleSince;
      if (c.state === "ready" && c.assigned.size === 0 && idleMs >= rt.spec.scaledownWindow * 1000 && live > rt.spec.minContainers) {
        live -= 1;
        this.stopContainer(c, "idle");
      }
    }
    while (live < rt.spec.minContainers && this.mayGrow()) {
      if (this.startContainer() === null) break;
      live += 1;
    }
  }

  /** Stop one idle container for another pool's sake. */
  private evictIdle(): boolean {
    const rt = this.runtime;
    const idle = [...this.containers.values()]
      .filter((c) => c.state === "ready" && c.assigned.size === 0)
      .sort((a, b) => a.idleSince - b.idleSince);
    const live = [...this.containers.values()].filter((c) => c.state !== "draining").length;
    const victim = idle[0];
    if (!victim || live <= rt.spec.minContainers) return false;
    this.stopContainer(victim, "evicted for capacity");
    return true;
  }

  private drain(container: Container): void {
    container.state = "draining";
    if (container.assigned.size === 0) void container.proc.stop(5_000);
  }

  private stopContainer(container: Container, why: string): void {
    container.state = "draining";
    this.system(`stopping container ${container.id} (${why})`, container.id);
    void container.proc.stop(5_000);
  }

  private system(text: string, containerId = "-"): void {
    this.ctx.logs.append({
      app: this.runtime.app,
      function: this.runtime.fn,
      callId: null,
      containerId,
      stream: "system",
      text: `${text}\n`,
    });
  }
}

function errorOutcome(error: KilnError): Outcome {
  return { ok: false, error: toWire(error) };
}
