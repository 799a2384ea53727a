/**
 * A queue: durable FIFO partitions kept by the agent's store, shared by every process that names
 * it. `kiln.queue(app, name)` for a queue the app declares, `kiln.queue(name, { createIfMissing })`
 * for a named one, `await kiln.ephemeralQueue()` for one deleted on `close()` (or when this
 * process stops sending heartbeats).
 *
 * Items are any value the serializer keeps, except `undefined` (what `get` returns when nothing
 * came). Each partition (`partition: "key"`, 1-64 characters; the default partition without one)
 * is FIFO; an item is delivered to exactly one getter. A blocked `get` returns as soon as an item
 * arrives: it long-polls the agent (at most 50 s per request) until `timeoutMs`.
 *
 * Limits (typed errors naming them): 5,000 items per partition and 100,000 partitions per queue
 * (ResourceExhaustedError; `putMany` is all or nothing), items up to 1 MiB encoded
 * (PayloadTooLargeError); a partition is cleared 24 h after its last put (`partitionTtlS`).
 *
 * Not promised: an item taken by a `get` whose connection broke before the reply arrived is lost;
 * `iterate` reads by position, so gets during an iteration shift what it sees.
 */
import { InvalidError } from "../errors.js";
import { MAX_WAIT_MS, type QueueInfo } from "../protocol.js";
import { decode, encode } from "../serde.js";
import {
  MAX_QUEUE_GET_MANY,
  MAX_QUEUE_ITEM_BYTES,
  MAX_QUEUE_MAX_PARTITION_ITEMS,
} from "../spec/limits.js";
import { checkSize } from "./dict.js";
import type { AgentHttp, HttpMethod } from "./http.js";

export interface QueuePartitionOptions {
  /** The partition; the default partition without one. */
  partition?: string;
}

export interface QueueGetOptions extends QueuePartitionOptions {
  /** Wait for an item (default true); false returns at once. */
  block?: boolean;
  /** With `block`, give up after this long (get: undefined, getMany: []). Default: wait until one comes. */
  timeoutMs?: number;
}

export interface QueueOptions {
  /** Create the named queue on first use if it does not exist. Default false: NotFoundError. */
  createIfMissing?: boolean;
  /** For a queue created now: seconds a partition lives after its last put. Default 86,400. */
  partitionTtlS?: number;
  /** For a queue created now: most items per partition (<= 5,000). */
  maxPartitionItems?: number;
  /** For a queue created now: most partitions. Default 100,000. */
  maxPartitions?: number;
}

/** Page size of `iterate()`. */
const PAGE = 100;

export class Queue<T = unknown> {
  private ready: Promise<void> | null = null;

  /** @internal Use `kiln.queue()` / `kiln.ephemeralQueue()`. */
  constructor(
    private readonly http: AgentHttp,
    /** The queue's reference: `app:<app>:<name>`, `named:<name>` or `ephemeral:<id>`. */
    readonly ref: string,
    private readonly options: { ensure?: () => Promise<unknown>; close?: () => Promise<void> } = {},
  ) {}

  private get path(): string {
    return `/v1/queues/${encodeURIComponent(this.ref)}`;
  }

  private async request<R>(
    method: HttpMethod,
    op: string,
    body?: unknown,
    query?: Record<string, string | number | boolean | undefined>,
  ): Promise<R> {
    if (this.options.ensure) {
      this.ready ??= this.options.ensure().then(
        () => undefined,
        (error: unknown) => {
          this.ready = null;
          throw error;
        },
      );
      await this.ready;
    }
    return this.http.request<R>(method, op === "" ? this.path : `${this.path}/${op}`, {
      ...(body === undefined ? {} : { body }),
      ...(query === undefined ? {} : { query }),
    });
  }

  async put(value: T, options: QueuePartitionOptions = {}): Promise<void> {
    await this.putMany([value], options);
  }

