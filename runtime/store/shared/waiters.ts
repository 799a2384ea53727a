/**
 * Blocked calls (a claim, a pop) waiting for something to arrive. A {@link Waiter} ends exactly
 * once: with what it was given, or at its timeout or its signal's abort (`onStop`), or with an
 * error. A {@link WaiterIndex} finds the waiters on a queue or key, oldest first.
 */
import type { Clock, Timer } from "../../clock.js";

export interface WaiterOptions {
  clock: Clock;
  /** Stop after this many ms (> 0). */
  waitMs: number;
  /** Stop when it aborts (an already aborted signal is the caller's to check first). */
  signal: AbortSignal | undefined;
  /**
   * Called once, at the timeout or on abort, while the waiter has not ended: it ends the waiter
   * (`finish` with nothing), or {@link Waiter.disarm}s it to end it later.
   */
  onStop: () => void;
}

export class Waiter<T> {
  /** What the blocked call returns. */
  readonly result: Promise<T>;
  private resolve!: (value: T | PromiseLike<T>) => void;
  private reject!: (error: unknown) => void;
  private ended = false;
  private timer: Timer | null;
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort: () => void;

  constructor(options: WaiterOptions) {
    this.result = new Promise<T>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.signal = options.signal;
    this.onAbort = () => options.onStop();
    this.timer = options.clock.setTimeout(() => {
      this.timer = null;
      options.onStop();
    }, options.waitMs);
    this.signal?.addEventListener("abort", this.onAbort, { once: true });
  }

  /** Whether it has ended (finished or failed). */
  get done(): boolean {
    return this.ended;
  }

  /** End with `value` (a promise: once that resolves); false when it had ended already. */
  finish(value: T | Promise<T>): boolean {
    if (!this.end()) return false;
    this.resolve(value);
    return true;
  }

  /** End with `error`; false when it had ended already. */
  fail(error: unknown): boolean {
    if (!this.end()) return false;
    this.reject(error);
    return true;
  }

  /** Stop its timeout and abort listener without ending it (something in flight ends it). */
  disarm(): void {
    this.timer?.cancel();
    this.timer = null;
    this.signal?.removeEventListener("abort", this.onAbort);
  }

  private end(): boolean {
    if (this.ended) return false;
    this.ended = true;
    this.disarm();
    return true;
  }
}

/** Waiters by the keys (queues, lists) they wait on; one waiting on several keys is under each. */
export class WaiterIndex<W> {
  private readonly byKey = new Map<string, Set<W>>();

  add(keys: readonly string[], waiter: W): void {
    for (const key of keys) {
      let set = this.byKey.get(key);
      if (!set) {
        set = new Set();
        this.byKey.set(key, set);
      }
      set.add(waiter);
    }
  }

  remove(keys: readonly string[], waiter: W): void {
    for (const key of keys) {
      const set = this.byKey.get(key);
      if (!set) continue;
      set.delete(waiter);
      if (set.size === 0) this.byKey.delete(key);
    }
  }

  /**
   * The waiters on `key`, oldest first. A live view: one removed while iterating is skipped, and
   * the iteration goes on.
   */
  on(key: string): Iterable<W> {
    return this.byKey.get(key) ?? [];
  }

  /** Whether any waiter waits on `key`. */
  has(key: string): boolean {
    return this.byKey.has(key);
  }

  /** Keys with waiters. */
  keys(): string[] {
    return [...this.byKey.keys()];
  }

  /** Every waiter once, in the order first met by key. */
  all(): W[] {
    const all = new Set<W>();
    for (const set of this.byKey.values()) for (const waiter of set) all.add(waiter);
    return [...all];
  }
}
