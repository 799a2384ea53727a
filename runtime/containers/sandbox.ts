/**
 * The enforcement layer as one facade: what a container is given and held to.
 *
 * `SandboxHost` (one per agent) owns the cgroup tree, the scratch disks, the GPU allocator and the
 * usage meter. `host.reserve({ containerId, app, fn, spec })` is synchronous: it takes the GPUs
 * (or answers "waiting for capacity: needs 2 x A100, 0 free") and returns a `Sandbox` whose `env`
 * and `scratchDir` are known at once; the cgroup and the loop-mounted scratch disk are set up in
 * the background and `sandbox.ready` resolves with the spawn wrapper that starts the worker inside
 * the group. `WorkerProcess` takes the sandbox as is (`sandbox` option) and waits for it.
 * `await Sandbox.prepare(...)` does both steps for callers that can wait.
 *
 * When the worker exits, `classifyExit(exit)` says whether it ran out of memory (cgroup OOM kill,
 * RSS watchdog, or JS heap exhaustion) and `release()` — called for every container, also after a
 * crash — removes the cgroup, unmounts the scratch disk and returns the GPUs.
 *
 * Not promised: isolation beyond resources (no namespaces: the worker sees the host's filesystem
 * and network); enforcement of CPU in fallback mode.
 */
import { watch, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import type { OutOfMemoryError } from "../errors.js";
import type { CompiledFunctionSpec } from "../spec/index.js";
import { CgroupManager, type CgroupManagerOptions, type Enforcement } from "./cgroups/manager.js";
import type { ContainerCgroup, OomCounters } from "./cgroups/container-cgroup.js";
import { gpuDeviceRules } from "./cgroups/settings.js";
import { DATA_RLIMIT_HEADROOM_BYTES, readProcUsage, RssWatchdog, RSS_POLL_MS } from "./fallback.js";
import { discoverGpus, GpuAllocator, gpuEnv, type GpuDevice, type GpuInventory } from "./gpus.js";
import { meterSubject, UsageMeter } from "./metering.js";
import { classifyExit, outOfMemoryError, type OomCause, type OomVerdict } from "./oom.js";
import {
  ScratchDisks,
  type DiskPressure,
  type ScratchDisk,
  type ScratchDisksOptions,
} from "./scratch-disk.js";
import { cgroupWrapper, rlimitCommands, type SpawnWrapper } from "./spawn-wrapper.js";

const MIB = 1024 * 1024;

/** What `WorkerProcess` needs from a sandbox (its `sandbox` option). */
export interface WorkerSandbox {
  /** Resolves when the container may start, with the wrapper that starts it confined. */
  readonly ready: Promise<SpawnWrapper | null>;
  /** Told the worker's pid once it runs. */
  attach?(pid: number): void;
}

export interface SandboxInput {
  containerId: string;
  app: string;
  fn: string;
  spec: Pick<CompiledFunctionSpec, "cpu" | "memory" | "gpu" | "ephemeralDisk">;
}

/** A start that must wait: GPUs are taken ("capacity") or this host has none that fit. */
export interface CapacityWait {
  ok: false;
  reason: "capacity" | "unsatisfiable";
  /** "waiting for capacity: needs 2 x A100, 0 free" — for `kiln status`. */
  message: string;
}

export type SandboxReservation = { ok: true; sandbox: Sandbox } | CapacityWait;

export interface OomEvent {
  containerId: string;
  cause: OomCause;
  limitMiB: number | null;
}

export interface SandboxUsage {
  cpuNs: number | null;
  memoryBytes: number | null;
  maxMemoryBytes: number | null;
}

export interface EnforcementStatus {
  enforcement: Enforcement;
  /** Why cgroups are not used, in fallback. */
  reason: string | null;
  /** "v1" / "v2" per controller in use. */
  controllers: Record<string, "v1" | "v2">;
  notes: string[];
  disk: { enforcement: ScratchDisks["enforcement"]; notice: string | null } & DiskPressure;
  gpus: ReturnType<GpuAllocator["status"]> & {
    source: GpuInventory["source"];
    note: string | null;
  };
}

export interface SandboxHostOptions {
  agentId: string;
  /** Where scratch directories are mounted. */
  scratchRoot: string;
  /** Told once about degraded enforcement ("cgroups unavailable: ..."). */
  log?: (line: string) => void;
  /** Overrides for the cgroup manager (root, parent, disabledReason). */
  cgroups?: Partial<Omit<CgroupManagerOptions, "agentId" | "log">>;
  disks?: Partial<Omit<ScratchDisksOptions, "root" | "log">>;
  /** A ready allocator (tests); otherwise the inventory is discovered (KILN_GPUS or nvidia-smi). */
  gpus?: GpuAllocator;
  /** Read for KILN_GPUS and KILN_CGROUPS=off. Default process.env. */
  env?: NodeJS.ProcessEnv;
  meter?: UsageMeter;
}

export class SandboxHost {
  private readonly live = new Map<string, Sandbox>();

  private constructor(
    readonly cgroups: CgroupManager,
    readonly disks: ScratchDisks,
    readonly gpus: GpuAllocator,
    readonly meter: UsageMeter,
    readonly inventory: Pick<GpuInventory, "source" | "note">,
    /** The /dev/nvidia-uvm major, when the driver is loaded. */
    readonly uvmMajor: number | null,
    readonly log: (line: string) => void,
  ) {}

  static async open(options: SandboxHostOptions): Promise<SandboxHost> {
    const env = options.env ?? process.env;
    const log = options.log ?? (() => undefined);
    const disabled = env["KILN_CGROUPS"] === "off" ? "KILN_CGROUPS=off" : undefined;
    const cgroups = await CgroupManager.open({
      agentId: options.agentId,
      log,
      ...(disabled ? { disabledReason: disabled } : {}),
      ...options.cgroups,
    });
    const disks = await ScratchDisks.open({ root: options.scratchRoot, log, ...options.disks });
    let gpus = options.gpus;
    let inventory: Pick<GpuInventory, "source" | "note"> = {
      source: "none",
      note: "allocator given",
    };
    if (!gpus) {
      const found = await discoverGpus({ env });
      gpus = new GpuAllocator(found.devices);
      inventory = found;
    }
    const meter = options.meter ?? new UsageMeter();
    meter.start();
    return new SandboxHost(cgroups, disks, gpus, meter, inventory, await uvmMajor(), log);
  }

  /** Whether a container of `spec` could start now: null, or the wait message. */
  check(spec: SandboxInput["spec"]): string | null {
    return this.gpus.check(spec.gpu);
  }

  /** Take the container's GPUs now and set up the rest in the background (see `Sandbox.ready`). */
  reserve(input: SandboxInput): SandboxReservation {
    if (this.live.has(input.containerId))
      throw new Error(`sandbox ${input.containerId} exists already`);
    let devices: GpuDevice[] = [];
    if (input.spec.gpu !== null) {
      const grant = this.gpus.acquire(input.containerId, input.spec.gpu);
      if (!grant.ok) return grant;
      devices = grant.devices;
    }
    const sandbox = new Sandbox(this, input, devices, () => this.live.delete(input.containerId));
    this.live.set(input.containerId, sandbox);
    return { ok: true, sandbox };
  }

  /** `reserve`, then wait for the cgroup and scratch disk. Rejects if setup fails (nothing is kept). */
  async prepare(input: SandboxInput): Promise<Sandbox | CapacityWait> {
    const reservation = this.reserve(input);
    if (!reservation.ok) return reservation;
    await reservation.sandbox.ready;
    return reservation.sandbox;
  }

  get sandboxes(): Sandbox[] {
    return [...this.live.values()];
  }

  async status(): Promise<EnforcementStatus> {
    const controllers: Record<string, "v1" | "v2"> = {};
    for (const [controller, version] of this.cgroups.versions)
      controllers[controller] = version === 1 ? "v1" : "v2";
    return {
      enforcement: this.cgroups.enforcement,
      reason: this.cgroups.reason,
      controllers,
      notes: this.cgroups.notes,
      disk: {
        enforcement: this.disks.enforcement,
        notice: this.disks.notice,
        ...(await this.disks.pressure()),
      },
      gpus: { ...this.gpus.status(), source: this.inventory.source, note: this.inventory.note },
    };
  }

  /** Release every sandbox, stop metering, remove the agent's cgroups and stray scratch. */
  async close(): Promise<string[]> {
    const failures: string[] = [];
    for (const sandbox of this.sandboxes) failures.push(...(await sandbox.release()));
    this.meter.stop();
    failures.push(...(await this.cgroups.close()), ...(await this.disks.sweep()));
    return failures;
  }
}

export class Sandbox implements WorkerSandbox {
  readonly containerId: string;
  readonly app: string;
  readonly fn: string;
  /** TMPDIR, KILN_SCRATCH, and CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES when GPUs are held. */
  readonly env: Record<string, string>;
  readonly scratchDir: string;
  readonly gpus: readonly GpuDevice[];
  readonly limitMiB: number | null;
  /** Resolves with the spawn wrapper once the cgroup and scratch disk exist. */
  readonly ready: Promise<SpawnWrapper>;
  private group: ContainerCgroup | null = null;
  private disk: ScratchDisk | null = null;
  private baseline: OomCounters = { oomKills: 0, limitHits: 0 };
  private finalCounters: OomCounters | null = null;
  private pid: number | null = null;
  private watchdog: RssWatchdog | null = null;
  private poller: NodeJS.Timeout | null = null;
  private watcher: FSWatcher | null = null;
  private oomSeen = 0;
  private readonly listeners = new Set<(event: OomEvent) => void>();
  private released: Promise<string[]> | null = null;
  private cleaned: Promise<string[]> | null = null;

  /** Use `SandboxHost.reserve` or `Sandbox.prepare`. */
  constructor(
    private readonly host: SandboxHost,
    private readonly input: SandboxInput,
    devices: GpuDevice[],
    private readonly forget: () => void,
  ) {
    this.containerId = input.containerId;
    this.app = input.app;
    this.fn = input.fn;
    this.gpus = devices;
    this.limitMiB = input.spec.memory.limit;
    this.scratchDir = host.disks.pathFor(input.containerId);
    this.env = { TMPDIR: this.scratchDir, KILN_SCRATCH: this.scratchDir };
    if (input.spec.gpu !== null) Object.assign(this.env, gpuEnv(devices));
    this.ready = this.setup();
    this.ready.catch(() => undefined);
  }

  /** Reserve and set up in one step; a "wait for capacity" result when GPUs are short. */
  static prepare(input: SandboxInput & { host: SandboxHost }): Promise<Sandbox | CapacityWait> {
    const { host, ...rest } = input;
    return host.prepare(rest);
  }

  get enforcement(): Enforcement {
    return this.host.cgroups.enforcement;
  }

  /** The container's cgroup (null in fallback mode or before `ready`). */
  get cgroup(): ContainerCgroup | null {
    return this.group;
  }

  get scratch(): ScratchDisk | null {
    return this.disk;
  }

  private async setup(): Promise<SpawnWrapper> {
    const { spec } = this.input;
    try {
      let wrapper: SpawnWrapper;
      if (this.host.cgroups.available) {
        this.group = await this.host.cgroups.create(this.containerId, {
          cpu: spec.cpu,
          memory: spec.memory,
          devices: gpuDeviceRules(
            this.gpus.map((d) => d.minor),
            this.host.uvmMajor,
          ),
        });
        this.baseline = await this.group.oomCounters();
        wrapper = cgroupWrapper(this.group.procsFiles, rlimitCommands());
      } else {
        const dataBytes =
          this.limitMiB === null ? null : this.limitMiB * MIB + DATA_RLIMIT_HEADROOM_BYTES;
        wrapper = cgroupWrapper([], rlimitCommands({ dataBytes }));
      }
      this.disk = await this.host.disks.create(this.containerId, spec.ephemeralDisk);
      if (this.released) throw new Error("released during setup");
      return wrapper;
    } catch (error) {
      await this.cleanup();
      throw error;
    }
  }

  /** Start watching the worker: OOM polling (cgroup) or the RSS watchdog (fallback), and metering. */
  attach(pid: number): void {
    if (this.pid !== null || this.released) return;
    this.pid = pid;
    if (this.group) {
      // v2: memory.events supports inotify, so an OOM is seen at once; polling stays as the
      // fallback (v1 needs an eventfd, which Node cannot create).
      const events = this.group.oomEventsFile;
      if (events) {
        try {
          this.watcher = watch(events, () => void this.pollOom());
          this.watcher.on("error", () => this.watcher?.close());
          this.watcher.unref();
        } catch {
          this.watcher = null;
        }
      }
      this.poller = setInterval(() => void this.pollOom(), RSS_POLL_MS);
      this.poller.unref();
    } else if (this.limitMiB !== null) {
      this.watchdog = new RssWatchdog(pid, this.limitMiB * MIB, () => this.emitOom("rss")).start();
    }
    void this.host.meter
      .track(
        meterSubject(this.containerId, this.app, this.fn, this.input.spec, this.gpus.length),
        () => this.usage(),
      )
      .then(() => (this.released ? this.host.meter.untrack(this.containerId) : undefined))
      .catch(() => undefined);
  }

  /** Called when the container is OOM-killed (cgroup counter moved, or the RSS watchdog fired). */
  onOom(listener: (event: OomEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** CPU time and memory of the container now. */
  async usage(): Promise<SandboxUsage> {
    if (this.group) {
      const usage = await this.group.usage();
      if (usage.cpuNs === null && this.pid !== null)
        usage.cpuNs = (await readProcUsage(this.pid))?.cpuNs ?? null;
      return {
        cpuNs: usage.cpuNs,
        memoryBytes: usage.memoryBytes,
        maxMemoryBytes: usage.maxMemoryBytes,
      };
    }
    const proc = this.pid === null ? null : await readProcUsage(this.pid);
    return {
      cpuNs: proc?.cpuNs ?? null,
      memoryBytes: proc?.rssBytes ?? null,
      maxMemoryBytes: proc?.maxRssBytes ?? null,
    };
  }

  /** Whether the worker's exit was an out-of-memory death (read before or after `release`). */
  async classifyExit(exit: {
    code: number | null;
    signal: NodeJS.Signals | null;
    stderrTail?: string | undefined;
  }): Promise<OomVerdict> {
    let kills: number | null = null;
    if (this.group) {
      const counters =
        this.finalCounters ??
        (await this.group.oomCounters().catch(() => null)) ??
        this.finalCounters;
      kills = oomKillsSince(this.baseline, counters, exit.signal);
    }
    return classifyExit({
      ...exit,
      cgroupOomKills: kills,
      rssKilled: this.watchdog?.killed ?? false,
    });
  }

  /** The OutOfMemoryError for a verdict, naming the limit. */
  oomError(verdict: Extract<OomVerdict, { oom: true }>): OutOfMemoryError {
    return outOfMemoryError(`${this.app}.${this.fn}`, this.limitMiB, verdict);
  }

  /**
   * Kill what is left in the group, remove it, unmount and delete the scratch disk, return the
   * GPUs. Idempotent; never rejects: resolves with what could not be cleaned (also logged).
   */
  release(): Promise<string[]> {
    this.released ??= (async () => {
      await this.ready.catch(() => undefined);
      const failures = await this.cleanup();
      for (const failure of failures)
        this.host.log(`container ${this.containerId}: cleanup: ${failure}`);
      return failures;
    })();
    return this.released;
  }

  private cleanup(): Promise<string[]> {
    return (this.cleaned ??= this.cleanupOnce());
  }

  private async cleanupOnce(): Promise<string[]> {
    const failures: string[] = [];
    if (this.poller) clearInterval(this.poller);
    this.poller = null;
    this.watcher?.close();
    this.watcher = null;
    this.watchdog?.stop();
    await this.host.meter.untrack(this.containerId).catch(() => undefined);
    if (this.group) {
      this.finalCounters = await this.group.oomCounters().catch(() => null);
      await this.group.destroy().catch((error: Error) => failures.push(error.message));
    }
    if (this.disk) await this.disk.release().catch((error: Error) => failures.push(error.message));
    this.host.gpus.release(this.containerId);
    this.forget();
    return failures;
  }

  private async pollOom(): Promise<void> {
    if (!this.group) return;
    const counters = await this.group.oomCounters().catch(() => null);
    const kills = oomKillsSince(this.baseline, counters, null) ?? 0;
    if (kills > this.oomSeen) {
      this.oomSeen = kills;
      this.emitOom("cgroup");
    }
  }

  private emitOom(cause: OomCause): void {
    const event: OomEvent = { containerId: this.containerId, cause, limitMiB: this.limitMiB };
    for (const listener of this.listeners) listener(event);
  }
}

/** OOM kills since `baseline`; kernels without the oom_kill counter: a SIGKILL after limit hits. */
function oomKillsSince(
  baseline: OomCounters,
  now: OomCounters | null,
  signal: NodeJS.Signals | null,
): number | null {
  if (now === null) return null;
  if (now.oomKills !== null) return now.oomKills - (baseline.oomKills ?? 0);
  if (signal === "SIGKILL" && now.limitHits !== null && now.limitHits > (baseline.limitHits ?? 0))
    return 1;
  return null;
}

/** The character major of /dev/nvidia-uvm from /proc/devices, when the driver is loaded. */
async function uvmMajor(): Promise<number | null> {
  const text = await readFile("/proc/devices", "utf8").catch(() => "");
  const match = /^\s*(\d+)\s+nvidia-uvm$/m.exec(text);
  return match ? Number(match[1]) : null;
}
