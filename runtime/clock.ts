/**
 * Time, injectable: everything that waits or expires (TTLs, leases, delays, autoscaler windows)
 * reads the time and sets timers through a `Clock`, so tests drive it without sleeping.
 *
 * Not promised: a timer may fire late (never early by more than the host timer's rounding), so
 * callers re-check `now()` when it fires.
 */

export interface Timer {
  cancel(): void;
}

export interface TimerOptions {
  /** Do not keep the process alive for this timer alone (Node's `unref`). Default false. */
  unref?: boolean;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Call `fn` once, `ms` milliseconds from now. */
  setTimeout(fn: () => void, ms: number, options?: TimerOptions): Timer;
}

/** Node's timers accept at most 2^31 - 1 ms; longer waits fire at once, so cap them (the caller re-arms). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms, options) {
    const handle = setTimeout(fn, Math.min(Math.max(0, ms), MAX_TIMER_MS));
    if (options?.unref) handle.unref();
    return { cancel: () => clearTimeout(handle) };
  },
};
