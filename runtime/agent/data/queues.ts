/**
 * Queues on the agent: a queue is one store partition group (`keys.queueGroup(ref)`); each
 * partition is a FIFO list, the default partition is the empty name. Items are serde-encoded
 * strings (the client encodes them).
 *
 * - `put` of several items is all or nothing: refused with ResourceExhaustedError when the
 *   partition would pass `maxPartitionItems` (5,000) or a new partition would pass
 *   `maxPartitions` (100,000).
 * - A partition expires `partitionTtlS` (24 h) after its last put.
 * - `get` blocks up to `waitMs` (one request holds at most 50 s; the client loops) and hands each
 *   item to exactly one getter. A getter whose request is dropped mid-wait takes nothing.
 *
 * Not promised: an item popped just as its getter's connection broke is lost (at most once past
 * the door); `iterate` pages by index, so gets during an iteration shift what it sees.
 */
import { InvalidError, PayloadTooLargeError, ResourceExhaustedError } from "../../errors.js";
import { formatDataRef, type QueueInfo } from "../../protocol.js";
import { formatBytes } from "../../serde.js";
import {
  DEFAULT_QUEUE_MAX_PARTITION_ITEMS,
  DEFAULT_QUEUE_MAX_PARTITIONS,
  DEFAULT_QUEUE_PARTITION_TTL_S,
  MAX_QUEUE_ITEM_BYTES,
  MAX_QUEUE_PARTITION_KEY_LENGTH,
  type CompiledQueueSpec,
} from "../../spec/index.js";
import type { Store } from "../../store/store.js";
import { keys } from "../inputs.js";
import { DataObjects, checkName, type DataKindSpec, type ResolvedObject } from "./objects.js";
import type { AppLookup, Ephemerals } from "./refs.js";

export type QueueSettings = CompiledQueueSpec;

type ResolvedQueue = ResolvedObject<QueueSettings>;

export interface QueueLookup {
  name: string;
  createIfMissing: boolean;
  partitionTtlS?: number | undefined;
  maxPartitionItems?: number | undefined;
  maxPartitions?: number | undefined;
}

const DEFAULT_SETTINGS: QueueSettings = {
  partitionTtlS: DEFAULT_QUEUE_PARTITION_TTL_S,
  maxPartitionItems: DEFAULT_QUEUE_MAX_PARTITION_ITEMS,
  maxPartitions: DEFAULT_QUEUE_MAX_PARTITIONS,
};

/** A queue is a store partition group; an ephemeral one has the default settings. */
const QUEUES: DataKindSpec<QueueSettings> = {
  kind: "queue",
  dataKey: (ref) => keys.queueGroup(ref),
  recordKey: (name) => keys.namedQueue(name),
  declared: (spec) => spec.queues,
  ephemeralSettings: () => DEFAULT_SETTINGS,
  drop: (store, group) => store.partitionDrop(group),
};

export class Queues {
  private readonly objects: DataObjects<QueueSettings>;

  constructor(
    private readonly store: Store,
    apps: AppLookup,
    ephemerals: Ephemerals,
  ) {
    this.objects = new DataObjects(store, apps, ephemerals, QUEUES);
  }

  async lookup(body: QueueLookup): Promise<QueueInfo> {
    checkName(body.name, "queue");
    if (body.createIfMissing) {
      await this.objects.create(body.name, {
        partitionTtlS: body.partitionTtlS ?? DEFAULT_SETTINGS.partitionTtlS,
        maxPartitionItems: body.maxPartitionItems ?? DEFAULT_SETTINGS.maxPartitionItems,
        maxPartitions: body.maxPartitions ?? DEFAULT_SETTINGS.maxPartitions,
      });
    }
    return this.info(formatDataRef({ kind: "named", name: body.name }));
  }

  async info(ref: string): Promise<QueueInfo> {
    const queue = await this.resolve(ref);
    const stats = await this.store.partitionStats(queue.dataKey);
    return {
      ref: queue.ref,
      kind: queue.kind,
      name: queue.name,
      ...(queue.app ? { app: queue.app } : {}),
      partitions: stats.partitions,
      items: stats.items,
      ...queue.settings,
      ...(queue.createdAt ? { createdAt: queue.createdAt } : {}),
    };
  }