  /** Put several items, in order, all or none. */
  async putMany(values: Iterable<T>, options: QueuePartitionOptions = {}): Promise<void> {
    const items = [...values].map(itemOf);
    if (items.length === 0) return;
    if (items.length > MAX_QUEUE_MAX_PARTITION_ITEMS) {
      throw new InvalidError(
        `putMany: ${items.length} items is more than a partition holds (${MAX_QUEUE_MAX_PARTITION_ITEMS}); put them in parts`,
      );
    }
    await this.request("POST", "put", { items, ...partitionOf(options) });
  }

  /** The next item; undefined when `block: false` found none or `timeoutMs` passed. */
  async get(options: QueueGetOptions = {}): Promise<T | undefined> {
    const [item] = await this.take(1, options);
    return item;
  }

  /** Up to `n` items (at least one unless `block: false` found none or `timeoutMs` passed). */
  async getMany(n: number, options: QueueGetOptions = {}): Promise<T[]> {
    if (!(Number.isSafeInteger(n) && n >= 1 && n <= MAX_QUEUE_GET_MANY)) {
      throw new InvalidError(`getMany: n must be an integer 1..${MAX_QUEUE_GET_MANY}, got ${n}`);
    }
    return this.take(n, options);
  }

  private async take(max: number, options: QueueGetOptions): Promise<T[]> {
    const block = options.block ?? true;
    if (
      options.timeoutMs !== undefined &&
      !(Number.isFinite(options.timeoutMs) && options.timeoutMs >= 0)
    ) {
      throw new InvalidError(
        `get: timeoutMs must be a non-negative number, got ${options.timeoutMs}`,
      );
    }
    const deadline = !block
      ? 0
      : options.timeoutMs === undefined
        ? Number.POSITIVE_INFINITY
        : Date.now() + options.timeoutMs;
    for (;;) {
      const waitMs = Math.max(0, Math.min(MAX_WAIT_MS, Math.ceil(deadline - Date.now())));
      const { items } = await this.request<{ items: string[] }>("POST", "get", {
        max,
        waitMs,
        ...partitionOf(options),
      });
      if (items.length > 0) return items.map((item) => decode<T>(item));
      if (Date.now() >= deadline) return [];
    }
  }

  /** Items in a partition (`total: true`: in every partition). */
  async len(options: QueuePartitionOptions & { total?: boolean } = {}): Promise<number> {
    return (
      await this.request<{ len: number }>("GET", "len", undefined, {
        ...partitionOf(options),
        ...(options.total ? { total: true } : {}),
      })
    ).len;
  }

  /** Empty a partition (`all: true`: every partition); returns how many items were dropped. */
  async clear(options: QueuePartitionOptions & { all?: boolean } = {}): Promise<number> {
    return (
      await this.request<{ cleared: number }>("POST", "clear", {
        ...partitionOf(options),
        ...(options.all ? { all: true } : {}),
      })
    ).cleared;
  }

  /** The items of a partition, oldest first, without taking them. */
  async *iterate(options: QueuePartitionOptions = {}): AsyncGenerator<T, void, undefined> {
    for (let start = 0; ; start += PAGE) {
      const { items } = await this.request<{ items: string[] }>("GET", "items", undefined, {
        ...partitionOf(options),
        start,
        count: PAGE,
      });
      for (const item of items) yield decode<T>(item);
      if (items.length < PAGE) return;
    }
  }

  async info(): Promise<QueueInfo> {
    return this.request<QueueInfo>("GET", "");
  }

  /** An ephemeral queue: delete it now. Other queues: nothing to do (they outlive this handle). */
  async close(): Promise<void> {
    await this.options.close?.();
  }
}

function itemOf(value: unknown): string {
  if (value === undefined)
    throw new InvalidError(
      "a queue item cannot be undefined (get() returns undefined when nothing came): put null instead",
    );
  return checkSize(encode(value), "queue item", MAX_QUEUE_ITEM_BYTES, "MAX_QUEUE_ITEM_BYTES");
}

function partitionOf(options: QueuePartitionOptions): { partition?: string } {
  return options.partition === undefined ? {} : { partition: options.partition };
}
