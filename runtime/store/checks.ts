/**
 * Argument checks shared by both stores, so a bad value is refused the same way (InvalidError,
 * nothing written) whichever store runs.
 */
import { InvalidError } from "../errors.js";
import type { Effects } from "./store.js";

function ttl(what: string, ms: number | undefined): void {
  if (ms === undefined) return;
  if (!Number.isSafeInteger(ms) || ms <= 0)
    throw new InvalidError(`${what}: ttlMs must be a positive integer, got ${ms}`);
}

export function checkEffects(effects: Effects): void {
  ttl("effects.guard", effects.guard?.ttlMs);
  for (const push of effects.push ?? []) ttl(`effects.push ${push.key}`, push.ttlMs);
  for (const step of effects.incr ?? []) {
    if (!Number.isSafeInteger(step.by))
      throw new InvalidError(`effects.incr ${step.key}: by must be an integer, got ${step.by}`);
    if (step.min !== undefined && !Number.isSafeInteger(step.min)) {
      throw new InvalidError(`effects.incr ${step.key}: min must be an integer, got ${step.min}`);
    }
  }
  for (const expire of effects.expire ?? []) {
    if (expire.ttlMs === undefined)
      throw new InvalidError(`effects.expire ${expire.key}: ttlMs is required`);
    ttl(`effects.expire ${expire.key}`, expire.ttlMs);
  }
}

export function positive(name: string, value: number): number {
  if (!(Number.isFinite(value) && value > 0))
    throw new InvalidError(`${name} must be a positive number of milliseconds, got ${value}`);
  return value;
}

export function nonNegative(name: string, value: number): number {
  if (!(Number.isFinite(value) && value >= 0))
    throw new InvalidError(`${name} must be a non-negative number of milliseconds, got ${value}`);
  return value;
}

export function atLeastOne(name: string, value: number): number {
  if (!(Number.isSafeInteger(value) && value >= 1))
    throw new InvalidError(`${name} must be an integer >= 1, got ${value}`);
  return value;
}

export function atLeastZero(name: string, value: number): number {
  if (!(Number.isSafeInteger(value) && value >= 0))
    throw new InvalidError(`${name} must be an integer >= 0, got ${value}`);
  return value;
}

/** A blocking read's options, checked: at most `max` (>= 1), waiting up to `waitMs`, until `signal`. */
export function waitOptions(options: {
  max?: number;
  waitMs?: number;
  signal?: AbortSignal | undefined;
}): {
  max: number;
  waitMs: number;
  signal: AbortSignal | undefined;
} {
  return {
    max: atLeastOne("max", options.max ?? 1),
    waitMs: nonNegative("waitMs", options.waitMs ?? 0),
    signal: options.signal,
  };
}
