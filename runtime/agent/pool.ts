/**
 * A function's pool of containers on this host: the loop that feeds them, admission and scaling.
 *
 * Two loops:
 * - Dispatch claims only what it can place: free slots of ready or starting containers of the
 *   current version, plus one more container's slots when the pool may grow (the cold-start fast
 *   path: an input that finds no room starts a container at once). A slot holds one input, or
 *   one batch for a `batched` function: the batch is claimed until it reaches `maxBatchSize` or
 *   its oldest input has waited `waitMs`. A `solo` input (its worker died running others too)
 *   takes a whole container: an idle one or a new one; when neither can be had it is held,
 *   claimed, and the loop claims nothing more until it runs.
 * - The scaling tick (every second) observes the load (queued + in flight), asks the
 *   {@link Autoscaler} for the desired size, starts containers up to it (buffer, target
 *   concurrency) and drains idle ones above it: they take nothing new and stop once idle.
 *
 * The pool composes: ContainerSet (containers.ts: container lifecycle), ContainerSlots
 * (container-slots.ts: cluster-wide slots), WorkRunner (work-runner.ts: runs the work and
 * carries out the retry policy of retry-policy.ts), LeaseKeeper (lease-keeper.ts: renews claims).
 * A new version (code or resources changed) drains the old containers.
 */
import type { SandboxHost } from "../containers/sandbox.js";
import type { FunctionStatus } from "../protocol.js";
import type { CompiledFunctionSpec, Maxima } from "../spec/index.js";
import type { Claim, Store } from "../store/store.js";
import { Autoscaler, type ScalingDecision, type ScalingSettings } from "./autoscaler.js";
import type { HostCapacity, Need } from "./capacity.js";
import { ContainerSlots } from "./container-slots.js";
import { ContainerSet, roomIn, type Container, type FunctionRuntime } from "./containers.js";
import { keys, type InputEnvelope } from "./inputs.js";
import { LeaseKeeper } from "./lease-keeper.js";
import type { LogBook } from "./logs.js";
import type { OutcomeWriter } from "./outcomes.js";
import { Wakeup } from "./wakeup.js";
import { WorkRunner, type Work } from "./work-runner.js";

export type { FunctionRuntime } from "./containers.js";

const CLAIM_WAIT_MS = 2_000;
const SCALING_TICK_MS = 1_000;

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

export class FunctionPool {
  private runtime: FunctionRuntime;
  private readonly slots: ContainerSlots;
  private readonly containers: ContainerSet;
  private readonly leases: LeaseKeeper;
  private readonly runner: WorkRunner;
  private readonly wakeup = new Wakeup();
  private readonly abort = new AbortController();
  private readonly scaler: Autoscaler;
  private stopped = false;
  private loopDone: Promise<void> = Promise.resolve();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly unregisterCapacity: () => void;
  private readonly unregisterGpus: () => void;
  private preferSpawn = false;
  /** Why the pool may not grow, as of the last try (null: it may). */
  private blocked: string | null = null;
  private lastDecision: (ScalingDecision & { at: string }) | null = null;
  private ticking = false;
  /** Most inputs in flight at once since the last tick: work that starts and ends between ticks still counts. */
  private inFlightPeak = 0;
  /** When the pool last went from running inputs to running none (that is when the idle window starts). */
  private idleSince: number | null = null;
  /** A scaling decision right when the idle window ends, rather than up to a tick later. */
  private windowEnd: NodeJS.Timeout | null = null;

