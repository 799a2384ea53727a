/**
 * Metering, as the platform kiln mirrors bills: per container and per second,
 * billed CPU = max(cpu request, measured usage), billed memory = max(memory request, disk / 20,
 * measured usage) — the request part is `billedMemoryMiB` of the spec — and GPU seconds.
 * Figures come from cgroup accounting (cpuacct / cpu.stat, memory working set) sampled each
 * second, not estimates.
 *
 * `UsageAccumulator` is pure (fed samples; tested with fake ones). `UsageMeter` samples live
 * containers on a `Clock` and feeds it. The agent persists the accumulator's buckets in the store
 * (runtime/agent/usage-ledger.ts), which then drops them from memory.
 *
 * Not promised: sub-interval peaks (a spike between two samples is averaged for CPU and missed for
 * memory); usage after a container's last sample.
 */
import { systemClock, type Clock, type Timer } from "../clock.js";
import { billedMemoryMiB, type CompiledFunctionSpec } from "../spec/index.js";

const MIB = 1024 * 1024;

/** What a container is billed against. */
export interface MeterSubject {
  containerId: string;
  app: string;
  fn: string;
  /** Cores requested. */
  cpuRequest: number;
  /** Memory request for billing, MiB: max(memory request, ephemeral disk / 20). */
  memoryRequestMiB: number;
  /** GPUs held. */
  gpus: number;
}

/** The subject of a container of `spec`. */
export function meterSubject(
  containerId: string,
  app: string,
  fn: string,
  spec: Pick<CompiledFunctionSpec, "cpu" | "memory" | "ephemeralDisk">,
  gpus: number,
): MeterSubject {
  return {
    containerId,
    app,
    fn,
    cpuRequest: spec.cpu.request,
    memoryRequestMiB: billedMemoryMiB(spec),
    gpus,
  };
}

/** A reading: cumulative CPU time and the memory in use at `atMs`. Null: not measurable. */
export interface UsageSample {
  atMs: number;
  cpuNs: number | null;
  memoryBytes: number | null;
}

export interface UsageTotals {
  app: string;
  fn: string;
  /** Seconds containers ran (sampled). */
  containerSeconds: number;
  /** Measured CPU, core-seconds. */
  cpuSeconds: number;
  /** Σ max(request, usage) x dt, core-seconds. */
  billedCpuSeconds: number;
  /** Measured memory, MiB-seconds. */
  memoryMiBSeconds: number;
  /** Σ max(billed request, usage) x dt, MiB-seconds. */
  billedMemoryMiBSeconds: number;
  /** Σ GPUs x dt. */
  gpuSeconds: number;
}

export interface UsageFilter {
  app?: string;
  fn?: string;
  /** Only buckets that end after this time (epoch ms). */
  sinceMs?: number;
}

interface Open {
  subject: MeterSubject;
  last: UsageSample;
}

type Totals = Omit<UsageTotals, "app" | "fn">;

/** The figures of one (app, function, bucket), as the accumulator holds them (seconds, floats). */
export type UsageFigures = Totals;

/** One bucket of the accumulator: what ran for `app`/`fn` in [startMs, startMs + bucketMs). */
export interface UsageBucket {
  app: string;
  fn: string;
  startMs: number;
  figures: Readonly<UsageFigures>;
}

const zero = (): Totals => ({
  containerSeconds: 0,
  cpuSeconds: 0,
  billedCpuSeconds: 0,
  memoryMiBSeconds: 0,
  billedMemoryMiBSeconds: 0,
  gpuSeconds: 0,
});

export class UsageAccumulator {
  private readonly open = new Map<string, Open>();
  /** `${app}\0${fn}\0${bucketStart}` → totals. */
  private readonly bucketMap = new Map<string, Totals>();

  /** @param bucketMs granularity of `since` queries. Default one minute. */
  constructor(readonly bucketMs = 60_000) {}

  /** Start metering a container from its first sample. */
  start(subject: MeterSubject, sample: UsageSample): void {
    this.open.set(subject.containerId, { subject, last: sample });
  }

  /** Bill the interval since the container's previous sample. Unknown containers are ignored. */
  record(containerId: string, sample: UsageSample): void {
    const entry = this.open.get(containerId);
    if (!entry) return;
    const dt = (sample.atMs - entry.last.atMs) / 1000;
    if (dt <= 0) return;
    const { subject } = entry;
    const cpuDelta =
      sample.cpuNs !== null && entry.last.cpuNs !== null
        ? Math.max(0, sample.cpuNs - entry.last.cpuNs) / 1e9
        : 0;
    const cores = cpuDelta / dt;
    const memoryMiB = sample.memoryBytes === null ? 0 : sample.memoryBytes / MIB;
    const totals = this.bucket(subject.app, subject.fn, sample.atMs);
    totals.containerSeconds += dt;
    totals.cpuSeconds += cpuDelta;
    totals.billedCpuSeconds += Math.max(subject.cpuRequest, cores) * dt;
    totals.memoryMiBSeconds += memoryMiB * dt;
    totals.billedMemoryMiBSeconds += Math.max(subject.memoryRequestMiB, memoryMiB) * dt;
    totals.gpuSeconds += subject.gpus * dt;
    entry.last = {
      atMs: sample.atMs,
      cpuNs: sample.cpuNs ?? entry.last.cpuNs,
      memoryBytes: sample.memoryBytes,
    };
  }

