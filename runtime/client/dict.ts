/**
 * A dict: a durable key-value map kept by the agent's store, shared by every process that names
 * it. `kiln.dict(app, name)` for a dict the app declares, `kiln.dict(name, { createIfMissing })`
 * for a named one, `await kiln.ephemeralDict()` for one deleted on `close()` (or when this process
 * stops sending heartbeats).
 *
 * Keys and values are any value the serializer keeps (Date, Map, Set, BigInt, Buffer, nested
 * objects...). Keys are matched by value: `{ a: 1, b: 2 }` and `{ b: 2, a: 1 }` are the same key,
 * and so are two Maps or Sets with the same entries in another order, and `0` and `-0`.
 *
 * What you get is a copy: mutating a value returned by `get` does not change the stored one;
 * `put` it back.
 *
 * Entries expire after the dict's inactivity expiry (7 days by default) without a `put`, `get`
 * or `contains`; `put(k, v, { ttlS })` also expires one `ttlS` after the put, whatever reads it.
 * Limits (typed errors naming them): values 1 MiB and keys 64 KiB encoded (PayloadTooLargeError),
 * `maxEntries` per dict (10,000,000 by default, ResourceExhaustedError).
 *
 * Not promised: iteration is not a snapshot (entries written meanwhile may or may not appear; on a
 * Redis store an entry may appear twice while the dict grows); `update` of more than 10,000
 * entries is sent in parts, each atomic on its own.
 */
import { InvalidError, PayloadTooLargeError } from "../errors.js";
import type { DictEntriesResponse, DictInfo } from "../protocol.js";
import { decode, encode, formatBytes } from "../serde.js";
import {
  MAX_DICT_KEY_BYTES,
  MAX_DICT_UPDATE_ENTRIES,
  MAX_DICT_VALUE_BYTES,
} from "../spec/limits.js";
import type { AgentHttp, HttpMethod } from "./http.js";

export interface DictPutOptions {
  /** Leave an existing entry as it is (`put` then returns false). */
  skipIfExists?: boolean;
  /** Expire this entry this many seconds after the put, whether read or not. */
  ttlS?: number;
}

export interface DictOptions {
  /** Create the named dict on first use if it does not exist. Default false: NotFoundError. */
  createIfMissing?: boolean;
  /** For a dict created now: most entries. Default 10,000,000. */
  maxEntries?: number;
  /** For a dict created now: seconds an entry may go unread and unwritten. Default 604,800 (7 days). */
  inactivityExpiryS?: number;
}

/** Page size of `keys()` / `values()` / `items()`. */
const PAGE = 100;
/** Keep one update request well under the agent's body limit. */
const MAX_UPDATE_BYTES = 16 * 1024 * 1024;

export class Dict<K = unknown, V = unknown> {
  private ready: Promise<void> | null;

  /** @internal Use `kiln.dict()` / `kiln.ephemeralDict()`. */
  constructor(
    private readonly http: AgentHttp,
    /** The dict's reference: `app:<app>:<name>`, `named:<name>` or `ephemeral:<id>`. */
    readonly ref: string,
    private readonly options: { ensure?: () => Promise<unknown>; close?: () => Promise<void> } = {},
  ) {
    this.ready = null;
  }

  private get path(): string {
    return `/v1/dicts/${encodeURIComponent(this.ref)}`;
  }

  private async request<T>(
    method: HttpMethod,
    op: string,
    body?: unknown,
    query?: Record<string, string | number>,
  ): Promise<T> {
    if (this.options.ensure) {
      this.ready ??= this.options.ensure().then(
        () => undefined,
        (error: unknown) => {
          this.ready = null; // try again next time
          throw error;
        },
      );
      await this.ready;
    }
    return this.http.request<T>(method, op === "" ? this.path : `${this.path}/${op}`, {
      ...(body === undefined ? {} : { body }),
      ...(query === undefined ? {} : { query }),
    });
  }

  /** The value of `key`, or `fallback` (undefined if not given) when there is none. */
  async get(key: K): Promise<V | undefined>;
  async get<D>(key: K, fallback: D): Promise<V | D>;
  async get(key: K, fallback?: unknown): Promise<unknown> {
    const result = await this.request<{ found: boolean; value?: string }>("POST", "get", {
      key: keyOf(key),
    });
    return result.found ? decode(result.value!) : fallback;
  }

  async contains(key: K): Promise<boolean> {
    return (await this.request<{ found: boolean }>("POST", "contains", { key: keyOf(key) })).found;
  }

  /** Set `key` to `value`. Returns false when `skipIfExists` left an existing entry. */
  async put(key: K, value: V, options: DictPutOptions = {}): Promise<boolean> {
    if (options.ttlS !== undefined && !(Number.isFinite(options.ttlS) && options.ttlS > 0)) {
      throw new InvalidError(`put: ttlS must be a positive number of seconds, got ${options.ttlS}`);
    }
    const body = {
      key: keyOf(key),
      value: valueOf(value),
      ...(options.skipIfExists ? { skipIfExists: true } : {}),
      ...(options.ttlS === undefined ? {} : { ttlS: options.ttlS }),
    };
    return (await this.request<{ written: boolean }>("POST", "put", body)).written;
  }

