/**
 * Blocked calls of the embedded store (`claim`, `listPop`, `partitionPop` with `waitMs`): served
 * directly, in arrival order, by the call that made something available, with no polling. What
 * a waiter gets is handed over once it is in the log, as any call's result is.
 */
import { Waiter, WaiterIndex } from "../shared/waiters.js";
import type { Core } from "./core.js";

/** A blocked call waiting on `keys` (queues, or pop keys) for up to `max` values. */
export interface Blocked<T> {
  readonly keys: readonly string[];
  readonly max: number;
  readonly waiter: Waiter<T[]>;
}

export class BlockedCalls<T, B extends Blocked<T>> {
  private readonly index = new WaiterIndex<B>();

  constructor(protected readonly core: Core) {}

  /** Block a call (`make` builds its entry around its waiter) until it is finished, times out or aborts. */
  block(
    waitMs: number,
    signal: AbortSignal | undefined,
    make: (waiter: Waiter<T[]>) => B,
  ): Promise<T[]> {
    const entry = make(
      new Waiter<T[]>({
        clock: this.core.clock,
        waitMs,
        signal,
        onStop: () => this.finish(entry, []),
      }),
    );
    this.index.add(entry.keys, entry);
    return entry.waiter.result;
  }

  /** The calls blocked on `key`, oldest first (a live view). */
  on(key: string): Iterable<B> {
    return this.index.on(key);
  }

  /** End a blocked call with `values` (nothing: at once; else once they are in the log). */
  finish(entry: B, values: T[]): void {
    if (!entry.waiter.finish(values.length > 0 ? this.core.durable(values) : values)) return;
    this.index.remove(entry.keys, entry);
  }

  /** End every blocked call with nothing (the store closed). */
  close(): void {
    for (const entry of this.index.all()) this.finish(entry, []);
  }
}

/** A blocked pop: `take` pops up to `max` values of what it waits on (logging the pop). */
export interface PopWaiter extends Blocked<string> {
  readonly take: (max: number) => string[];
}

/** Blocked pops of lists and partitions, each on one pop key. */
export class BlockedPops extends BlockedCalls<string, PopWaiter> {
  wait(
    key: string,
    take: (max: number) => string[],
    max: number,
    waitMs: number,
    signal: AbortSignal | undefined,
  ): Promise<string[]> {
    return this.block(waitMs, signal, (waiter) => ({ keys: [key], take, max, waiter }));
  }

  /** Something was pushed to `key`: serve its blocked pops (oldest first) while values last. */
  wake(key: string): void {
    for (const entry of this.on(key)) {
      const values = entry.take(entry.max);
      if (values.length === 0) return;
      this.finish(entry, values);
    }
  }
}