  async put(ref: string, items: string[], partition: string | undefined): Promise<{ len: number }> {
    const queue = await this.resolve(ref);
    const part = partitionOf(partition);
    for (const item of items) checkItem(item);
    const { maxPartitionItems, maxPartitions, partitionTtlS } = queue.settings;
    const result = await this.store.partitionPush(queue.dataKey, part, items, {
      ttlMs: partitionTtlS * 1000,
      maxLength: maxPartitionItems,
      maxPartitions,
    });
    if (result.ok) return { len: result.length };
    if (result.reason === "length") {
      throw new ResourceExhaustedError(
        `queue ${queue.ref} partition ${describe(part)} holds ${result.count} items; ${items.length} more would pass its limit of ${maxPartitionItems} (maxPartitionItems): get some first`,
        {
          details: {
            limit: maxPartitionItems,
            count: result.count,
            limitName: "maxPartitionItems",
          },
        },
      );
    }
    throw new ResourceExhaustedError(
      `queue ${queue.ref} has ${result.count} partitions, its limit of ${maxPartitions} (maxPartitions): a new partition ${describe(part)} is refused until some empty or expire`,
      { details: { limit: maxPartitions, count: result.count, limitName: "maxPartitions" } },
    );
  }

  async get(
    ref: string,
    body: { max: number; waitMs: number; partition?: string | undefined },
    signal?: AbortSignal,
  ): Promise<{ items: string[] }> {
    const queue = await this.resolve(ref);
    const part = partitionOf(body.partition);
    const items = await this.store.partitionPop(queue.dataKey, part, {
      max: body.max,
      waitMs: body.waitMs,
      ...(signal ? { signal } : {}),
    });
    return { items };
  }

  async len(ref: string, partition: string | undefined, total: boolean): Promise<{ len: number }> {
    const queue = await this.resolve(ref);
    if (total) {
      if (partition !== undefined)
        throw new InvalidError("len: pass either partition or total, not both");
      return { len: (await this.store.partitionStats(queue.dataKey)).items };
    }
    return { len: await this.store.partitionLength(queue.dataKey, partitionOf(partition)) };
  }

  async clear(
    ref: string,
    partition: string | undefined,
    all: boolean,
  ): Promise<{ cleared: number }> {
    const queue = await this.resolve(ref);
    if (all) {
      if (partition !== undefined)
        throw new InvalidError("clear: pass either partition or all, not both");
      return { cleared: await this.store.partitionDrop(queue.dataKey) };
    }
    return { cleared: await this.store.partitionClear(queue.dataKey, partitionOf(partition)) };
  }

  async items(
    ref: string,
    partition: string | undefined,
    start: number,
    count: number,
  ): Promise<{ items: string[] }> {
    const queue = await this.resolve(ref);
    return {
      items: await this.store.partitionRange(queue.dataKey, partitionOf(partition), start, count),
    };
  }

  /** Delete a named or ephemeral queue with its items (a declared one goes with its app). */
  async delete(ref: string): Promise<{ deleted: boolean }> {
    return this.objects.delete(ref);
  }

  private resolve(text: string): Promise<ResolvedQueue> {
    return this.objects.resolve(text);
  }
}

/** The store partition of a partition key: "" is the default partition. */
function partitionOf(partition: string | undefined): string {
  if (partition === undefined) return "";
  if (partition.length < 1 || partition.length > MAX_QUEUE_PARTITION_KEY_LENGTH) {
    throw new InvalidError(
      `partition key ${JSON.stringify(partition.slice(0, 80))} is ${partition.length} characters; partition keys are 1-${MAX_QUEUE_PARTITION_KEY_LENGTH} characters (MAX_QUEUE_PARTITION_KEY_LENGTH)`,
      {
        details: {
          length: partition.length,
          limit: MAX_QUEUE_PARTITION_KEY_LENGTH,
          limitName: "MAX_QUEUE_PARTITION_KEY_LENGTH",
        },
      },
    );
  }
  return partition;
}

function describe(partition: string): string {
  return partition === "" ? "(default)" : JSON.stringify(partition);
}

function checkItem(item: string): void {
  if (item.length === 0)
    throw new InvalidError("queue item: expected a serde-encoded value, got an empty string");
  const bytes = Buffer.byteLength(item);
  if (bytes > MAX_QUEUE_ITEM_BYTES) {
    throw new PayloadTooLargeError(
      `queue item is ${formatBytes(bytes)} encoded, over the ${formatBytes(MAX_QUEUE_ITEM_BYTES)} item limit (MAX_QUEUE_ITEM_BYTES): queue a reference (a path, a dict key) instead`,
      { details: { bytes, limit: MAX_QUEUE_ITEM_BYTES, limitName: "MAX_QUEUE_ITEM_BYTES" } },
    );
  }
}
