/**
 * A function's pool of containers on this host, and the loop that feeds them.
 *
 * Two loops:
 * - Dispatch claims only what it can place: free slots of ready or starting containers of the
 *   current version, plus one more container's slots when the pool may grow (the cold-start fast
 *   path: an input that finds no room starts a container at once). A slot holds one input, or
 *   one batch for a `batched` function: the batch is claimed until it reaches `maxBatchSize` or
 *   its oldest input has waited `waitMs`.
 * - The scaling tick (every second) observes the load (queued + in flight), asks the
 *   {@link Autoscaler} for the desired size, starts containers up to it (buffer, target
 *   concurrency) and stops idle ones above it. Stopped containers drain: they take nothing new
 *   and finish what they hold.
 *
 * Failures are kept apart:
 * - the handler threw or ran past `timeout` → the function's `retries` (with backoff), then the
 *   caller gets RemoteError / FunctionTimeoutError;
 * - the worker died for another reason, or the agent holding the input died → platform retry
 *   (up to PLATFORM_RETRIES, at the front of the queue), then an error that says so.
 * A new version (code or resources changed) drains the old containers.
 */
import { randomUUID } from "node:crypto";
import {
  CancelledError,
  FunctionTimeoutError,
  InvalidError,
  RemoteError,
  toWire,
  type KilnError,
} from "../errors.js";
import {
  WorkerExitedError,
  WorkerProcess,
  WorkerStartError,
  type BatchOutcome,
  type RunOutcome,
} from "../containers/worker-process.js";
import type { Sandbox, SandboxHost } from "../containers/sandbox.js";
import type { OomVerdict } from "../containers/oom.js";
import type { ContainerStatus, FunctionStatus, Outcome } from "../protocol.js";
import {
  PLATFORM_RETRIES,
  retryDelayMs,
  type CompiledFunctionSpec,
  type Maxima,
} from "../spec/index.js";
import type { Claim, Store } from "../store/store.js";
import { Autoscaler, type ScalingDecision, type ScalingSettings } from "./autoscaler.js";
import type { HostCapacity, Need } from "./capacity.js";
import { keys, type InputEnvelope } from "./inputs.js";
import type { LogBook } from "./logs.js";
import type { OutcomeWriter } from "./outcomes.js";
import { Wakeup } from "./wakeup.js";

/** Consecutive start failures back off 1 s, 2 s, 4 s ... up to this. */
const MAX_START_BACKOFF_MS = 30_000;
const CLAIM_WAIT_MS = 2_000;
const SCALING_TICK_MS = 1_000;
/**
 * A claim is trusted as still this agent's for this share of its lease, counted from before the
 * claim (or renewal) was asked for: the store started the lease later than that, and the slack
 * covers clocks that run at slightly different rates. Within it, a waiting caller on this agent
 * is handed its outcome before the store step that settles it returns (see OutcomeWriter.settle).
 */
const TRUSTED_LEASE_SHARE = 0.75;

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
  /** cgroups, GPUs and scratch disks of this host: each container gets a sandbox. */
  sandboxes: SandboxHost;
  scratchDir: string;
  leaseMs: number;
  /** What this host can give one container: a function asking more runs on other hosts. */
  maxima: Maxima;
}

/** One slot's work: a single input, or a batch of inputs for a batched function. */
interface Work {
  id: string;
  claims: Claim[];
  inputs: InputEnvelope[];
  batch: boolean;
  cancelled: boolean;
  timedOut: boolean;
  /**
   * Until when (performance.now()) its claims are surely still held: the start of the claim or
   * of the last renewal that confirmed them, plus the trusted share of the lease. -Infinity once
   * a renewal found one taken.
   */
  trustedUntil: number;
}

interface Container {
  id: string;
  /**
   * The cluster-wide slot it holds (`slot:<app>:<fn>:<i>`, a lock renewed by the heartbeat), or
   * null when the function has no cap and the container is not one of the warm minimum.
   */
  slot: number | null;
  proc: WorkerProcess;
  /** Its cgroup, GPUs and scratch disk; released when the process exits. */
  sandbox: Sandbox;
  /** Resolves once the process exited and its sandbox was released. */
  gone: Promise<void>;
  version: string;
  cpu: number;
  state: "starting" | "ready" | "draining";
  work: Map<string, Work>;
  startedAt: number;
  idleSince: number;
  coldStartMs: number | null;
}

/** How one input of a finished piece of work came out. */
type Settlement =
  | { kind: "outcome"; outcome: Outcome }
  | { kind: "user-failure"; error: KilnError; noRetry?: boolean }
  | { kind: "platform-failure"; message: string };

