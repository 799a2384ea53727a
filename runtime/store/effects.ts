/**
 * Checks on {@link Effects} shared by both stores, so a bad value is refused the same way
 * (InvalidError, nothing written) whichever store runs.
 */
import { InvalidError } from "../errors.js";
import type { Effects } from "./store.js";

function ttl(what: string, ms: number | undefined): void {
  if (ms === undefined) return;
  if (!Number.isSafeInteger(ms) || ms <= 0) throw new InvalidError(`${what}: ttlMs must be a positive integer, got ${ms}`);
}

export function checkEffects(effects: Effects): void {
  ttl("effects.guard", effects.guard?.ttlMs);
  for (const push of effects.push ?? []) ttl(`effects.push ${push.key}`, push.ttlMs);
  for (const step of effects.incr ?? []) {
    if (!Number.isSafeInteger(step.by)) throw new InvalidError(`effects.incr ${step.key}: by must be an integer, got ${step.by}`);
    if (step.min !== undefined && !Number.isSafeInteger(step.min)) {
      throw new InvalidError(`effects.incr ${step.key}: min must be an integer, got ${step.min}`);
    }
  }
  for (const expire of effects.expire ?? []) {
    if (expire.ttlMs === undefined) throw new InvalidError(`effects.expire ${expire.key}: ttlMs is required`);
    ttl(`effects.expire ${expire.key}`, expire.ttlMs);
  }
}
