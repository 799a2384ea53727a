/**
 * The writes of an {@link Effects} in the embedded store (`apply`, and `settle` after its ack):
 * guard, pushes, counter steps, expiries, in that order, in one synchronous step (so atomic).
 * Publishing them is the store's, once they are in the log.
 */
import type { Effects } from "../store.js";
import type { Core } from "./core.js";
import type { KeyValues } from "./keys.js";
import type { Lists } from "./lists.js";

/** Write `effects` now; false when the guard found its key (nothing written). */
export function writeEffects(core: Core, keys: KeyValues, lists: Lists, effects: Effects): boolean {
  const now = core.clock.now();
  if (effects.guard) {
    const { key, value, ttlMs } = effects.guard;
    if (keys.live(key) !== undefined) return false;
    keys.put(key, value, ttlMs === undefined ? undefined : now + ttlMs);
  }
  for (const { key, values, ttlMs } of effects.push ?? [])
    lists.push(key, values, ttlMs === undefined ? undefined : now + ttlMs);
  for (const { key, by, min } of effects.incr ?? []) keys.step(key, by, min);
  for (const { key, ttlMs } of effects.expire ?? []) keys.expire(key, now + ttlMs);
  return true;
}
