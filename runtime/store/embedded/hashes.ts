/**
 * Hashes (dicts) of the embedded store: fields whose deadline is the earlier of a fixed TTL and
 * an inactivity deadline that writes (and reads passing `idleMs`) move; scanned in insertion
 * order, the cursor being a field's insertion sequence. A read's refresh is logged only when it
 * moves the deadline by enough to matter (see the Store contract).
 */
import { InvalidError } from "../../errors.js";
import { atLeastOne, atLeastZero, positive } from "../checks.js";
import type { HashReadOptions, HashScanPage, HashSetOptions, HashSetResult } from "../store.js";
import type { Core } from "./core.js";
import type { HashEntryRecord, HashField } from "./state.js";

export class Hashes {
  constructor(private readonly core: Core) {}

  get(hash: string, field: string, options: HashReadOptions): string | null {
    const idleMs = options.idleMs === undefined ? undefined : positive("idleMs", options.idleMs);
    const entry = this.live(hash, field);
    if (entry && idleMs !== undefined) {
      let deadline = this.core.clock.now() + idleMs;
      if (entry.fixed !== null && entry.fixed < deadline) deadline = entry.fixed;
      if (entry.deadline === null || deadline - entry.deadline >= touchStep(idleMs)) {
        this.core.write({ op: "htouch", k: hash, f: field, d: deadline });
        this.core.deadlines.trackField(entry);
      }
    }
    return entry?.value ?? null;
  }

  set(
    hash: string,
    entries: readonly (readonly [string, string])[],
    options: HashSetOptions,
  ): HashSetResult {
    const ttlMs = options.ttlMs === undefined ? undefined : positive("ttlMs", options.ttlMs);
    const idleMs = options.idleMs === undefined ? undefined : positive("idleMs", options.idleMs);
    const maxFields =
      options.maxFields === undefined ? undefined : atLeastZero("maxFields", options.maxFields);
    this.core.deadlines.catchUp();
    const chosen = new Map<string, string>();
    let added = 0;
    for (const [field, value] of entries) {
      if (options.ifAbsent && chosen.has(field)) continue;
      const live = this.live(hash, field) !== undefined;
      if (options.ifAbsent && live) continue;
      if (!live && !chosen.has(field)) added++;
      chosen.set(field, value);
    }
    const count = this.core.state.hashes.get(hash)?.fields.size ?? 0;
    if (maxFields !== undefined && count + added > maxFields) return { ok: false, count };
    if (chosen.size > 0) {
      const now = this.core.clock.now();
      const fixed = ttlMs === undefined ? undefined : now + ttlMs;
      const idle = idleMs === undefined ? undefined : now + idleMs;
      const deadline =
        fixed === undefined ? idle : idle === undefined ? fixed : Math.min(fixed, idle);
      const es: HashEntryRecord[] = [...chosen];
      this.core.write({ op: "hset", k: hash, es, d: deadline, x: fixed });
      const state = this.core.state.hashes.get(hash)!;
      if (deadline !== undefined)
        for (const field of chosen.keys()) this.core.deadlines.trackField(state.fields.get(field)!);
    }
    return { ok: true, written: chosen.size };
  }

  /** The removed field's value; null when absent or expired. */
  delete(hash: string, field: string): string | null {
    const entry = this.live(hash, field);
    if (entry) this.core.write({ op: "hdel", k: hash, f: field });
    return entry?.value ?? null;
  }

  length(hash: string): number {
    this.core.deadlines.catchUp();
    return this.core.state.hashes.get(hash)?.fields.size ?? 0;
  }

  scan(hash: string, cursor: string, count: number): HashScanPage {
    if (!/^\d+$/.test(cursor))
      throw new InvalidError(
        `hashScan: cursor must be one returned by a previous page (or "0"), got ${JSON.stringify(cursor)}`,
      );
    const n = atLeastOne("count", count);
    const state = this.core.state.hashes.get(hash);
    if (!state) return { cursor: "0", entries: [] };
    const now = this.core.clock.now();
    const { fields, done } = state.page(Number(cursor), n);
    const entries: [string, string][] = [];
    const expired: string[] = [];
    for (const f of fields) {
      if (f.deadline !== null && f.deadline <= now) expired.push(f.field);
      else entries.push([f.field, f.value]);
    }
    const next = done || fields.length === 0 ? "0" : String(fields[fields.length - 1]!.seq);
    for (const field of expired) this.core.write({ op: "hdel", k: hash, f: field });
    return { cursor: next, entries };
  }

  /** How many live fields the dropped hash had. */
  drop(hash: string): number {
    this.core.deadlines.catchUp();
    const count = this.core.state.hashes.get(hash)?.fields.size ?? 0;
    if (this.core.state.hashes.has(hash)) this.core.write({ op: "hdrop", k: hash });
    return count;
  }

  /** The deadline of `entry` came. */
  due(entry: HashField, now: number): void {
    if (
      this.core.state.hashes.get(entry.hash)?.fields.get(entry.field) !== entry ||
      entry.deadline === null
    )
      return;
    if (entry.deadline > now) this.core.deadlines.trackField(entry);
    else this.core.write({ op: "hdel", k: entry.hash, f: entry.field });
  }

  /** The field unless it expired (an expired one is deleted). */
  private live(hash: string, field: string): HashField | undefined {
    const entry = this.core.state.hashes.get(hash)?.fields.get(field);
    if (entry === undefined) return undefined;
    if (entry.deadline !== null && entry.deadline <= this.core.clock.now()) {
      this.core.write({ op: "hdel", k: hash, f: field });
      return undefined;
    }
    return entry;
  }
}

/** The least a read must move a field's deadline to be logged: 1 % of idleMs, at least 1 s, at most 10 %. */
function touchStep(idleMs: number): number {
  return Math.min(Math.max(1000, idleMs / 100), idleMs / 10);
}
