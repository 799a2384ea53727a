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
import {
  InvalidError,
  NotFoundError,
  PayloadTooLargeError,
  ResourceExhaustedError,
} from "../../errors.js";
import { formatDataRef, type DictEntriesResponse, type DictInfo } from "../../protocol.js";
import { formatBytes } from "../../serde.js";
import {
  DEFAULT_DICT_INACTIVITY_EXPIRY_S,
  DEFAULT_DICT_MAX_ENTRIES,
  MAX_DICT_KEY_BYTES,
  MAX_DICT_VALUE_BYTES,
  RESOURCE_NAME_PATTERN,
  type CompiledDictSpec,
} from "../../spec/index.js";
import type { Store } from "../../store/store.js";
import { keys } from "../inputs.js";
import { refOf, type AppLookup, type Ephemerals, type NamedRecord } from "./refs.js";

export type DictSettings = CompiledDictSpec;

interface ResolvedDict {
  ref: string;
  hash: string;
  kind: "app" | "named" | "ephemeral";
  name: string;
  app?: string;
  settings: DictSettings;
  createdAt?: string;
}

export interface DictLookup {
  name: string;
  createIfMissing: boolean;
  maxEntries?: number | undefined;
  inactivityExpiryS?: number | undefined;
}

export class Dicts {
  constructor(
    private readonly store: Store,
    private readonly apps: AppLookup,
    private readonly ephemerals: Ephemerals,
  ) {}

  /** A named dict's info; created first when `createIfMissing` (settings apply only then). */
  async lookup(body: DictLookup): Promise<DictInfo> {
    checkName(body.name, "dict");
    if (body.createIfMissing) {
      const record: NamedRecord<DictSettings> = {
        createdAt: new Date().toISOString(),
        settings: {
          maxEntries: body.maxEntries ?? DEFAULT_DICT_MAX_ENTRIES,
          inactivityExpiryS: body.inactivityExpiryS ?? DEFAULT_DICT_INACTIVITY_EXPIRY_S,
        },
      };
      await this.store.set(keys.namedDict(body.name), JSON.stringify(record), { ifAbsent: true });
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
      len: await this.store.hashLength(dict.hash),
      maxEntries: dict.settings.maxEntries,
      inactivityExpiryS: dict.settings.inactivityExpiryS,
      ...(dict.createdAt ? { createdAt: dict.createdAt } : {}),
    };
  }

  async get(ref: string, key: string): Promise<{ found: boolean; value?: string }> {
    const dict = await this.resolve(ref);
    checkKey(key);
    const value = await this.store.hashGet(dict.hash, key, { idleMs: idleMs(dict) });
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
    const result = await this.store.hashSet(dict.hash, [[body.key, body.value]], {
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
    const result = await this.store.hashSet(dict.hash, entries, {
      idleMs: idleMs(dict),
      maxFields: dict.settings.maxEntries,
    });
    if (!result.ok) throw full(dict, result.count, entries.length);
    return { written: result.written };
  }

  async pop(ref: string, key: string): Promise<{ found: boolean; value?: string }> {
    const dict = await this.resolve(ref);
    checkKey(key);
    const value = await this.store.hashDelete(dict.hash, key);
    return value === null ? { found: false } : { found: true, value };
  }

  async len(ref: string): Promise<number> {
    return this.store.hashLength((await this.resolve(ref)).hash);
  }

  async entries(ref: string, cursor: string, count: number): Promise<DictEntriesResponse> {
    const dict = await this.resolve(ref);
    const page = await this.store.hashScan(dict.hash, cursor, count);
    return { cursor: page.cursor, entries: page.entries };
  }

  async clear(ref: string): Promise<{ cleared: number }> {
    return { cleared: await this.store.hashDrop((await this.resolve(ref)).hash) };
  }

  /** Delete a named or ephemeral dict with its data (a declared one goes with its app). */
  async delete(ref: string): Promise<{ deleted: boolean }> {
    const parsed = refOf(ref);
    switch (parsed.kind) {
      case "app":
        throw new InvalidError(
          `dict ${ref} is declared by app '${parsed.app}': remove it from the app's spec and redeploy to delete it`,
        );
      case "ephemeral":
        return { deleted: await this.ephemerals.delete(parsed.id) };
      case "named": {
        const existed = await this.store.delete(keys.namedDict(parsed.name));
        await this.store.hashDrop(keys.dictHash(ref));
        return { deleted: existed };
      }
    }
  }

  private async resolve(text: string): Promise<ResolvedDict> {
    const ref = refOf(text);
    const canonical = formatDataRef(ref);
    const hash = keys.dictHash(canonical);
    switch (ref.kind) {
      case "app": {
        const spec = this.apps.spec(ref.app);
        const settings = spec.dicts[ref.name];
        if (!settings) {
          const names = Object.keys(spec.dicts).sort();
          throw new NotFoundError(
            `app '${ref.app}' declares no dict '${ref.name}'; its dicts: ${names.join(", ") || "(none)"}`,
          );
        }
        return { ref: canonical, hash, kind: "app", name: ref.name, app: ref.app, settings };
      }
      case "named": {
        const raw = await this.store.get(keys.namedDict(ref.name));
        if (raw === null)
          throw new NotFoundError(
            `dict '${ref.name}' does not exist: create it with kiln.dict('${ref.name}', { createIfMissing: true })`,
          );
        const record = JSON.parse(raw) as NamedRecord<DictSettings>;
        return {
          ref: canonical,
          hash,
          kind: "named",
          name: ref.name,
          settings: record.settings,
          createdAt: record.createdAt,
        };
      }
      case "ephemeral": {
        const record = await this.ephemerals.get(ref.id, "dict");
        const settings = {
          maxEntries: DEFAULT_DICT_MAX_ENTRIES,
          inactivityExpiryS: DEFAULT_DICT_INACTIVITY_EXPIRY_S,
        };
        return {
          ref: canonical,
          hash,
          kind: "ephemeral",
          name: ref.id,
          settings,
          createdAt: record.createdAt,
        };
      }
    }
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

export function checkName(name: string, kind: string): void {
  if (!RESOURCE_NAME_PATTERN.test(name)) {
    throw new InvalidError(
      `invalid ${kind} name ${JSON.stringify(name)}: use 1-64 letters, digits, "_" or "-", starting with a letter or "_"`,
    );
  }
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