export class FunctionPool {
  private runtime: FunctionRuntime;
  private readonly containers = new Map<string, Container>();
  /** Input id -> the container and work holding it (for cancel and lease renewal). */
  private readonly holding = new Map<string, { container: Container; work: Work }>();
  private readonly wakeup = new Wakeup();
  private readonly abort = new AbortController();
  private readonly scaler: Autoscaler;
  private stopped = false;
  private loopDone: Promise<void> = Promise.resolve();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly unregisterCapacity: () => void;
  private readonly unregisterGpus: () => void;
  private preferSpawn = false;
  private coldStarts = 0;
  private startFailures = 0;
  private failureStreak = 0;
  private startBlockedUntil = 0;
  private lastStartError: string | null = null;
  private blocked: string | null = null;
  /** Every cluster-wide slot was taken at the last try: do not try again before this. */
  private slotsFullUntil = 0;
  private lastDecision: (ScalingDecision & { at: string }) | null = null;
  private ticking = false;
  /** Most inputs held at once since the last tick: work that starts and ends between ticks still counts. */
  private inFlightPeak = 0;
  /** When the pool last went from holding inputs to holding none (that is when the idle window starts). */
  private idleSince: number | null = null;
  /** A scaling decision right when the idle window ends, rather than up to a tick later. */
  private windowEnd: NodeJS.Timeout | null = null;

  constructor(
    private readonly ctx: PoolContext,
    runtime: FunctionRuntime,
  ) {
    this.runtime = runtime;
    this.scaler = new Autoscaler(scalingSettings(runtime.spec));
    this.unregisterCapacity = ctx.capacity.register(
      (need) => this.evictIdle(need),
      () => this.wakeup.notify(),
    );
    this.unregisterGpus = ctx.sandboxes.gpus.onRelease(() => this.wakeup.notify());
  }

  get name(): string {
    return this.runtime.fn;
  }

  start(): void {
    this.loopDone = this.loop().catch((error: unknown) => {
      this.system(`dispatch loop failed: ${(error as Error).stack ?? String(error)}`);
    });
    const tick = setInterval(() => void this.tick(), SCALING_TICK_MS);
    const heartbeat = setInterval(
      () => void this.heartbeat(),
      Math.max(100, Math.floor(this.ctx.leaseMs / 3)),
    );
    tick.unref();
    heartbeat.unref();
    this.timers.push(tick, heartbeat);
    void this.tick();
  }

  /** A new deployment of the function: scaling-only changes apply in place, others drain the old containers. */
  update(runtime: FunctionRuntime): void {
    const versionChanged = runtime.version !== this.runtime.version;
    this.runtime = runtime;
    this.scaler.update(scalingSettings(runtime.spec));
    if (versionChanged) {
      for (const container of this.containers.values()) {
        if (container.version !== runtime.version) this.drain(container, "new version deployed");
      }
    }
    this.wakeup.notify();
    void this.tick();
  }

  /** Kill the work of an input this pool holds. Returns whether it held it. */
  cancel(inputId: string): boolean {
    const held = this.holding.get(inputId);
    if (!held) return false;
    held.work.cancelled = true;
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
    if (this.windowEnd) clearTimeout(this.windowEnd);
    this.unregisterCapacity();
    this.unregisterGpus();
    await this.loopDone;
    if (options.drain) {
      const deadline = Date.now() + options.graceMs;
      while (this.holding.size > 0 && Date.now() < deadline) await this.wakeup.wait(100);
    }
    // Whatever is still held goes back to the queue, for another container or agent.
    const works = new Set([...this.holding.values()].map((h) => h.work));
    this.holding.clear();
    for (const work of works) {
      await Promise.all(
        work.claims.map((claim, i) => this.handBack(claim, work.inputs[i] as InputEnvelope)),
      );
    }
    const containers = [...this.containers.values()];
    await Promise.all(
      containers.map((c) =>
        options.drain && c.work.size === 0
          ? c.proc.stop(2_000)
          : (c.proc.kill("stop"), c.proc.exited),
      ),
    );
    // Their cgroups, GPUs and scratch disks are released before the pool counts as stopped.
    await Promise.all(containers.map((c) => c.gone));
  }

