/**
 * The usage ledger: metered usage kept in the store, so that it outlives the agent that metered it
 * and `GET /v1/usage` on any agent answers for every agent on the store.
 *
 * - Every FLUSH_MS (2 s), before each read, and at a graceful stop, what the local accumulator
 *   (`UsageMeter`) gained since the last flush is added to counters in the store, in one atomic
 *   `apply` (counter steps, their expiry and a guard key). Agents sharing a store add to the same
 *   counters, so none overwrites another.
 * - Keys: `usage:<app>:<fn>:<bucket start ms>:<figure>`, one integer counter per (app, function,
 *   minute bucket, figure) in exact integer units: micro-seconds for container, CPU, billed CPU and
 *   GPU seconds, MiB-milliseconds for memory and billed memory. Buckets are listed by the hash
 *   `usage:buckets` (field `<app>:<fn>:<bucket start ms>`), so reads never scan the key space.
 *   A flush sends each bucket's rounded total minus what it sent before, so rounding never
 *   accumulates: the store holds each bucket's total rounded once.
 * - Retention: a bucket's counters expire RETENTION_MS (90 days) after the flush that last wrote
 *   them, its index field 90 days after the first (a bucket's flushes end within seconds of its
 *   minute).
 * - Lost on kill -9: what was metered since the last flush: each container's last FLUSH_MS (2 s)
 *   and the part of a sampling interval (1 s) not yet sampled. A flush whose answer was lost (the store went away mid-call) is
 *   retried with the same guard key, so it is counted once, if the retry lands within the
 *   guard's 10 minutes (GUARD_TTL_MS; a busy agent keeps about 300 guard keys alive).
 * - A read costs one scan of the index and six counters per matching bucket (at most 129,600
 *   buckets per function for 90 days of minutes).
 */
import { systemClock, type Clock, type Timer } from "../clock.js";
import type {
  UsageAccumulator,
  UsageFigures,
  UsageFilter,
  UsageTotals,
} from "../containers/metering.js";
import type { Effects, Store } from "../store/store.js";

export const FLUSH_MS = 2_000;
export const RETENTION_MS = 90 * 86_400_000;
const GUARD_TTL_MS = 600_000;
/** The hash that lists buckets (tests drop it to empty a shared store). */
export const USAGE_INDEX = "usage:buckets";
const SCAN_PAGE = 1_000;
const READ_CHUNK = 1_200;

/** Each figure and how many store units make one of the accumulator's. */
const FIGURES: readonly (readonly [keyof UsageFigures, number])[] = [
  ["containerSeconds", 1e6],
  ["cpuSeconds", 1e6],
  ["billedCpuSeconds", 1e6],
  ["memoryMiBSeconds", 1e3],
  ["billedMemoryMiBSeconds", 1e3],
  ["gpuSeconds", 1e6],
];

type Units = number[]; // in FIGURES order

interface BucketRef {
  app: string;
  fn: string;
  startMs: number;
}

interface Row extends BucketRef {
  id: string;
  /** What the store holds for the bucket once this batch is applied. */
  units: Units;
}

interface Batch {
  guard: string;
  rows: Row[];
  /** Index fields this batch adds. */
  index: string[];
  effects: Effects;
}

export interface UsageLedgerOptions {
  /** Names this writer's guard keys (the agent id: unique per start). */
  owner: string;
  clock?: Clock;
  flushMs?: number;
  /** A failed periodic flush (it is retried on the next). */
  onError?: (error: unknown) => void;
}

const bucketId = (b: BucketRef): string => `${b.app}:${b.fn}:${b.startMs}`;
const counterKey = (b: BucketRef, figure: string): string => `usage:${bucketId(b)}:${figure}`;

export class UsageLedger {
  /** Per bucket id: the units the store holds from this writer. */
  private readonly flushed = new Map<string, Units>();
  /** Bucket ids this writer has put in the index. */
  private readonly indexed = new Set<string>();
  private readonly clock: Clock;
  private readonly flushMs: number;
  private pending: Batch | null = null;
  private sequence = 0;
  private chain: Promise<void> = Promise.resolve();
  private timer: Timer | null = null;
  private running = false;
  private failing = false;

  constructor(
    private readonly store: Store,
    private readonly accumulator: UsageAccumulator,
    private readonly options: UsageLedgerOptions,
  ) {
    this.clock = options.clock ?? systemClock;
    this.flushMs = options.flushMs ?? FLUSH_MS;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.arm();
  }

  /** Stop the timer and flush what is left. */
  async stop(): Promise<void> {
    this.running = false;
    this.timer?.cancel();
    this.timer = null;
    await this.flush();
  }

