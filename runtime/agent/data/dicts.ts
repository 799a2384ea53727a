/**
 * Dicts on the agent: a dict is one store hash (`keys.dictHash(ref)`) whose fields are
 * canonically encoded keys and whose values are serde-encoded values; the client encodes both,
 * the agent checks sizes and limits at the door.
 *
 * - Every entry has the dict's inactivity expiry (`inactivityExpiryS`, 7 days by default):
 *   writes, `get` and `contains` refresh it; iteration and `len` do not.
 * - `put(..., { ttlS })` also gives the entry a fixed expiry, refreshed by nothing.
 * - `maxEntries` is checked atomically with the write (the whole `update` is refused).
 *
 * Not promised: iteration is not a snapshot (entries written meanwhile may or may not appear); on
 * the Redis store an entry may appear twice during a rehash.
 */
import { InvalidError, PayloadTooLargeError, ResourceExhaustedError } from "../../errors.js";
import { formatDataRef, type DictEntriesResponse, type DictInfo } from "../../protocol.js";
import { formatBytes } from "../../serde.js";
import {
  DEFAULT_DICT_INACTIVITY_EXPIRY_S,
  DEFAULT_DICT_MAX_ENTRIES,
  MAX_DICT_KEY_BYTES,
  MAX_DICT_VALUE_BYTES,
  type CompiledDictSpec,
} from "../../spec/index.js";
import type { Store } from "../../store/store.js";
import { keys } from "../inputs.js";
import { DataObjects, checkName, type DataKindSpec, type ResolvedObject } from "./objects.js";
import type { AppLookup, Ephemerals } from "./refs.js";

export type DictSettings = CompiledDictSpec;

type ResolvedDict = ResolvedObject<DictSettings>;

/** A dict is a store hash; an ephemeral one has the default settings. */
const DICTS: DataKindSpec<DictSettings> = {
  kind: "dict",
  dataKey: (ref) => keys.dictHash(ref),
  recordKey: (name) => keys.namedDict(name),
  declared: (spec) => spec.dicts,
  ephemeralSettings: () => ({
    maxEntries: DEFAULT_DICT_MAX_ENTRIES,
    inactivityExpiryS: DEFAULT_DICT_INACTIVITY_EXPIRY_S,
  }),
  drop: (store, hash) => store.hashDrop(hash),
};

export interface DictLookup {
  name: string;
  createIfMissing: boolean;
  maxEntries?: number | undefined;
  inactivityExpiryS?: number | undefined;
}

export class Dicts {
  private readonly objects: DataObjects<DictSettings>;

  constructor(
    private readonly store: Store,
    apps: AppLookup,
    ephemerals: Ephemerals,
  ) {
    this.objects = new DataObjects(store, apps, ephemerals, DICTS);
  }

  /** A named dict's info; created first when `createIfMissing` (settings apply only then). */
  async lookup(body: DictLookup): Promise<DictInfo> {
    checkName(body.name, "dict");
    if (body.createIfMissing) {
      await this.objects.create(body.name, {
        maxEntries: body.maxEntries ?? DEFAULT_DICT_MAX_ENTRIES,
        inactivityExpiryS: body.inactivityExpiryS ?? DEFAULT_DICT_INACTIVITY_EXPIRY_S,
      });
    }
    return this.info(formatDataRef({ kind: "named", name: body.name }));
  }

  async info(ref: string): Promise<DictInfo> {
    const dict = await this.resolve(ref);
    return {
      ref: dict.ref,
      kind: dict.kind,
      name: dict.name,
      ...(dict.app ? { app: dict.app } : {}),
      len: await this.store.hashLength(dict.dataKey),
      maxEntries: dict.settings.maxEntries,
      inactivityExpiryS: dict.settings.inactivityExpiryS,
      ...(dict.createdAt ? { createdAt: dict.createdAt } : {}),
    };
  }

  async get(ref: string, key: string): Promise<{ found: boolean; value?: string }> {
    const dict = await this.resolve(ref);
    checkKey(key);
    const value = await this.store.hashGet(dict.dataKey, key, { idleMs: idleMs(dict) });
    return value === null ? { found: false } : { found: true, value };
  }

