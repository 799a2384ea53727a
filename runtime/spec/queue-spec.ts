/** QueueSpec: a distributed FIFO queue (with named partitions) that belongs to the app. */
import { z } from "zod";
import { bounded, boundedInt } from "./checks.js";
import {
  DEFAULT_QUEUE_MAX_PARTITION_ITEMS,
  DEFAULT_QUEUE_MAX_PARTITIONS,
  DEFAULT_QUEUE_PARTITION_TTL_S,
  MAX_QUEUE_MAX_PARTITION_ITEMS,
  MAX_QUEUE_MAX_PARTITIONS,
  MAX_QUEUE_PARTITION_TTL_S,
  MIN_QUEUE_PARTITION_TTL_S,
} from "./limits.js";

export const QueueSpecSchema = z.strictObject({
  /** A partition with no activity for this many seconds expires, 1..604800. Default 1 day. */
  partitionTtlS: bounded({
    min: MIN_QUEUE_PARTITION_TTL_S,
    max: MAX_QUEUE_PARTITION_TTL_S,
    integer: true,
    unit: " s",
  }).default(DEFAULT_QUEUE_PARTITION_TTL_S),
  /** Most items in one partition, 1..5000. Default 5000. */
  maxPartitionItems: boundedInt(1, MAX_QUEUE_MAX_PARTITION_ITEMS).default(
    DEFAULT_QUEUE_MAX_PARTITION_ITEMS,
  ),
  /** Most partitions, 1..1000000. Default 100000. */
  maxPartitions: boundedInt(1, MAX_QUEUE_MAX_PARTITIONS).default(DEFAULT_QUEUE_MAX_PARTITIONS),
});

export type QueueSpecInput = z.input<typeof QueueSpecSchema>;
export type CompiledQueueSpec = z.output<typeof QueueSpecSchema>;