  /** Bill up to a final sample (when given) and stop metering the container. */
  stop(containerId: string, sample?: UsageSample): void {
    if (sample) this.record(containerId, sample);
    this.open.delete(containerId);
  }

  /** Every bucket held (live views: they keep growing while their minute runs). */
  *buckets(): Iterable<UsageBucket> {
    for (const [key, figures] of this.bucketMap) {
      const [app = "", fn = "", startText = "0"] = key.split("\0");
      yield { app, fn, startMs: Number(startText), figures };
    }
  }

  /** Drop a bucket (a ledger that persisted it keeps memory bounded this way). */
  forget(app: string, fn: string, startMs: number): void {
    this.bucketMap.delete(`${app}\0${fn}\0${startMs}`);
  }

  get tracked(): string[] {
    return [...this.open.keys()];
  }

  /** Totals per app and function, sorted by app then function. */
  totals(filter: UsageFilter = {}): UsageTotals[] {
    const rows = new Map<string, UsageTotals>();
    for (const [key, totals] of this.bucketMap) {
      const [app = "", fn = "", startText = "0"] = key.split("\0");
      if (filter.app !== undefined && app !== filter.app) continue;
      if (filter.fn !== undefined && fn !== filter.fn) continue;
      if (filter.sinceMs !== undefined && Number(startText) + this.bucketMs <= filter.sinceMs)
        continue;
      const rowKey = `${app}\0${fn}`;
      const row = rows.get(rowKey) ?? { app, fn, ...zero() };
      for (const field of Object.keys(totals) as (keyof Totals)[]) row[field] += totals[field];
      rows.set(rowKey, row);
    }
    return [...rows.values()].sort(
      (a, b) => a.app.localeCompare(b.app) || a.fn.localeCompare(b.fn),
    );
  }

  private bucket(app: string, fn: string, atMs: number): Totals {
    const start = Math.floor(atMs / this.bucketMs) * this.bucketMs;
    const key = `${app}\0${fn}\0${start}`;
    let totals = this.bucketMap.get(key);
    if (!totals) {
      totals = zero();
      this.bucketMap.set(key, totals);
    }
    return totals;
  }
}

/** Reads a container's counters: cumulative CPU ns and memory bytes (nulls when unknown). */
export type UsageReader = () => Promise<{ cpuNs: number | null; memoryBytes: number | null }>;

export interface UsageMeterOptions {
  clock?: Clock;
  /** Default 1000 ms. */
  intervalMs?: number;
}

/** Samples tracked containers every interval and feeds an accumulator. */
export class UsageMeter {
  readonly accumulator: UsageAccumulator;
  private readonly clock: Clock;
  private readonly intervalMs: number;
  private readonly readers = new Map<string, UsageReader>();
  private timer: Timer | null = null;
  private running = false;

  constructor(accumulator = new UsageAccumulator(), options: UsageMeterOptions = {}) {
    this.accumulator = accumulator;
    this.clock = options.clock ?? systemClock;
    this.intervalMs = options.intervalMs ?? 1000;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.arm();
  }

  stop(): void {
    this.running = false;
    this.timer?.cancel();
    this.timer = null;
  }

  /** Meter a container from now (takes its first sample). */
  async track(subject: MeterSubject, read: UsageReader): Promise<void> {
    const sample = await this.sample(read);
    this.accumulator.start(subject, sample);
    this.readers.set(subject.containerId, read);
  }

  /** Take a final sample (while its counters still exist) and stop metering it. */
  async untrack(containerId: string): Promise<void> {
    const read = this.readers.get(containerId);
    if (!read) return;
    this.readers.delete(containerId);
    const sample = await this.sample(read).catch(() => undefined);
    this.accumulator.stop(containerId, sample);
  }

  /** Sample every tracked container once (the timer calls this; tests may too). */
  async tick(): Promise<void> {
    await Promise.all(
      [...this.readers].map(async ([id, read]) => {
        const sample = await this.sample(read).catch(() => null);
        if (sample && this.readers.has(id)) this.accumulator.record(id, sample);
      }),
    );
  }

  totals(filter?: UsageFilter): UsageTotals[] {
    return this.accumulator.totals(filter);
  }

  private async sample(read: UsageReader): Promise<UsageSample> {
    const reading = await read();
    return { atMs: this.clock.now(), ...reading };
  }

  private arm(): void {
    if (!this.running) return;
    this.timer = this.clock.setTimeout(
      () => {
        void this.tick().finally(() => this.arm());
      },
      this.intervalMs,
      { unref: true },
    );
  }
}
