/**
 * A pool's containers on this host and their lifecycle: start (cluster slot, host cores, sandbox,
 * worker process), ready or failed start (with backoff), exit and cleanup, drain and stop.
 * To drain a container is to take it out of routing and stop it once it runs nothing.
 */
import { randomUUID } from "node:crypto";
import { WorkerProcess } from "../containers/worker-process.js";
import type { Sandbox, SandboxHost } from "../containers/sandbox.js";
import type { ContainerStatus } from "../protocol.js";
import type { CompiledFunctionSpec } from "../spec/index.js";
import type { HostCapacity } from "./capacity.js";
import type { ContainerSlots } from "./container-slots.js";
import type { LogBook } from "./logs.js";

/** Consecutive start failures back off 1 s, 2 s, 4 s ... up to this. */
const MAX_START_BACKOFF_MS = 30_000;

/** What the pool runs: one deployed version of one function. */
export interface FunctionRuntime {
  app: string;
  fn: string;
  spec: CompiledFunctionSpec;
  /** Changes when code or resources change; containers of another version are drained. */
  version: string;
  bundlePath: string;
}

export interface Container {
  readonly id: string;
  /**
   * The cluster-wide slot it holds (see ContainerSlots), or null when the function has no cap
   * and the container is not one of the warm minimum.
   */
  readonly slot: number | null;
  readonly proc: WorkerProcess;
  /** Its cgroup, GPUs and scratch disk; released when the process exits. */
  readonly sandbox: Sandbox;
  /** Resolves once the process exited and its sandbox was released. */
  readonly gone: Promise<void>;
  readonly version: string;
  /** "draining": out of routing, stopped once it runs nothing. */
  readonly state: "starting" | "ready" | "draining";
  /** The pieces of work it runs (one slot each): work id -> inputs in it. */
  readonly running: ReadonlyMap<string, number>;
  /** The work that runs alone on it (a `solo` input): it takes no other until that ends. */
  readonly solo: string | null;
  readonly startedAt: number;
  readonly idleSince: number;
  readonly coldStartMs: number | null;
}

interface Entry extends Container {
  gone: Promise<void>;
  state: Container["state"];
  running: Map<string, number>;
  solo: string | null;
  idleSince: number;
  coldStartMs: number | null;
}

export interface ContainerSetContext {
  capacity: Pick<HostCapacity, "reserve" | "release">;
  sandboxes: Pick<SandboxHost, "reserve">;
  slots: Pick<ContainerSlots, "acquire" | "release" | "renew">;
  agentUrl: string;
  token: string;
  scratchDir: string;
  /** Where a worker's output goes. */
  logs: Pick<LogBook, "append">;
  /** The pool's system log. */
  log(text: string, containerId: string): void;
  /** A container became ready or went away: the dispatch loop may have room. */
  notify(): void;
}

/** A start: the container, or why none started (`blocked`: what stands in the way, if known). */
export type StartResult =
  { kind: "started"; container: Container } | { kind: "refused"; blocked?: string };

export class ContainerSet {
  private readonly entries = new Map<string, Entry>();
  private coldStarts = 0;
  private startFailures = 0;
  private failureStreak = 0;
  private startBlockedUntil = 0;
  private lastStartError: string | null = null;

  constructor(private readonly ctx: ContainerSetContext) {}

  /** A fresh container id. */
  static newId(): string {
    return `ct-${randomUUID().slice(0, 8)}`;
  }

  all(): Container[] {
    return [...this.entries.values()];
  }

  /** Containers of `version` that take work (starting or ready). */
  live(version: string): Container[] {
    return this.all().filter((c) => c.version === version && c.state !== "draining");
  }

  /**
   * Live containers that may go: ready, running nothing, not holding a warm-minimum slot
   * (below `minContainers`); the longest idle first.
   */
  idleSpare(version: string, minContainers: number): Container[] {
    return this.live(version)
      .filter(
        (c) =>
          c.state === "ready" &&
          c.running.size === 0 &&
          !(c.slot !== null && c.slot < minContainers),
      )
      .sort((a, b) => a.idleSince - b.idleSince);
  }

