/**
 * Lists of the embedded store: values appended at the tail and popped from the head, on keys
 * (one namespace with `./keys.ts`); a list expires `ttlMs` after the push that set it and is gone
 * once empty. A push serves the list's blocked pops first.
 */
import type { Core } from "./core.js";
import { listOf, type KeyValues } from "./keys.js";
import type { BlockedPops } from "./waiting.js";

export class Lists {
  constructor(
    private readonly core: Core,
    private readonly keys: KeyValues,
    private readonly pops: BlockedPops,
  ) {}

  /** Append `values` (the list then expires at `expiresAt`, when given); the new length. */
  push(key: string, values: readonly string[], expiresAt: number | undefined): number {
    const entry = this.keys.live(key);
    if (entry !== undefined) listOf(entry);
    if (values.length === 0) return entry === undefined ? 0 : listOf(entry).length;
    this.core.write({ op: "lpush", k: key, vs: values, x: expiresAt });
    const pushed = this.core.state.keys.get(key)!;
    const length = listOf(pushed).length;
    this.core.deadlines.trackKey(pushed);
    this.pops.wake(key);
    return length;
  }

  /** Pop up to `max` values; InvalidError when `key` holds a string. */
  pop(key: string, max: number): string[] {
    const entry = this.keys.live(key);
    if (entry !== undefined) listOf(entry);
    return this.take(key, max);
  }

  /** Pop up to `max` values, with no expiry or type check (a blocked pop's take, after `pop`). */
  take(key: string, max: number): string[] {
    const entry = this.core.state.keys.get(key);
    if (entry === undefined || typeof entry.value === "string" || entry.value.length === 0)
      return [];
    const values = entry.value.peek(max);
    this.core.write({ op: "lpop", k: key, n: values.length });
    return values;
  }

  length(key: string): number {
    const entry = this.keys.live(key);
    return entry === undefined ? 0 : listOf(entry).length;
  }
}