  /** Set many entries: a Map, an iterable of [key, value], or a plain object (its string keys). */
  async update(entries: Iterable<readonly [K, V]> | Record<string, V>): Promise<void> {
    const list: [string, string][] = [];
    const pairs = isIterable(entries)
      ? entries
      : (Object.entries(entries) as unknown as Iterable<readonly [K, V]>);
    for (const [key, value] of pairs) list.push([keyOf(key), valueOf(value)]);
    let chunk: [string, string][] = [];
    let bytes = 0;
    for (const entry of list) {
      const size = entry[0].length + entry[1].length + 8;
      if (
        chunk.length >= MAX_DICT_UPDATE_ENTRIES ||
        (chunk.length > 0 && bytes + size > MAX_UPDATE_BYTES)
      ) {
        await this.request("POST", "update", { entries: chunk });
        chunk = [];
        bytes = 0;
      }
      chunk.push(entry);
      bytes += size;
    }
    if (chunk.length > 0) await this.request("POST", "update", { entries: chunk });
  }

  /** Remove `key` and return its value, or `fallback` (undefined if not given) when there was none. */
  async pop(key: K): Promise<V | undefined>;
  async pop<D>(key: K, fallback: D): Promise<V | D>;
  async pop(key: K, fallback?: unknown): Promise<unknown> {
    const result = await this.request<{ found: boolean; value?: string }>("POST", "pop", {
      key: keyOf(key),
    });
    return result.found ? decode(result.value!) : fallback;
  }

  async len(): Promise<number> {
    return (await this.request<{ len: number }>("GET", "len")).len;
  }

  /** Remove every entry; returns how many there were. */
  async clear(): Promise<number> {
    return (await this.request<{ cleared: number }>("POST", "clear")).cleared;
  }

  async info(): Promise<DictInfo> {
    return this.request<DictInfo>("GET", "");
  }

  async *items(): AsyncGenerator<[K, V], void, undefined> {
    let cursor = "0";
    do {
      const page = await this.request<DictEntriesResponse>("GET", "entries", undefined, {
        cursor,
        count: PAGE,
      });
      for (const [key, value] of page.entries) yield [decode<K>(key), decode<V>(value)];
      cursor = page.cursor;
    } while (cursor !== "0");
  }

  async *keys(): AsyncGenerator<K, void, undefined> {
    for await (const [key] of this.items()) yield key;
  }

  async *values(): AsyncGenerator<V, void, undefined> {
    for await (const [, value] of this.items()) yield value;
  }

  [Symbol.asyncIterator](): AsyncGenerator<K, void, undefined> {
    return this.keys();
  }

  /** An ephemeral dict: delete it now. Other dicts: nothing to do (they outlive this handle). */
  async close(): Promise<void> {
    await this.options.close?.();
  }
}

/**
 * The canonical encoding of a dict key: equal values encode equally (object keys sorted, Map and
 * Set entries sorted by their own encoding, -0 as 0, shared references copied).
 */
export function canonicalKey(key: unknown): string {
  return encode(canonical(key, new Set()));
}

function keyOf(key: unknown): string {
  return checkSize(canonicalKey(key), "dict key", MAX_DICT_KEY_BYTES, "MAX_DICT_KEY_BYTES");
}

function valueOf(value: unknown): string {
  return checkSize(encode(value), "dict value", MAX_DICT_VALUE_BYTES, "MAX_DICT_VALUE_BYTES");
}

/** Refuse an encoded key, value or item over its limit before sending it (the agent refuses it too). */
export function checkSize(text: string, what: string, limit: number, limitName: string): string {
  const bytes = Buffer.byteLength(text);
  if (bytes > limit) {
    throw new PayloadTooLargeError(
      `${what} is ${formatBytes(bytes)} encoded, over the ${formatBytes(limit)} limit (${limitName}): store a reference (a path, a URL) instead`,
      {
        details: { bytes, limit, limitName },
      },
    );
  }
  return text;
}

function canonical(value: unknown, path: Set<object>): unknown {
  if (typeof value === "number") return Object.is(value, -0) ? 0 : value;
  if (value === null || typeof value !== "object") return value;
  if (path.has(value)) throw new InvalidError("dict keys cannot contain cycles");
  path.add(value);
  try {
    if (Array.isArray(value)) return Array.from(value, (item: unknown) => canonical(item, path));
    if (value instanceof Map) {
      const entries = [...value].map(([k, v]) => [canonical(k, path), canonical(v, path)] as const);
      return new Map(sortBy(entries, ([k]) => encode(k)));
    }
    if (value instanceof Set)
      return new Set(
        sortBy(
          [...value].map((item) => canonical(item, path)),
          (item) => encode(item),
        ),
      );
    if (value instanceof Date) return new Date(value.getTime());
    if (Buffer.isBuffer(value)) return Buffer.from(value);
    if (ArrayBuffer.isView(value) && "slice" in value)
      return (value as unknown as { slice(): unknown }).slice();
    if (value instanceof Error || value instanceof RegExp || value instanceof URL) return value;
    const out: Record<string, unknown> = {};
    for (const name of Object.keys(value).sort())
      out[name] = canonical((value as Record<string, unknown>)[name], path);
    return out;
  } finally {
    path.delete(value);
  }
}

function sortBy<T>(items: T[], by: (item: T) => string): T[] {
  const keyed = items.map((item) => ({ item, key: by(item) }));
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return keyed.map((k) => k.item);
}

function isIterable(value: unknown): value is Iterable<readonly [unknown, unknown]> {
  return typeof (value as { [Symbol.iterator]?: unknown })?.[Symbol.iterator] === "function";
}