  /** Why no container may start now after failed starts, or null when none is backing off. */
  startBackoff(): string | null {
    if (Date.now() >= this.startBlockedUntil) return null;
    return `start backoff after ${this.failureStreak} failed starts: ${this.lastStartError ?? ""}`;
  }

  stats(): { coldStarts: number; startFailures: number; lastStartError: string | null } {
    const { coldStarts, startFailures, lastStartError } = this;
    return { coldStarts, startFailures, lastStartError };
  }

  statuses(): ContainerStatus[] {
    return this.all().map((c) => ({
      id: c.id,
      pid: c.proc.pid ?? null,
      state: c.state,
      version: c.version,
      inFlight: [...c.running.values()].reduce((n, inputs) => n + inputs, 0),
      startedAt: new Date(c.startedAt).toISOString(),
      coldStartMs: c.coldStartMs,
    }));
  }

  /**
   * Start a container of `rt` if a slot and the host's capacity allow. `preset`: the id and
   * warm-minimum slot the caller already locked, instead of looking for a slot.
   */
  async start(
    rt: FunctionRuntime,
    why: string,
    preset: { id: string; slot: number } | null = null,
  ): Promise<StartResult> {
    const cpu = rt.spec.cpu.request;
    const id = preset?.id ?? ContainerSet.newId();
    let slot: number | null;
    if (preset) slot = preset.slot;
    else {
      const taken = new Set(this.all().flatMap((c) => (c.slot === null ? [] : [c.slot])));
      const grant = await this.ctx.slots.acquire(id, rt.spec.maxContainers, taken);
      if (grant.kind === "full")
        return { kind: "refused", blocked: `at maxContainers (${grant.max}) across the cluster` };
      slot = grant.kind === "slot" ? grant.index : null;
    }
    if (!this.ctx.capacity.reserve(cpu)) {
      if (slot !== null) await this.ctx.slots.release(slot, id);
      return { kind: "refused" };
    }
    const reservation = this.ctx.sandboxes.reserve({
      containerId: id,
      app: rt.app,
      fn: rt.fn,
      spec: rt.spec,
    });
    if (!reservation.ok) {
      this.ctx.capacity.release(cpu);
      if (slot !== null) await this.ctx.slots.release(slot, id);
      return { kind: "refused", blocked: reservation.message };
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
    const container: Entry = {
      id,
      slot,
      proc,
      sandbox,
      gone: Promise.resolve(),
      version: rt.version,
      state: "starting",
      running: new Map(),
      solo: null,
      startedAt: Date.now(),
      idleSince: Date.now(),
      coldStartMs: null,
    };
    this.entries.set(id, container);
    const gpus = sandbox.gpus.map((g) => g.uuid).join(", ");
    this.ctx.log(`starting container ${id} (${why})${gpus ? ` with GPUs ${gpus}` : ""}`, id);
    sandbox.onOom((event) =>
      this.ctx.log(
        `container ${id} was OOM-killed (${event.cause}) at its ${event.limitMiB ?? "?"} MiB limit`,
        id,
      ),
    );
    proc.ready().then(
      () => this.ready(container),
      (error: Error) => this.failedStart(container, error),
    );
    container.gone = proc.exited.then(async (exit) => {
      this.entries.delete(id);
      this.ctx.capacity.release(cpu);
      if (slot !== null) void this.ctx.slots.release(slot, id);
      const released = sandbox.release().then((problems) => {
        for (const problem of problems) this.ctx.log(`cleaning up container ${id}: ${problem}`, id);
      });
      if (!exit.killedFor || exit.killedFor === "timeout" || exit.killedFor === "cancel") {
        const how = exit.killedFor
          ? `killed (${exit.killedFor})`
          : `exited (${exit.signal ?? `code ${exit.code}`})`;
        this.ctx.log(`container ${id} ${how}`, id);
      }
      this.ctx.notify();
      await released;
    });
    return { kind: "started", container };
  }

  /**
   * A piece of work (`inputs` inputs, one slot) starts on `container`; `alone`: it must run alone
   * (the container runs nothing else and takes nothing else until it ends).
   */
  assign(container: Container, workId: string, inputs: number, alone = false): void {
    const entry = own(container);
    if (alone && entry.running.size > 0)
      throw new Error(`container ${entry.id} runs other work: a solo input cannot join it`);
    if (entry.solo !== null)
      throw new Error(`container ${entry.id} runs a solo input: it takes no other work`);
    entry.running.set(workId, inputs);
    if (alone) entry.solo = workId;
  }

  /** A piece of work ended on `container`: once it runs nothing it is idle, or stops if draining. */
  finished(container: Container, workId: string): void {
    const entry = own(container);
    entry.running.delete(workId);
    if (entry.solo === workId) entry.solo = null;
    if (entry.running.size > 0) return;
    entry.idleSince = Date.now();
    if (entry.state === "draining") void entry.proc.stop(5_000);
  }

  /** Take a container out of routing; it stops once it runs nothing. */
  drain(container: Container, why: string): void {
    const entry = own(container);
    if (entry.state === "draining") return;
    entry.state = "draining";
    this.ctx.log(`draining container ${entry.id} (${why})`, entry.id);
    if (entry.running.size === 0) void entry.proc.stop(5_000);
  }

  /** Renew the slots the containers hold; a container whose slot was lost is drained. */
  async renewSlots(): Promise<void> {
    for (const c of this.all()) {
      if (c.slot === null || c.state === "draining") continue;
      if (!(await this.ctx.slots.renew(c.slot, c.id)))
        this.drain(c, `lost slot ${c.slot} (this agent was unreachable past the slot's lease)`);
    }
  }

  /**
   * Stop every container: `graceful` ones that run nothing get a moment to exit, the others are
   * killed. Resolves once their cgroups, GPUs and scratch disks are released.
   */
  async stopAll(graceful: boolean): Promise<void> {
    const containers = this.all();
    await Promise.all(
      containers.map((c) =>
        graceful && c.running.size === 0
          ? c.proc.stop(2_000)
          : (c.proc.kill("stop"), c.proc.exited),
      ),
    );
    await Promise.all(containers.map((c) => c.gone));
  }

  private ready(container: Entry): void {
    container.coldStartMs = Date.now() - container.startedAt;
    this.coldStarts += 1;
    this.failureStreak = 0;
    if (container.state === "starting") container.state = "ready";
    container.idleSince = Date.now();
    this.ctx.log(`container ${container.id} ready in ${container.coldStartMs} ms`, container.id);
    this.ctx.notify();
  }

  private async failedStart(container: Entry, error: Error): Promise<void> {
    // Killed on purpose while starting (its input was cancelled or timed out, the agent is
    // stopping): not a failed start, so no start backoff for the next input.
    const exit = await container.proc.exited;
    if (exit.killedFor === "cancel" || exit.killedFor === "timeout" || exit.killedFor === "stop")
      return;
    this.startFailures += 1;
    this.failureStreak += 1;
    this.lastStartError = error.message;
    this.startBlockedUntil =
      Date.now() + Math.min(MAX_START_BACKOFF_MS, 1000 * 2 ** (this.failureStreak - 1));
    this.ctx.log(`container ${container.id} failed to start: ${error.message}`, container.id);
  }
}

/** How many more pieces of work `container` takes, at `maxInputs` slots (none beside a solo input). */
export function roomIn(container: Container, maxInputs: number): number {
  return container.solo !== null ? 0 : Math.max(0, maxInputs - container.running.size);
}

/** Every Container is an Entry this module made: its own view of one to change it. */
function own(container: Container): Entry {
  return container as Entry;
}
