/**
 * Locks of the embedded store: a lock is live until its TTL ends; its holder (owner) may re-take
 * it and gets the same fencing token; a new holder gets a new token from the store's sequence
 * (shared with claim fences, so tokens keep increasing across restarts).
 */
import { positive } from "../checks.js";
import type { Core } from "./core.js";
import type { LockEntry } from "./state.js";

export class Locks {
  constructor(private readonly core: Core) {}

  /** The fencing token, or null when another owner holds the lock. */
  lock(name: string, owner: string, ttlMs: number): number | null {
    positive("ttlMs", ttlMs);
    const now = this.core.clock.now();
    const current = this.core.state.locks.get(name);
    const live = current !== undefined && current.expiresAt > now;
    if (live && current.owner !== owner) return null;
    const token = live ? current.token : this.core.state.seq + 1;
    this.core.write({ op: "lock", n: name, o: owner, t: token, x: now + ttlMs });
    this.core.deadlines.trackLock(this.core.state.locks.get(name)!);
    return token;
  }

  /** Whether `owner` held the lock (and so released it). */
  unlock(name: string, owner: string): boolean {
    const current = this.core.state.locks.get(name);
    const owned =
      current !== undefined && current.owner === owner && current.expiresAt > this.core.clock.now();
    if (owned) this.core.write({ op: "unlock", n: name });
    return owned;
  }

  /** The deadline of `lock` came. */
  due(lock: LockEntry, now: number): void {
    if (this.core.state.locks.get(lock.name) !== lock) return;
    if (lock.expiresAt > now) this.core.deadlines.trackLock(lock);
    // An expired lock is forgotten without a record: replay finds it expired as well.
    else this.core.state.locks.delete(lock.name);
  }
}