  async contains(ref: string, key: string): Promise<{ found: boolean }> {
    return { found: (await this.get(ref, key)).found };
  }

  async put(
    ref: string,
    body: { key: string; value: string; skipIfExists: boolean; ttlS?: number | undefined },
  ): Promise<{ written: boolean }> {
    const dict = await this.resolve(ref);
    checkKey(body.key);
    checkValue(body.value);
    const result = await this.store.hashSet(dict.dataKey, [[body.key, body.value]], {
      ifAbsent: body.skipIfExists,
      idleMs: idleMs(dict),
      ...(body.ttlS === undefined ? {} : { ttlMs: Math.ceil(body.ttlS * 1000) }),
      maxFields: dict.settings.maxEntries,
    });
    if (!result.ok) throw full(dict, result.count);
    return { written: result.written === 1 };
  }

  async update(ref: string, entries: [string, string][]): Promise<{ written: number }> {
    const dict = await this.resolve(ref);
    for (const [key, value] of entries) {
      checkKey(key);
      checkValue(value);
    }
    const result = await this.store.hashSet(dict.dataKey, entries, {
      idleMs: idleMs(dict),
      maxFields: dict.settings.maxEntries,
    });
    if (!result.ok) throw full(dict, result.count, entries.length);
    return { written: result.written };
  }

  async pop(ref: string, key: string): Promise<{ found: boolean; value?: string }> {
    const dict = await this.resolve(ref);
    checkKey(key);
    const value = await this.store.hashDelete(dict.dataKey, key);
    return value === null ? { found: false } : { found: true, value };
  }

  async len(ref: string): Promise<number> {
    return this.store.hashLength((await this.resolve(ref)).dataKey);
  }

  async entries(ref: string, cursor: string, count: number): Promise<DictEntriesResponse> {
    const dict = await this.resolve(ref);
    const page = await this.store.hashScan(dict.dataKey, cursor, count);
    return { cursor: page.cursor, entries: page.entries };
  }

  async clear(ref: string): Promise<{ cleared: number }> {
    return { cleared: await this.store.hashDrop((await this.resolve(ref)).dataKey) };
  }

  /** Delete a named or ephemeral dict with its data (a declared one goes with its app). */
  async delete(ref: string): Promise<{ deleted: boolean }> {
    return this.objects.delete(ref);
  }

  private resolve(text: string): Promise<ResolvedDict> {
    return this.objects.resolve(text);
  }
}

function idleMs(dict: ResolvedDict): number {
  return dict.settings.inactivityExpiryS * 1000;
}

function full(dict: ResolvedDict, count: number, adding = 1): ResourceExhaustedError {
  const limit = dict.settings.maxEntries;
  return new ResourceExhaustedError(
    `dict ${dict.ref} holds ${count} entries; adding ${adding} would pass its limit of ${limit} (maxEntries): delete entries or raise maxEntries`,
    { details: { limit, count, limitName: "maxEntries" } },
  );
}

function checkKey(key: string): void {
  if (key.length === 0)
    throw new InvalidError("dict key: expected a serde-encoded value, got an empty string");
  const bytes = Buffer.byteLength(key);
  if (bytes > MAX_DICT_KEY_BYTES) {
    throw new PayloadTooLargeError(
      `dict key is ${formatBytes(bytes)} encoded, over the ${formatBytes(MAX_DICT_KEY_BYTES)} key limit (MAX_DICT_KEY_BYTES): use a shorter key (a hash of it)`,
      {
        details: { bytes, limit: MAX_DICT_KEY_BYTES, limitName: "MAX_DICT_KEY_BYTES" },
      },
    );
  }
}

function checkValue(value: string): void {
  const bytes = Buffer.byteLength(value);
  if (bytes > MAX_DICT_VALUE_BYTES) {
    throw new PayloadTooLargeError(
      `dict value is ${formatBytes(bytes)} encoded, over the ${formatBytes(MAX_DICT_VALUE_BYTES)} value limit (MAX_DICT_VALUE_BYTES): store a reference (a path, a URL) instead`,
      { details: { bytes, limit: MAX_DICT_VALUE_BYTES, limitName: "MAX_DICT_VALUE_BYTES" } },
    );
  }
}
