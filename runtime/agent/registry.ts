/**
 * Small registries the agents list often (deployed apps, live hosts, schedule state, ephemeral
 * objects), each kept in one store hash, so listing one costs the size of the registry and never a
 * scan of the store's whole keyspace (on Redis, `Store.keys` is a SCAN over every key, results
 * and call records included).
 *
 * Promised: `get`, `put`, `add` and `delete` are single atomic store calls on one field; a `put`
 * with `ttlMs` makes the entry absent everywhere once it lapses; `entries` returns every entry
 * present for the whole listing.
 *
 * Not promised: `entries` is not a snapshot. Like `Store.hashScan`, an entry written or deleted
 * while it pages may or may not be in the result, and a value may be older than one written
 * meanwhile; callers that act on a value re-read it (or tolerate acting on the previous one).
 */
import { InternalError } from "../errors.js";
import type { Store } from "../store/store.js";
import { registries } from "./inputs.js";

/** Entries asked for per `hashScan` page. */
const PAGE_SIZE = 500;
/** A listing gives up after this many pages (5,000,000 entries at PAGE_SIZE): it never spins. */
const MAX_PAGES = 10_000;

export class Registry {
  constructor(
    private readonly store: Store,
    /** The store hash that holds the registry (one of `registries` in inputs.ts). */
    readonly hash: string,
  ) {}

  /** The entry's value, null when absent or expired. */
  async get(name: string): Promise<string | null> {
    return this.store.hashGet(this.hash, name);
  }

  /** Write the entry (a plain overwrite); with `ttlMs` it expires that long from now, else never. */
  async put(name: string, value: string, options: { ttlMs?: number } = {}): Promise<void> {
    await this.store.hashSet(
      this.hash,
      [[name, value]],
      options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs },
    );
  }

  /** Write the entry only if it is absent; returns whether it was written. */
  async add(name: string, value: string): Promise<boolean> {
    const result = await this.store.hashSet(this.hash, [[name, value]], { ifAbsent: true });
    return result.ok && result.written > 0;
  }

  /** Remove the entry; returns whether it was there. */
  async delete(name: string): Promise<boolean> {
    return (await this.store.hashDelete(this.hash, name)) !== null;
  }

  /** Every live entry, name to value (see the module comment: not a snapshot). */
  async entries(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    let cursor = "0";
    for (let page = 0; page < MAX_PAGES; page++) {
      const next = await this.store.hashScan(this.hash, cursor, PAGE_SIZE);
      for (const [name, value] of next.entries) out.set(name, value);
      if (next.cursor === "0") return out;
      cursor = next.cursor;
    }
    throw new InternalError(
      `registry ${this.hash}: listing did not finish within ${MAX_PAGES} pages of ${PAGE_SIZE} entries`,
      {
        details: { registry: this.hash, pages: MAX_PAGES },
      },
    );
  }
}

/**
 * Where the registries' entries lived before they moved to hashes: plain keys `<prefix><entry
 * name>`. Hosts are not listed: their keys expired within 10 s.
 */
const LEGACY_PREFIXES: readonly { prefix: string; hash: string }[] = [
  { prefix: "app:", hash: registries.apps },
  { prefix: "schedule:", hash: registries.schedules },
  { prefix: "ephemeral:", hash: registries.ephemeral },
];

/** Set once a store's records are in registries: later agent starts skip the keyspace scans. */
export const LAYOUT_KEY = "layout:registries";

/**
 * Move records an older agent stored as plain keys into their registries, at agent start (one
 * keyspace scan per registry, then never again on that store: {@link LAYOUT_KEY}). Each is copied
 * with `ifAbsent` (an entry already in the registry, written by a newer agent or an earlier
 * migration, wins) and then its key is deleted, so running it again, or on two agents at once,
 * copies nothing twice and loses nothing: a key is deleted only after its value is in the
 * registry. Returns how many keys were moved.
 *
 * Not promised: an agent of the old layout still writing to the same store (unsupported) writes
 * keys that no newer agent reads.
 */
export async function migrateLegacyKeys(store: Store): Promise<number> {
  if ((await store.get(LAYOUT_KEY)) !== null) return 0;
  let moved = 0;
  for (const { prefix, hash } of LEGACY_PREFIXES) {
    for (const key of await store.keys(prefix)) {
      const value = await store.get(key);
      if (value === null) continue; // Moved by another agent meanwhile, or expired.
      await store.hashSet(hash, [[key.slice(prefix.length), value]], { ifAbsent: true });
      if (await store.delete(key)) moved++;
    }
  }
  await store.set(LAYOUT_KEY, new Date().toISOString());
  return moved;
}