  /** This host's share of the function, for the cluster view. */
  hostShare(): { containers: number; busy: number; inFlight: number } {
    const live = this.live();
    return {
      containers: live.length,
      busy: live.filter((c) => c.work.size > 0).length,
      inFlight: this.holding.size,
    };
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
      inFlight: [...c.work.values()].reduce((n, w) => n + w.inputs.length, 0),
      startedAt: new Date(c.startedAt).toISOString(),
      coldStartMs: c.coldStartMs,
    }));
    const current = containers.filter((c) => c.state !== "draining");
    return {
      name: fn,
      version: this.runtime.version,
      containers,
      scaling: {
        desired: this.lastDecision?.desired ?? 0,
        starting: current.filter((c) => c.state === "starting").length,
        busy: current.filter((c) => c.state === "ready" && c.inFlight > 0).length,
        idle: current.filter((c) => c.state === "ready" && c.inFlight === 0).length,
        draining: containers.length - current.length,
        panic: this.lastDecision?.panic ?? false,
        lastDecision: this.lastDecision
          ? {
              at: this.lastDecision.at,
              desired: this.lastDecision.desired,
              reason: this.lastDecision.reason,
            }
          : null,
      },
      queue: {
        pending: calls.pending,
        running: calls.claimed + spawned.claimed,
        spawnPending: spawned.pending,
      },
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
        if (c.version === rt.version && c.state !== "draining")
          free += Math.max(0, slots - c.work.size);
      }
      const growth = free === 0 && this.mayGrow() ? slots : 0;
      if (free + growth === 0) {
        await this.wakeup.wait(1_000);
        continue;
      }
      try {
        // Before the claim is asked for: the store starts each lease later than this.
        const askedAt = performance.now();
        if (rt.spec.batched) {
          const claims = await this.claimBatch(
            rt.spec.batched.maxBatchSize,
            rt.spec.batched.waitMs,
          );
          if (claims.length > 0) await this.place(claims, true, askedAt);
        } else {
          const claims = await this.claim(free + growth, CLAIM_WAIT_MS);
          for (const claim of claims) await this.place([claim], false, askedAt);
        }
      } catch (error) {
        if (this.stopped) return;
        this.system(`claim failed: ${(error as Error).message}; retrying`);
        await this.wakeup.wait(1_000);
      }
    }
  }

  private claim(max: number, waitMs: number): Promise<Claim[]> {
    const rt = this.runtime;
    const queues = [keys.queue(rt.app, rt.fn), keys.spawnQueue(rt.app, rt.fn)];
    if (this.preferSpawn) queues.reverse();
    this.preferSpawn = !this.preferSpawn;
    return this.ctx.store.claim(queues, {
      owner: this.ctx.agentId,
      leaseMs: this.ctx.leaseMs,
      max,
      waitMs,
      signal: this.abort.signal,
      // A waiting caller's input may start before the store has recorded it, when a container is
      // ready to take it at once (place() picks that one). A batch waits for company anyway.
      eager: rt.spec.batched ? undefined : () => this.readyRoom(),
    });
  }

  /** One batch: until `maxBatchSize` inputs, or until the oldest has waited `waitMs`. */
  private async claimBatch(maxBatchSize: number, waitMs: number): Promise<Claim[]> {
    const claims = await this.claim(maxBatchSize, CLAIM_WAIT_MS);
    if (claims.length === 0) return claims;
    const oldest = Math.min(
      ...claims.map((c) => (JSON.parse(c.payload) as InputEnvelope).createdAt),
    );
    const deadline = oldest + waitMs;
    while (claims.length < maxBatchSize && !this.stopped) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      claims.push(...(await this.claim(maxBatchSize - claims.length, left)));
    }
    return claims;
  }

  private mayGrow(): boolean {
    const rt = this.runtime;
    const live = this.live().length;
    const cap = rt.spec.maxContainers ?? Number.POSITIVE_INFINITY;
    if (live >= cap) {
      this.blocked = `at maxContainers (${cap})`;
      return false;
    }
    if (Date.now() < this.slotsFullUntil) {
      this.blocked = `at maxContainers (${cap}) across the cluster`;
      return false;
    }
    if (Date.now() < this.startBlockedUntil) {
      this.blocked = `start backoff after ${this.failureStreak} failed starts: ${this.lastStartError ?? ""}`;
      return false;
    }
    const cpu = rt.spec.cpu.request;
    const tooBig = this.tooBigForHost();
    if (tooBig !== null) {
      this.blocked = `too big for this host (${tooBig}): hosts that fit it run its inputs`;
      return false;
    }
    if (!this.ctx.capacity.canFit(cpu)) {
      const free = Math.max(0, this.ctx.capacity.total - this.ctx.capacity.inUse);
      this.blocked = `waiting for capacity: needs ${cpu} cpu, ${free.toFixed(3)} of ${this.ctx.capacity.total} free`;
      return false;
    }
    const gpuWait = this.ctx.sandboxes.check(rt.spec);
    if (gpuWait !== null) {
      // Idle containers elsewhere may be sitting on the devices: stop them, their GPUs come back.
      this.ctx.capacity.relieve("gpu");
      this.blocked = gpuWait;
      return false;
    }
    this.blocked = null;
    return true;
  }

  /** What the function asks for one container beyond this host's maxima, or null when it fits. */
  private tooBigForHost(): string | null {
    const { cpu, memory } = this.runtime.spec;
    const { maxima, capacity } = this.ctx;
    const cores = Math.min(maxima.cpu ?? Number.POSITIVE_INFINITY, capacity.total);
    const over = [
      cpu.request > cores ? `needs ${cpu.request} cores, it has ${cores}` : null,
      maxima.memoryMiB !== undefined && memory.request > maxima.memoryMiB
        ? `needs ${memory.request} MiB, it has ${maxima.memoryMiB}`
        : null,
    ].filter((reason): reason is string => reason !== null);
    return over.length === 0 ? null : over.join("; ");
  }

  /** Whether a ready container of the current version has a free slot. */
  private readyRoom(): boolean {
    const { version, spec } = this.runtime;
    for (const c of this.containers.values()) {
      if (c.version === version && c.state === "ready" && c.work.size < spec.maxInputs) return true;
    }
    return false;
  }

  /** Containers of the current version that take work (starting or ready). */
  private live(): Container[] {
    const version = this.runtime.version;
    return [...this.containers.values()].filter(
      (c) => c.version === version && c.state !== "draining",
    );
  }

  private async place(claims: Claim[], batch: boolean, askedAt: number): Promise<void> {
    if (this.stopped) {
      for (const claim of claims)
        void this.handBack(claim, JSON.parse(claim.payload) as InputEnvelope);
      return;
    }
    const work: Work = {
      id: `w-${randomUUID().slice(0, 8)}`,
      claims: [],
      inputs: [],
      batch,
      cancelled: false,
      timedOut: false,
      trustedUntil: this.trustedFrom(askedAt),
    };
    for (const claim of claims) {
      const input = JSON.parse(claim.payload) as InputEnvelope;
      // Claims that lapsed (the agent holding them died) count as platform attempts; claims
      // handed back unrun do not.
      const lapses =
        claim.deliveries - input.attempt - input.platformAttempt - (input.returned ?? 0);
      if (lapses > 0) {
        input.platformAttempt += lapses;
        input.lastPlatformError = "the agent running it stopped";
      }
      if (input.platformAttempt > PLATFORM_RETRIES) {
        void this.recorded(claim, input).then(async (ok) => {
          if (ok) await this.finish(claim, input, platformExhausted(input), false);
        });
      } else {
        work.claims.push(claim);
        work.inputs.push(input);
      }
    }
    if (work.inputs.length === 0) return;
    const rt = this.runtime;
    let target: Container | null = null;
    for (const c of this.live()) {
      if (c.work.size >= rt.spec.maxInputs) continue;
      if (target === null || (c.state === "ready" && target.state !== "ready")) target = c;
      if (target.state === "ready") break;
    }
    target ??= await this.startContainer("an input found no free container");
    if (target === null) {
      // No room after all (capacity taken meanwhile): give them back for later.
      work.claims.forEach((claim, i) => void this.handBack(claim, work.inputs[i] as InputEnvelope));
      return;
    }
    void this.execute(target, work).catch((error: unknown) => {
      // The store failed while settling (unreachable): the claims lapse and are recovered, so the
      // inputs run again elsewhere or later. Nothing to do here but say so.
      this.system(
        `could not settle ${work.inputs.map((i) => i.id).join(", ")}: ${(error as Error).message}; they will be retried`,
      );
    });
  }

  /**
   * Start a container if a slot and the host's capacity allow. `preset`: the id and warm-minimum
   * slot the caller already acquired, instead of looking for one.
   */
  private async startContainer(
    why: string,
    preset: { id: string; slot: number } | null = null,
  ): Promise<Container | null> {
    const rt = this.runtime;
    const cpu = rt.spec.cpu.request;
    const id = preset?.id ?? `ct-${randomUUID().slice(0, 8)}`;
    const slot = preset ? preset.slot : await this.acquireSlot(id);
    if (slot === undefined) return null;
    if (!this.ctx.capacity.reserve(cpu)) {
      if (slot !== null) await this.releaseSlot(slot, id);
      return null;
    }
    const reservation = this.ctx.sandboxes.reserve({
      containerId: id,
      app: rt.app,
      fn: rt.fn,
      spec: rt.spec,
    });
    if (!reservation.ok) {
      this.ctx.capacity.release(cpu);
      if (slot !== null) await this.releaseSlot(slot, id);
      this.blocked = reservation.message;
      return null;
    }
    const sandbox = reservation.sandbox;
    const heapMiB =
      rt.spec.memory.limit === null ? null : Math.max(32, Math.floor(rt.spec.memory.limit * 0.75));
    const proc = new WorkerProcess({
      id,
      bundlePath: rt.bundlePath,
      exportName: rt.spec.handler.exportName,
      method: rt.spec.handler.method,
      app: rt.app,
      fn: rt.fn,
      env: { ...rt.spec.env, ...rt.spec.secrets, ...sandbox.env },
      sandbox,
      agentUrl: this.ctx.agentUrl,
      token: this.ctx.token,
      cwd: this.ctx.scratchDir,
      startupTimeoutMs: rt.spec.startupTimeout * 1000,
      execArgv: [
        "--enable-source-maps",
        ...(heapMiB === null ? [] : [`--max-old-space-size=${heapMiB}`]),
      ],
      onLog: (inputId, stream, text) =>
        this.ctx.logs.append({
          app: rt.app,
          function: rt.fn,
          callId: inputId,
          containerId: id,
          stream,
          text,
        }),
    });
    const container: Container = {
      id,
      slot,
      proc,
      sandbox,
      gone: Promise.resolve(),
      version: rt.version,
      cpu,
      state: "starting",
      work: new Map(),
      startedAt: Date.now(),
      idleSince: Date.now(),
      coldStartMs: null,
    };
    this.containers.set(id, container);
    this.system(
      `starting container ${id} (${why})${sandbox.gpus.length > 0 ? ` with GPUs ${sandbox.gpus.map((g) => g.uuid).join(", ")}` : ""}`,
      id,
    );
    sandbox.onOom((event) =>
      this.system(
        `container ${id} was OOM-killed (${event.cause}) at its ${event.limitMiB ?? "?"} MiB limit`,
        id,
      ),
    );
    proc.ready().then(
      () => {
        container.coldStartMs = Date.now() - container.startedAt;
        this.coldStarts += 1;
        this.failureStreak = 0;
        if (container.state === "starting") container.state = "ready";
        container.idleSince = Date.now();
        this.system(`container ${id} ready in ${container.coldStartMs} ms`, id);
        this.wakeup.notify();
      },
      async (error: Error) => {
        // Killed on purpose while starting (its input was cancelled or timed out, the agent is
        // stopping): not a failed start, so no start backoff for the next input.
        const exit = await proc.exited;
        if (
          exit.killedFor === "cancel" ||
          exit.killedFor === "timeout" ||
          exit.killedFor === "stop"
        )
          return;
        this.startFailures += 1;
        this.failureStreak += 1;
        this.lastStartError = error.message;
        this.startBlockedUntil =
          Date.now() + Math.min(MAX_START_BACKOFF_MS, 1000 * 2 ** (this.failureStreak - 1));
        this.system(`container ${id} failed to start: ${error.message}`, id);
      },
    );
    container.gone = proc.exited.then(async (exit) => {
      this.containers.delete(id);
      this.ctx.capacity.release(cpu);
      if (slot !== null) void this.releaseSlot(slot, id);
      const released = sandbox.release().then((problems) => {
        for (const problem of problems) this.system(`cleaning up container ${id}: ${problem}`, id);
      });
      if (!exit.killedFor || exit.killedFor === "timeout" || exit.killedFor === "cancel") {
        const how = exit.killedFor
          ? `killed (${exit.killedFor})`
          : `exited (${exit.signal ?? `code ${exit.code}`})`;
        this.system(`container ${id} ${how}`, id);
      }
      this.wakeup.notify();
      await released;
    });
    return container;
  }

  private async execute(container: Container, work: Work): Promise<void> {
    const spec = this.runtime.spec;
    container.work.set(work.id, work);
    for (const input of work.inputs) this.holding.set(input.id, { container, work });
    this.inFlightPeak = Math.max(this.inFlightPeak, this.holding.size);
    let timer: NodeJS.Timeout | undefined;
    let yielded = false;
    let streamWrites: Promise<void> = Promise.resolve();
    let settlements: Settlement[];
    try {
      await container.proc.ready();
      if (work.cancelled)
        throw new WorkerExitedError({ code: null, signal: "SIGKILL", killedFor: "cancel" });
      await Promise.all(work.inputs.map((input) => this.ctx.outcomes.markRunning(input)));
      timer = setTimeout(() => {
        work.timedOut = true;
        container.proc.kill("timeout");
      }, spec.timeout * 1000);
      if (work.batch) {
        const outcome = await container.proc.runBatch(
          work.id,
          work.inputs.map((input) => input.args),
        );
        settlements = settleBatch(outcome, work.inputs.length);
      } else {
        const input = work.inputs[0] as InputEnvelope;
        const run = await container.proc.run(
          input.id,
          input.args,
          input.kind === "stream" ? "stream" : "value",
          (value) => {
            yielded = true;
            streamWrites = streamWrites.then(() => this.ctx.outcomes.streamItem(input, value));
          },
        );
        settlements = [settleRun(run, input)];
      }
    } catch (error) {
      // A worker killed at its memory limit is the handler's failure, with the limit named.
      let oom: OomVerdict = { oom: false };
      if (
        !work.cancelled &&
        !work.timedOut &&
        (error instanceof WorkerExitedError || error instanceof WorkerStartError)
      ) {
        const exit = error instanceof WorkerExitedError ? error.exit : await container.proc.exited;
        oom = await container.sandbox.classifyExit(exit);
      }
      settlements = work.inputs.map(() =>
        oom.oom
          ? { kind: "user-failure" as const, error: container.sandbox.oomError(oom) }
          : this.settleFailure(work, error),
      );
    } finally {
      clearTimeout(timer);
      container.work.delete(work.id);
      for (const input of work.inputs) this.holding.delete(input.id);
      if (this.holding.size === 0) {
        this.idleSince = Date.now();
        this.tickWhenWindowEnds();
      }
      if (container.work.size === 0) {
        container.idleSince = Date.now();
        if (container.state === "draining") void container.proc.stop(5_000);
      }
      this.wakeup.notify();
    }
    await streamWrites;
    await Promise.all(
      work.inputs.map((input, i) => {
        const claim = work.claims[i] as Claim;
        // A stream that already yielded is not retried: its caller saw part of it.
        const settlement = yielded
          ? noRetry(settlements[i] as Settlement)
          : (settlements[i] as Settlement);
        return this.conclude(claim, input, settlement, work);
      }),
    );
  }

  /** Until when a lease asked for (or renewed) at `askedAt` is surely still held. */
  private trustedFrom(askedAt: number): number {
    return askedAt + this.ctx.leaseMs * TRUSTED_LEASE_SHARE;
  }

  /** Why the work ended when the worker did not answer: cancel, timeout, start failure or crash. */
  private settleFailure(work: Work, error: unknown): Settlement {
    const spec = this.runtime.spec;
    if (work.cancelled) {
      return {
        kind: "outcome",
        outcome: errorOutcome(new CancelledError("the call was cancelled")),
      };
    }
    if (work.timedOut) {
      return {
        kind: "user-failure",
        error: new FunctionTimeoutError(
          `${this.runtime.app}.${this.runtime.fn} ran past its timeout of ${spec.timeout} s; the worker was killed. ` +
            "Raise 'timeout' in the function spec if it needs longer.",
          { details: { timeoutS: spec.timeout } },
        ),
      };
    }
    if (error instanceof WorkerStartError && error.remote) {
      return {
        kind: "user-failure",
        error: new RemoteError({
          ...error.remote,
          message: `while starting the container: ${error.remote.message}`,
        }),
      };
    }
    return {
      kind: "platform-failure",
      message: error instanceof Error ? error.message : String(error),
    };
  }

  /** Apply a settlement: deliver, or retry (user retries with backoff, platform retries at the front). */
  private async conclude(
    claim: Claim,
    input: InputEnvelope,
    settlement: Settlement,
    work: Work,
  ): Promise<void> {
    if (this.stopped && settlement.kind === "platform-failure") return; // handed back by stop()
    if (!(await this.recorded(claim, input))) return;
    const held = performance.now() < work.trustedUntil;
    if (settlement.kind === "outcome") return this.finish(claim, input, settlement.outcome, held);
    if (settlement.kind === "user-failure") {
      if (!settlement.noRetry && input.attempt < this.runtime.spec.retries.maxRetries) {
        const delayMs = retryDelayMs(this.runtime.spec.retries, input.attempt + 1);
        const next: InputEnvelope = { ...input, attempt: input.attempt + 1 };
        await this.ctx.store.release(claim, {
          front: false,
          delayMs,
          payload: JSON.stringify(next),
        });
        return;
      }
      return this.finish(claim, input, errorOutcome(settlement.error), held);
    }
    const next: InputEnvelope = {
      ...input,
      platformAttempt: input.platformAttempt + 1,
      lastPlatformError: settlement.message,
    };
    if (next.platformAttempt > PLATFORM_RETRIES)
      return this.finish(claim, next, platformExhausted(next), held);
    this.system(
      `input ${input.id}: ${settlement.message}; platform retry ${next.platformAttempt}/${PLATFORM_RETRIES}`,
    );
    await this.ctx.store.release(claim, { front: true, payload: JSON.stringify(next) });
  }

  /** `held`: the claim is surely still this agent's (its waiting caller may have the outcome at once). */
  private async finish(
    claim: Claim,
    input: InputEnvelope,
    outcome: Outcome,
    held: boolean,
  ): Promise<void> {
    try {
      const settled = await this.ctx.outcomes.settle(claim, input, outcome, { held });
      const cancelled = !outcome.ok && outcome.error.code === "CANCELLED";
      if (settled === "stale" && !cancelled) {
        this.system(
          `input ${input.id} finished after its claim was taken (lease lapsed, or cancelled); its result was dropped`,
        );
      }
    } catch (error) {
      this.system(
        `could not store the outcome of ${input.id}: ${(error as Error).message}; it will be retried`,
      );
      await this.ctx.store.release(claim, { front: true }).catch(() => false);
    }
  }

  /**
   * Whether an eager hand-over's claim is recorded (at once for any other claim). When it could
   * not be, the caller was told so (the enqueue failed) or the queued copy runs: this run's
   * outcome is dropped.
   */
  private async recorded(claim: Claim, input: InputEnvelope): Promise<boolean> {
    if (!claim.recorded) return true;
    try {
      await claim.recorded;
      return true;
    } catch (error) {
      this.system(
        `input ${input.id} was started before the store recorded it, and the store could not: ${(error as Error).message}; its outcome is dropped`,
      );
      return false;
    }
  }

  /** Give a claimed input back to the front of its queue, unrun: not a failure. */
  private async handBack(claim: Claim, input: InputEnvelope): Promise<void> {
    if (!(await this.recorded(claim, input))) return;
    const next: InputEnvelope = { ...input, returned: (input.returned ?? 0) + 1 };
    await this.ctx.store
      .release(claim, { front: true, payload: JSON.stringify(next) })
      .catch(() => false);
  }

  private async heartbeat(): Promise<void> {
    await this.renewSlots();
    if (this.holding.size === 0) return;
    // Eager hand-overs not yet recorded have no fence to renew: their lease starts when they are.
    const held = [...this.holding.entries()].filter(([id, h]) => !claimOf(h.work, id).recorded);
    if (held.length === 0) return;
    try {
      const claims = held.map(([id, h]) => claimOf(h.work, id));
      const askedAt = performance.now();
      const alive = await this.ctx.store.renew(claims, this.ctx.leaseMs);
      const renewed = new Set<Work>();
      const lost = new Set<Work>();
      alive.forEach((ok, i) => {
        const [id, h] = held[i] ?? [];
        if (!h) return;
        (ok ? renewed : lost).add(h.work);
        if (!ok) this.system(`lost the lease on input ${id}; another delivery may run it`);
      });
      for (const work of renewed)
        if (!lost.has(work))
          work.trustedUntil = Math.max(work.trustedUntil, this.trustedFrom(askedAt));
      for (const work of lost) work.trustedUntil = Number.NEGATIVE_INFINITY;
    } catch (error) {
      this.system(`lease renewal failed: ${(error as Error).message}`);
    }
  }

  // ---- cluster-wide slots -------------------------------------------------------------------

  private slotKey(i: number): string {
    return `slot:${this.runtime.app}:${this.runtime.fn}:${i}`;
  }

  private slotOwner(containerId: string): string {
    return `${this.ctx.agentId}/${containerId}`;
  }

  /**
   * A free slot for a new container: any of [0, maxContainers) when the function is capped
   * (so the cap holds across every agent on the store), none needed otherwise. `undefined`:
   * every slot is taken, by this agent or another.
   */
  private async acquireSlot(containerId: string): Promise<number | null | undefined> {
    const max = this.runtime.spec.maxContainers;
    if (max === null) return null;
    const taken = new Set([...this.containers.values()].map((c) => c.slot));
    for (let i = 0; i < max; i++) {
      if (taken.has(i)) continue;
      if (
        (await this.ctx.store.lock(
          this.slotKey(i),
          this.slotOwner(containerId),
          this.slotTtlMs(),
        )) !== null
      )
        return i;
    }
    this.blocked = `at maxContainers (${max}) across the cluster`;
    this.slotsFullUntil = Date.now() + 1_000;
    return undefined;
  }

  private async releaseSlot(slot: number, containerId: string): Promise<void> {
    await this.ctx.store.unlock(this.slotKey(slot), this.slotOwner(containerId)).catch(() => false);
  }

  private slotTtlMs(): number {
    return Math.max(3_000, this.ctx.leaseMs);
  }

  /** Renew the slots this agent's containers hold; a container whose slot was lost is drained. */
  private async renewSlots(): Promise<void> {
    for (const c of [...this.containers.values()]) {
      if (c.slot === null || c.state === "draining") continue;
      const token = await this.ctx.store
        .lock(this.slotKey(c.slot), this.slotOwner(c.id), this.slotTtlMs())
        .catch(() => 0);
      if (token === null)
        this.drain(c, `lost slot ${c.slot} (this agent was unreachable past the slot's lease)`);
    }
  }

  /**
   * `minContainers` holds across the cluster: slots [0, minContainers) are the warm minimum,
   * and an agent keeps a warm container only while it holds one. Returns how many it holds.
   */
  private async claimMinSlots(): Promise<number> {
    const min = this.runtime.spec.minContainers;
    const live = this.live();
    const held = new Set(live.flatMap((c) => (c.slot !== null && c.slot < min ? [c.slot] : [])));
    for (let i = 0; i < min && !this.stopped; i++) {
      if (held.has(i) || !this.mayGrow()) continue;
      const id = `ct-${randomUUID().slice(0, 8)}`;
      if (
        (await this.ctx.store.lock(this.slotKey(i), this.slotOwner(id), this.slotTtlMs())) === null
      )
        continue;
      const started = await this.startContainer(`warm minimum (slot ${i})`, { id, slot: i });
      if (started) held.add(i);
    }
    return held.size;
  }

  // ---- scaling ------------------------------------------------------------------------------

  /** Observe the load, decide the size, start or stop containers to match. */
  private async tick(): Promise<void> {
    if (this.stopped || this.ticking) return;
    this.ticking = true;
    try {
      const rt = this.runtime;
      const [calls, spawned] = await Promise.all([
        this.ctx.store.stats(keys.queue(rt.app, rt.fn)),
        this.ctx.store.stats(keys.spawnQueue(rt.app, rt.fn)),
      ]);
      if (this.stopped) return;
      const queued = calls.pending - calls.delayed + spawned.pending - spawned.delayed;
      const inFlight = this.holding.size;
      const now = Date.now();
      if (queued + inFlight === 0 && this.inFlightPeak > 0 && this.idleSince !== null) {
        // Work came and went since the last tick: it counts as of when it ended, so the window
        // (and scale-down) runs from the last activity, not from this tick.
        this.scaler.observe({ at: this.idleSince, load: this.inFlightPeak });
        this.scaler.observe({ at: now, load: 0 });
      } else {
        this.scaler.observe({ at: now, load: Math.max(queued + inFlight, this.inFlightPeak) });
      }
      this.inFlightPeak = inFlight;
      const heldMin = await this.claimMinSlots();
      const live = this.live();
      const ready = live.filter((c) => c.state === "ready").length;
      const decision = this.scaler.decide(now, live.length, ready);
      if (heldMin > decision.desired) {
        decision.desired = heldMin;
        decision.reason += `, warm minimum: ${heldMin} slot(s) of minContainers ${rt.spec.minContainers} held here`;
      }
      const startUpTo = Math.max(decision.startUpTo, heldMin);
      if (decision.desired !== this.lastDecision?.desired) {
        this.system(`scaling ${live.length} -> ${decision.desired}: ${decision.reason}`);
      }
      this.lastDecision = { ...decision, at: new Date(now).toISOString() };
      for (let n = live.length; n < startUpTo && this.mayGrow(); n++) {
        if ((await this.startContainer(`scaling to ${startUpTo}`)) === null) break;
      }
      if (decision.desired < live.length) {
        const min = rt.spec.minContainers;
        const idle = live
          .filter(
            (c) => c.state === "ready" && c.work.size === 0 && !(c.slot !== null && c.slot < min),
          )
          .sort((a, b) => a.idleSince - b.idleSince)
          .slice(0, live.length - decision.desired);
        for (const c of idle) this.drain(c, `scaling down to ${decision.desired}`);
      }
    } catch (error) {
      if (!this.stopped) this.system(`scaling tick failed: ${(error as Error).message}`);
    } finally {
      this.ticking = false;
    }
  }

  /** Decide again just after the scale-down window of the idle pool ends (a tick that finds work back does no harm). */
  private tickWhenWindowEnds(): void {
    if (this.windowEnd) clearTimeout(this.windowEnd);
    if (this.stopped) return;
    this.windowEnd = setTimeout(
      () => {
        this.windowEnd = null;
        void this.tick();
      },
      this.runtime.spec.scaledownWindow * 1000 + 10,
    );
    this.windowEnd.unref();
  }

  /** Stop one idle container for another pool's sake: any for cpu, one holding GPUs for gpu. */
  private evictIdle(need: Need): boolean {
    const min = this.runtime.spec.minContainers;
    const idle = this.live()
      .filter((c) => c.state === "ready" && c.work.size === 0 && !(c.slot !== null && c.slot < min))
      .filter((c) => need === "cpu" || c.sandbox.gpus.length > 0)
      .sort((a, b) => a.idleSince - b.idleSince);
    const victim = idle[0];
    if (!victim) return false;
    this.drain(victim, "evicted: another function needs the capacity");
    return true;
  }

  /** Take a container out of routing; it stops once it holds nothing. */
  private drain(container: Container, why: string): void {
    if (container.state === "draining") return;
    container.state = "draining";
    this.system(`draining container ${container.id} (${why})`, container.id);
    if (container.work.size === 0) void container.proc.stop(5_000);
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

function claimOf(work: Work, inputId: string): Claim {
  return work.claims[work.inputs.findIndex((i) => i.id === inputId)] as Claim;
}

function scalingSettings(spec: CompiledFunctionSpec): ScalingSettings {
  return {
    // The warm minimum is kept through cluster-wide slots (claimMinSlots), not per agent.
    minContainers: 0,
    maxContainers: spec.maxContainers,
    bufferContainers: spec.bufferContainers,
    windowMs: spec.scaledownWindow * 1000,
    targetPerContainer: spec.targetInputs * (spec.batched ? spec.batched.maxBatchSize : 1),
  };
}

function settleRun(run: RunOutcome, input: InputEnvelope): Settlement {
  if (run.ok) return { kind: "outcome", outcome: { ok: true, value: run.value } };
  if (run.error.invalid)
    return {
      kind: "outcome",
      outcome: errorOutcome(new InvalidError(`${input.fn}: ${run.error.message}`)),
    };
  return { kind: "user-failure", error: new RemoteError(run.error) };
}

function settleBatch(outcome: BatchOutcome, n: number): Settlement[] {
  if (outcome.ok)
    return outcome.values.map((value) => ({ kind: "outcome", outcome: { ok: true, value } }));
  const error = outcome.error;
  return Array.from({ length: n }, () => ({ kind: "user-failure", error: new RemoteError(error) }));
}

function noRetry(settlement: Settlement): Settlement {
  if (settlement.kind === "user-failure") return { ...settlement, noRetry: true };
  if (settlement.kind === "platform-failure") {
    return {
      kind: "outcome",
      outcome: errorOutcome(new RemoteError({ name: "WorkerExited", message: settlement.message })),
    };
  }
  return settlement;
}

function platformExhausted(input: InputEnvelope): Outcome {
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

function errorOutcome(error: KilnError): Outcome {
  return { ok: false, error: toWire(error) };
}
