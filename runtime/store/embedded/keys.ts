/**
 * Keys of the embedded store: string values with an optional TTL, and counters on them. Keys
 * share one namespace with lists (`./lists.ts`): `delete`, `ttl` and `keys` see both, and using a
 * key as the other type is an InvalidError.
 */
import { InvalidError } from "../../errors.js";
import { positive } from "../checks.js";
import type { IncrOptions, SetOptions } from "../store.js";
import type { Core } from "./core.js";
import type { Deque } from "./deque.js";
import type { KeyEntry } from "./state.js";

export class KeyValues {
  constructor(private readonly core: Core) {}

  /** The entry of `key` unless it expired (an expired one is deleted). */
  live(key: string): KeyEntry | undefined {
    const entry = this.core.state.keys.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== null && entry.expiresAt <= this.core.clock.now()) {
      this.core.write({ op: "del", k: key });
      return undefined;
    }
    return entry;
  }

  get(key: string): string | null {
    const entry = this.live(key);
    return entry === undefined ? null : stringOf(entry);
  }

  /** False only when `ifAbsent` was set and the key existed. */
  set(key: string, value: string, options: SetOptions): boolean {
    const ttlMs = options.ttlMs === undefined ? undefined : positive("ttlMs", options.ttlMs);
    if (options.ifAbsent && this.live(key) !== undefined) return false;
    this.put(key, value, ttlMs === undefined ? undefined : this.core.clock.now() + ttlMs);
    return true;
  }

  /** Write a string value expiring at `expiresAt` (none when undefined), and track that. */
  put(key: string, value: string, expiresAt: number | undefined): void {
    this.core.write({ op: "set", k: key, v: value, x: expiresAt });
    this.core.deadlines.trackKey(this.core.state.keys.get(key)!);
  }

  /** Whether the key existed. */
  delete(key: string): boolean {
    const existed = this.live(key) !== undefined;
    if (existed) this.core.write({ op: "del", k: key });
    return existed;
  }

  /** Live keys (and lists) starting with `prefix`, in lexicographic order; expired ones are deleted. */
  startingWith(prefix: string): string[] {
    const now = this.core.clock.now();
    const found: string[] = [];
    const expired: string[] = [];
    for (const [key, entry] of this.core.state.keys) {
      if (!key.startsWith(prefix)) continue;
      if (entry.expiresAt !== null && entry.expiresAt <= now) expired.push(key);
      else found.push(key);
    }
    for (const key of expired) this.core.write({ op: "del", k: key });
    found.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return found;
  }

  /** Remaining time to live in ms; null when none or no such key. */
  ttl(key: string): number | null {
    const entry = this.live(key);
    return entry?.expiresAt == null ? null : entry.expiresAt - this.core.clock.now();
  }

  /** The new value, or null when a bound refused it (nothing written). */
  incr(key: string, by: number, options: IncrOptions): number | null {
    if (!Number.isSafeInteger(by)) throw new InvalidError(`incr: by must be an integer, got ${by}`);
    return this.add(key, by, options.min, options.max);
  }

  /** Effects' `incr` step: add `by` (the key keeps its TTL) unless the result is below `min`. */
  step(key: string, by: number, min: number | undefined): void {
    this.add(key, by, min, undefined);
  }

  /** Add `by` to the counter, keeping its TTL; null (nothing written) when outside the bounds. */
  private add(
    key: string,
    by: number,
    min: number | undefined,
    max: number | undefined,
  ): number | null {
    const entry = this.live(key);
    const next = (entry === undefined ? 0 : integerOf(key, entry)) + by;
    if ((max !== undefined && next > max) || (min !== undefined && next < min)) return null;
    this.core.write({ op: "set", k: key, v: String(next), x: entry?.expiresAt ?? undefined });
    return next;
  }

  /** Effects' `expire` step: give an existing key or list the TTL `expiresAt`. */
  expire(key: string, expiresAt: number): void {
    const entry = this.live(key);
    if (entry === undefined) return;
    if (typeof entry.value === "string")
      this.core.write({ op: "set", k: key, v: entry.value, x: expiresAt });
    else this.core.write({ op: "lpush", k: key, vs: [], x: expiresAt });
    this.core.deadlines.trackKey(this.core.state.keys.get(key)!);
  }

  /** The deadline of `entry` came. */
  due(entry: KeyEntry, now: number): void {
    if (this.core.state.keys.get(entry.key) !== entry || entry.expiresAt === null) return;
    if (entry.expiresAt > now) this.core.deadlines.trackKey(entry);
    else this.core.write({ op: "del", k: entry.key });
  }
}

/** The integer a counter key holds; InvalidError when it holds something else. */
function integerOf(key: string, entry: KeyEntry): number {
  const text = stringOf(entry);
  const value = Number(text);
  if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(value)) {
    throw new InvalidError(`incr: key ${JSON.stringify(key)} does not hold an integer`);
  }
  return value;
}

function stringOf(entry: KeyEntry): string {
  if (typeof entry.value !== "string")
    throw new InvalidError(`key ${JSON.stringify(entry.key)} holds a list, not a string`);
  return entry.value;
}

export function listOf(entry: KeyEntry): Deque<string> {
  if (typeof entry.value === "string")
    throw new InvalidError(`key ${JSON.stringify(entry.key)} holds a string, not a list`);
  return entry.value;
}