  /** Write what was metered since the last flush (flushes run one at a time). */
  flush(): Promise<void> {
    const run = this.chain.then(() => this.flushOnce());
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Totals per app and function from the store (every writer's), after flushing this one's. */
  async totals(filter: UsageFilter = {}): Promise<UsageTotals[]> {
    await this.flush();
    const bucketMs = this.accumulator.bucketMs;
    const buckets = (await this.buckets()).filter(
      (b) =>
        (filter.app === undefined || b.app === filter.app) &&
        (filter.fn === undefined || b.fn === filter.fn) &&
        (filter.sinceMs === undefined || b.startMs + bucketMs > filter.sinceMs),
    );
    const keys = buckets.flatMap((b) => FIGURES.map(([figure]) => counterKey(b, figure)));
    const values: (string | null)[] = [];
    for (let at = 0; at < keys.length; at += READ_CHUNK)
      values.push(...(await this.store.getMany(keys.slice(at, at + READ_CHUNK))));
    const sums = new Map<string, { app: string; fn: string; units: bigint[] }>();
    buckets.forEach((b, i) => {
      const own = values.slice(i * FIGURES.length, (i + 1) * FIGURES.length);
      if (own.every((v) => v === null)) return; // expired, or indexed by a flush that failed
      const key = `${b.app}:${b.fn}`;
      const row = sums.get(key) ?? { app: b.app, fn: b.fn, units: FIGURES.map(() => 0n) };
      own.forEach((v, f) => {
        if (v !== null) row.units[f] = (row.units[f] ?? 0n) + BigInt(v);
      });
      sums.set(key, row);
    });
    return [...sums.values()]
      .map(({ app, fn, units }) => {
        const totals = { app, fn } as UsageTotals;
        FIGURES.forEach(([figure, scale], f) => {
          totals[figure] = Number(units[f] ?? 0n) / scale;
        });
        return totals;
      })
      .sort((a, b) => a.app.localeCompare(b.app) || a.fn.localeCompare(b.fn));
  }

  /** Every (app, function) with usage in the store (from the index alone). */
  async metered(): Promise<{ app: string; fn: string }[]> {
    await this.flush();
    const pairs = new Map<string, { app: string; fn: string }>();
    for (const b of await this.buckets()) pairs.set(`${b.app}:${b.fn}`, { app: b.app, fn: b.fn });
    return [...pairs.values()];
  }

  /** The indexed buckets, each once (a Redis scan may repeat a field). */
  private async buckets(): Promise<BucketRef[]> {
    const seen = new Set<string>();
    const found: BucketRef[] = [];
    let cursor = "0";
    do {
      const page = await this.store.hashScan(USAGE_INDEX, cursor, SCAN_PAGE);
      cursor = page.cursor;
      for (const [field] of page.entries) {
        if (seen.has(field)) continue;
        seen.add(field);
        const [app, fn, start] = field.split(":");
        if (app === undefined || fn === undefined || start === undefined) continue;
        found.push({ app, fn, startMs: Number(start) });
      }
    } while (cursor !== "0");
    return found;
  }

  private async flushOnce(): Promise<void> {
    // A batch whose write failed goes first, unchanged: its guard tells whether it already landed.
    if (this.pending) await this.write(this.pending);
    const batch = this.collect();
    if (!batch) return;
    this.pending = batch;
    await this.write(batch);
  }

  /** What changed since the last flush; old buckets that are fully written leave memory. */
  private collect(): Batch | null {
    const now = this.clock.now();
    const bucketMs = this.accumulator.bucketMs;
    const rows: Row[] = [];
    const incr: { key: string; by: number }[] = [];
    for (const bucket of [...this.accumulator.buckets()]) {
      const id = bucketId(bucket);
      const units = FIGURES.map(([figure, scale]) => Math.round(bucket.figures[figure] * scale));
      const before = this.flushed.get(id);
      let changed = false;
      FIGURES.forEach(([figure], f) => {
        const by = (units[f] ?? 0) - (before?.[f] ?? 0);
        if (by === 0) return;
        changed = true;
        incr.push({ key: counterKey(bucket, figure), by });
      });
      if (changed) rows.push({ ...bucket, id, units });
      else if (bucket.startMs + 2 * bucketMs <= now) {
        // Its minute is over (samples land in the minute they are taken) and the store has it all.
        this.accumulator.forget(bucket.app, bucket.fn, bucket.startMs);
        this.flushed.delete(id);
        this.indexed.delete(id);
      }
    }
    if (rows.length === 0) return null;
    this.sequence += 1;
    const guard = `usage:flush:${this.options.owner}:${this.sequence}`;
    return {
      guard,
      rows,
      index: rows.filter((r) => !this.indexed.has(r.id)).map((r) => r.id),
      effects: {
        guard: { key: guard, value: "1", ttlMs: GUARD_TTL_MS },
        incr,
        expire: incr.map(({ key }) => ({ key, ttlMs: RETENTION_MS })),
      },
    };
  }

  private async write(batch: Batch): Promise<void> {
    // The index first: a field whose counters never came is read as nothing.
    if (batch.index.length > 0) {
      await this.store.hashSet(
        USAGE_INDEX,
        batch.index.map((id) => [id, ""] as const),
        { ifAbsent: true, ttlMs: RETENTION_MS },
      );
      for (const id of batch.index) this.indexed.add(id);
    }
    // False: the guard was there, so an earlier try of this batch was applied.
    await this.store.apply(batch.effects);
    for (const row of batch.rows) this.flushed.set(row.id, row.units);
    this.pending = null;
  }

  private arm(): void {
    if (!this.running) return;
    this.timer = this.clock.setTimeout(
      () => {
        void this.flush()
          .then(
            () => {
              this.failing = false;
            },
            (error: unknown) => {
              // Said once per outage, not every flush.
              if (!this.failing) this.options.onError?.(error);
              this.failing = true;
            },
          )
          .finally(() => this.arm());
      },
      this.flushMs,
      { unref: true },
    );
  }
}