  constructor(
    private readonly ctx: PoolContext,
    runtime: FunctionRuntime,
  ) {
    this.runtime = runtime;
    this.scaler = new Autoscaler(scalingSettings(runtime.spec));
    const { store, agentId, leaseMs } = ctx;
    const notify = (): void => this.wakeup.notify();
    this.slots = new ContainerSlots({ store, agentId, app: runtime.app, fn: runtime.fn, leaseMs });
    const log = (text: string, containerId?: string): void => this.system(text, containerId);
    // capacity, sandboxes, agentUrl, token, scratchDir, logs: from the pool's context.
    this.containers = new ContainerSet({ ...ctx, slots: this.slots, log, notify });
    this.leases = new LeaseKeeper({
      renew: (claims, ms) => store.renew(claims, ms),
      leaseMs,
      log,
    });
    this.runner = new WorkRunner({
      store,
      outcomes: ctx.outcomes,
      leases: this.leases,
      containers: this.containers,
      runtime: () => this.runtime,
      stopped: () => this.stopped,
      log,
      started: (inputs) => {
        this.inFlightPeak = Math.max(this.inFlightPeak, inputs);
      },
      idle: () => {
        this.idleSince = Date.now();
        this.tickWhenWindowEnds();
      },
      notify,
    });
    this.unregisterCapacity = ctx.capacity.register((need) => this.evictIdle(need), notify);
    this.unregisterGpus = ctx.sandboxes.gpus.onRelease(notify);
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
      for (const container of this.containers.all()) {
        if (container.version !== runtime.version)
          this.containers.drain(container, "new version deployed");
      }
    }
    this.wakeup.notify();
    void this.tick();
  }

  /** Kill the work of an input this pool runs. Returns whether it runs it. */
  cancel(inputId: string): boolean {
    return this.runner.cancel(inputId);
  }

  /**
   * Stop the pool. `drain`: in-flight inputs finish first (app deleted); otherwise running inputs
   * go back to the queue for a later agent (agent shutdown) and containers are killed.
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
      while (this.runner.inFlight > 0 && Date.now() < deadline) await this.wakeup.wait(100);
    }
    await this.runner.handBackRunning();
    // Their cgroups, GPUs and scratch disks are released before the pool counts as stopped.
    await this.containers.stopAll(options.drain);
  }

  /** This host's share of the function, for the cluster view. */
  hostShare(): { containers: number; busy: number; inFlight: number } {
    const live = this.containers.live(this.runtime.version);
    return {
      containers: live.length,
      busy: live.filter((c) => c.running.size > 0).length,
      inFlight: this.runner.inFlight,
    };
  }

  async status(): Promise<FunctionStatus> {
    const { app, fn } = this.runtime;
    const [calls, spawned] = await Promise.all([
      this.ctx.store.stats(keys.queue(app, fn)),
      this.ctx.store.stats(keys.spawnQueue(app, fn)),
    ]);
    const containers = this.containers.statuses();
    const current = containers.filter((c) => c.state !== "draining");
    const decision = this.lastDecision;
    const stats = this.containers.stats();
    return {
      name: fn,
      version: this.runtime.version,
      containers,
      scaling: {
        desired: decision?.desired ?? 0,
        starting: current.filter((c) => c.state === "starting").length,
        busy: current.filter((c) => c.state === "ready" && c.inFlight > 0).length,
        idle: current.filter((c) => c.state === "ready" && c.inFlight === 0).length,
        draining: containers.length - current.length,
        panic: decision?.panic ?? false,
        lastDecision: decision
          ? { at: decision.at, desired: decision.desired, reason: decision.reason }
          : null,
      },
      queue: {
        pending: calls.pending,
        running: calls.claimed + spawned.claimed,
        spawnPending: spawned.pending,
      },
      coldStarts: stats.coldStarts,
      startFailures: stats.startFailures,
      blocked: this.blockedNow(),
      lastStartError: stats.lastStartError,
    };
  }

  /** Why the pool is not starting containers, and whether held inputs wait for one. */
  private blockedNow(): string | null {
    const held = this.runner.held;
    if (held === 0) return this.blocked;
    const wait = `${held} input(s) wait to run alone (a worker died running them beside others) for an idle container`;
    return this.blocked === null ? wait : `${wait}; ${this.blocked}`;
  }

  // ---- dispatch -----------------------------------------------------------------------------

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const rt = this.runtime;
      const held = this.runner.firstHeld();
      if (held) {
        // Nothing more is claimed meanwhile: the containers' work ends, and one comes free.
        if (!(await this.placeHeld(held))) await this.wakeup.wait(1_000);
        continue;
      }
      const slots = rt.spec.maxInputs;
      let free = 0;
      for (const c of this.containers.live(rt.version)) free += roomIn(c, slots);
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
    const live = this.containers.live(rt.version).length;
    const cap = rt.spec.maxContainers ?? Number.POSITIVE_INFINITY;
    if (live >= cap) {
      this.blocked = `at maxContainers (${cap})`;
      return false;
    }
    if (this.slots.recentlyFull()) {
      this.blocked = `at maxContainers (${cap}) across the cluster`;
      return false;
    }
    const backoff = this.containers.startBackoff();
    if (backoff !== null) {
      this.blocked = backoff;
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
    return this.containers
      .live(version)
      .some((c) => c.state === "ready" && roomIn(c, spec.maxInputs) > 0);
  }

  private async place(claims: Claim[], batch: boolean, askedAt: number): Promise<void> {
    if (this.stopped) {
      this.runner.handBackClaims(claims);
      return;
    }
    const work = this.runner.admit(claims, batch, askedAt);
    if (work === null) return;
    if (work.solo) {
      const alone = await this.soloTarget();
      if (alone === null) this.runner.hold(work);
      else this.runWork(alone, work);
      return;
    }
    const rt = this.runtime;
    let target: Container | null = null;
    for (const c of this.containers.live(rt.version)) {
      if (roomIn(c, rt.spec.maxInputs) === 0) continue;
      if (target === null || (c.state === "ready" && target.state !== "ready")) target = c;
      if (target.state === "ready") break;
    }
    target ??= await this.startContainer("an input found no free container");
    if (target === null) {
      // No room after all (capacity taken meanwhile): give them back for later.
      this.runner.handBackWork(work);
      return;
    }
    this.runWork(target, work);
  }

  /** Run held solo work if a container can take it alone now. Returns whether it was placed. */
  private async placeHeld(work: Work): Promise<boolean> {
    const target = await this.soloTarget();
    if (target === null) return false;
    // Cancelled while the container started: it stays, idle.
    if (this.runner.unhold(work)) this.runWork(target, work);
    return true;
  }

  /**
   * A container for an input that runs alone: an idle one of the current version (a ready one
   * first), or a new one if the pool may grow; null when neither.
   */
  private async soloTarget(): Promise<Container | null> {
    const idle = this.containers
      .live(this.runtime.version)
      .filter((c) => c.running.size === 0)
      .sort((a, b) => Number(b.state === "ready") - Number(a.state === "ready"));
    if (idle[0]) return idle[0];
    if (!this.mayGrow()) return null;
    return this.startContainer("an input must run alone");
  }

  private runWork(target: Container, work: Work): void {
    void this.runner.run(target, work).catch((error: unknown) => {
      // The store failed (unreachable) while the claims were finished or released: they lapse and
      // are recovered, so the inputs run again elsewhere or later. Nothing to do but say so.
      this.system(
        `could not settle ${work.items.map((i) => i.input.id).join(", ")}: ${(error as Error).message}; they will be retried`,
      );
    });
  }

  /**
   * Start a container if a slot and the host's capacity allow. `preset`: the id and warm-minimum
   * slot the caller already locked, instead of looking for one.
   */
  private async startContainer(
    why: string,
    preset: { id: string; slot: number } | null = null,
  ): Promise<Container | null> {
    const result = await this.containers.start(this.runtime, why, preset);
    if (result.kind === "started") return result.container;
    if (result.blocked !== undefined) this.blocked = result.blocked;
    return null;
  }

  private async heartbeat(): Promise<void> {
    await this.containers.renewSlots();
    await this.leases.renew();
  }

  /**
   * `minContainers` holds across the cluster: slots [0, minContainers) are the warm minimum,
   * and an agent keeps a warm container only while it holds one. Returns how many it holds.
   */
  private async claimWarmSlots(): Promise<number> {
    const min = this.runtime.spec.minContainers;
    const live = this.containers.live(this.runtime.version);
    const warm = new Set(live.flatMap((c) => (c.slot !== null && c.slot < min ? [c.slot] : [])));
    for (let i = 0; i < min && !this.stopped; i++) {
      if (warm.has(i) || !this.mayGrow()) continue;
      const id = ContainerSet.newId();
      if (!(await this.slots.claim(i, id))) continue;
      const started = await this.startContainer(`warm minimum (slot ${i})`, { id, slot: i });
      if (started) warm.add(i);
    }
    return warm.size;
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
      // Held inputs are claimed (not queued) and wait for a container: load too.
      const inFlight = this.runner.inFlight + this.runner.held;
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
      const warm = await this.claimWarmSlots();
      const live = this.containers.live(rt.version);
      const ready = live.filter((c) => c.state === "ready").length;
      const decision = this.scaler.decide(now, live.length, ready);
      if (warm > decision.desired) {
        decision.desired = warm;
        decision.reason += `, warm minimum: ${warm} slot(s) of minContainers ${rt.spec.minContainers} held here`;
      }
      const startUpTo = Math.max(decision.startUpTo, warm);
      if (decision.desired !== this.lastDecision?.desired) {
        this.system(`scaling ${live.length} -> ${decision.desired}: ${decision.reason}`);
      }
      this.lastDecision = { ...decision, at: new Date(now).toISOString() };
      for (let n = live.length; n < startUpTo && this.mayGrow(); n++) {
        if ((await this.startContainer(`scaling to ${startUpTo}`)) === null) break;
      }
      if (decision.desired < live.length) {
        const idle = this.containers
          .idleSpare(rt.version, rt.spec.minContainers)
          .slice(0, live.length - decision.desired);
        for (const c of idle) this.containers.drain(c, `scaling down to ${decision.desired}`);
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
    const victim = this.containers
      .idleSpare(this.runtime.version, this.runtime.spec.minContainers)
      .find((c) => need === "cpu" || c.sandbox.gpus.length > 0);
    if (!victim) return false;
    this.containers.drain(victim, "evicted: another function needs the capacity");
    return true;
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

function scalingSettings(spec: CompiledFunctionSpec): ScalingSettings {
  return {
    // The warm minimum is kept through cluster-wide slots (claimWarmSlots), not per agent.
    minContainers: 0,
    maxContainers: spec.maxContainers,
    bufferContainers: spec.bufferContainers,
    windowMs: spec.scaledownWindow * 1000,
    targetPerContainer: spec.targetInputs * (spec.batched ? spec.batched.maxBatchSize : 1),
  };
}
