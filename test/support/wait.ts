/**
 * Bounded waits for tests: the one way a test waits for a condition (never a bare sleep), and a
 * bound on a promise. Each failure names what was awaited, the bound, and the last error seen.
 */

/**
 * How long a test waits for something that takes a second or two on a quiet machine (a cold
 * start, a call's outcome, a condition) before calling it hung: far above any duration here, also
 * on a machine loaded many times over, and well below the 180 s test limit.
 */
export const NOT_HUNG_MS = 60_000;

export interface WaitOptions {
  /** Give up after this long (default {@link NOT_HUNG_MS}). */
  timeoutMs?: number;
  /** Pause between checks (default 25 ms). */
  intervalMs?: number;
}

/** What a check returns while the condition does not hold yet. */
type NotYet = undefined | false;

/**
 * Run `check` until it returns something other than `undefined` or `false`, and resolve with that.
 * A check that throws has not succeeded yet: it is tried again, and the last error is named if
 * the wait runs out. `options` may be the timeout in milliseconds.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | NotYet | Promise<T | NotYet>,
  options: WaitOptions | number = {},
): Promise<Exclude<T, NotYet>> {
  const { timeoutMs = NOT_HUNG_MS, intervalMs = 25 } =
    typeof options === "number" ? { timeoutMs: options } : options;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value as Exclude<T, NotYet>;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const why =
        lastError === undefined
          ? ""
          : ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** `promise`, or a rejection naming `what` once `ms` have passed. */
export function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
    }),
  ]);
}
