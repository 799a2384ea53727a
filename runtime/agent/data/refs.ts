/**
 * Resolving a dict or queue reference (`app:<app>:<name>`, `named:<name>`, `ephemeral:<id>`) to
 * its settings, and the life of ephemeral objects.
 *
 * - Declared ones come from the deployed app's spec (`dicts` / `queues`): NotFoundError names
 *   what the app declares. Their data is dropped when the app is deleted or a redeploy removes them.
 * - Named ones have a settings record in the store, written once (`set ifAbsent`) by the first
 *   `createIfMissing`, so every agent on a shared store agrees on them.
 * - Ephemeral ones have a record (in the `registries.ephemeral` registry, so the sweep lists them
 *   without scanning the store) and a liveness key whose TTL the owner's heartbeats renew; the
 *   scheduler's leader sweeps those whose liveness lapsed ({@link Ephemerals.sweep}).
 *
 * Not promised: a heartbeat that arrives after the TTL lapsed but before the sweep revives the
 * object (the sweep only drops what has no liveness key when it looks).
 */
import { randomUUID } from "node:crypto";
import { NotFoundError } from "../../errors.js";
import { formatDataRef, parseDataRef, type DataRef } from "../../protocol.js";
import type { CompiledAppSpec } from "../../spec/index.js";
import { DEFAULT_EPHEMERAL_TTL_MS } from "../../spec/limits.js";
import type { Store } from "../../store/store.js";
import { keys, registries } from "../inputs.js";
import { Registry } from "../registry.js";

/** What data services need of the deployed apps. */
export interface AppLookup {
  /** The app's spec, or NotFoundError naming the deployed apps. */
  spec(app: string): CompiledAppSpec;
}

export type DataKind = "dict" | "queue";

interface EphemeralRecord {
  kind: DataKind;
  createdAt: string;
  ttlMs: number;
}

/** The settings record of a named dict or queue. */
export interface NamedRecord<S> {
  createdAt: string;
  settings: S;
}

export class Ephemerals {
  /** The records, by id. */
  private readonly records: Registry;

  constructor(private readonly store: Store) {
    this.records = new Registry(store, registries.ephemeral);
  }

  async create(
    kind: DataKind,
    ttlMs = DEFAULT_EPHEMERAL_TTL_MS,
  ): Promise<{ ref: string; ttlMs: number }> {
    const id = randomUUID();
    const record: EphemeralRecord = { kind, createdAt: new Date().toISOString(), ttlMs };
    await this.records.put(id, JSON.stringify(record));
    await this.store.set(keys.ephemeralLive(id), "1", { ttlMs });
    return { ref: formatDataRef({ kind: "ephemeral", id }), ttlMs };
  }

  /** The record of a live ephemeral object of `kind`, or NotFoundError. */
  async get(id: string, kind: DataKind): Promise<EphemeralRecord> {
    const [raw, live] = await Promise.all([
      this.records.get(id),
      this.store.get(keys.ephemeralLive(id)),
    ]);
    const record = raw == null ? null : (JSON.parse(raw) as EphemeralRecord);
    if (record === null || record.kind !== kind)
      throw new NotFoundError(
        `ephemeral ${kind} ${id} does not exist (closed, or deleted after its owner stopped sending heartbeats)`,
      );
    if (live == null)
      throw new NotFoundError(
        `ephemeral ${kind} ${id} expired: its owner sent no heartbeat for ${record.ttlMs} ms`,
      );
    return record;
  }

  async heartbeat(id: string): Promise<{ ttlMs: number }> {
    const raw = await this.records.get(id);
    if (raw === null)
      throw new NotFoundError(
        `ephemeral object ${id} does not exist (closed, or deleted after its owner stopped sending heartbeats)`,
      );
    const record = JSON.parse(raw) as EphemeralRecord;
    await this.store.set(keys.ephemeralLive(id), "1", { ttlMs: record.ttlMs });
    return { ttlMs: record.ttlMs };
  }

  /** Delete an ephemeral object and its data. Returns whether it existed. */
  async delete(id: string): Promise<boolean> {
    const raw = await this.records.get(id);
    if (raw === null) return false;
    await this.drop(id, JSON.parse(raw) as EphemeralRecord);
    return true;
  }

  /** Delete every ephemeral object whose owner stopped heartbeating. Returns how many. */
  async sweep(): Promise<number> {
    const records = await this.records.entries();
    if (records.size === 0) return 0;
    const ids = [...records.keys()];
    const live = await this.store.getMany(ids.map((id) => keys.ephemeralLive(id)));
    let dropped = 0;
    for (const [i, id] of ids.entries()) {
      if (live[i] !== null) continue;
      // Re-read: one closed since the listing has nothing left to drop.
      const raw = await this.records.get(id);
      if (raw === null) continue;
      await this.drop(id, JSON.parse(raw) as EphemeralRecord);
      dropped++;
    }
    return dropped;
  }

  private async drop(id: string, record: EphemeralRecord): Promise<void> {
    const ref = formatDataRef({ kind: "ephemeral", id });
    if (record.kind === "dict") await this.store.hashDrop(keys.dictHash(ref));
    else await this.store.partitionDrop(keys.queueGroup(ref));
    await this.store.delete(keys.ephemeralLive(id));
    await this.records.delete(id);
  }
}

/** Parse a reference and check its kind of name (declared names follow the spec's pattern). */
export function refOf(text: string): DataRef {
  return parseDataRef(text);
}

/** Drop the data of the dicts and queues an app declared but `next` (the redeployed spec, or null: deleted) does not. */
export async function dropRemovedData(
  store: Store,
  app: string,
  previous: CompiledAppSpec,
  next: CompiledAppSpec | null,
): Promise<void> {
  for (const name of Object.keys(previous.dicts ?? {})) {
    if (next?.dicts?.[name]) continue;
    await store.hashDrop(keys.dictHash(formatDataRef({ kind: "app", app, name })));
  }
  for (const name of Object.keys(previous.queues ?? {})) {
    if (next?.queues?.[name]) continue;
    await store.partitionDrop(keys.queueGroup(formatDataRef({ kind: "app", app, name })));
  }
}
