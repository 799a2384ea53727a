/**
 * Partitioned lists (queues) of the embedded store: FIFO lists grouped by name. A partition
 * expires `ttlMs` after its last push (pops do not extend it) and exists while it holds items;
 * pushes are refused whole past `maxLength` or `maxPartitions`. A push serves blocked pops first.
 */
import { atLeastOne, atLeastZero, positive } from "../checks.js";
import type { PartitionPushOptions, PartitionPushResult, PartitionStats } from "../store.js";
import type { Core } from "./core.js";
import type { PartitionEntry } from "./state.js";
import type { BlockedPops } from "./waiting.js";

export class Partitions {
  constructor(
    private readonly core: Core,
    private readonly pops: BlockedPops,
  ) {}

  push(
    group: string,
    partition: string,
    values: readonly string[],
    options: PartitionPushOptions,
  ): PartitionPushResult {
    const ttlMs = options.ttlMs === undefined ? undefined : positive("ttlMs", options.ttlMs);
    const maxLength =
      options.maxLength === undefined ? undefined : atLeastZero("maxLength", options.maxLength);
    const maxPartitions =
      options.maxPartitions === undefined
        ? undefined
        : atLeastZero("maxPartitions", options.maxPartitions);
    const entry = this.live(group, partition);
    const length = entry?.items.length ?? 0;
    if (values.length === 0) return { ok: true, length };
    if (maxLength !== undefined && length + values.length > maxLength)
      return { ok: false, reason: "length", count: length };
    if (!entry && maxPartitions !== undefined) {
      this.core.deadlines.catchUp();
      const partitions = this.core.state.partitions.get(group)?.size ?? 0;
      if (partitions >= maxPartitions)
        return { ok: false, reason: "partitions", count: partitions };
    }
    this.core.write({
      op: "ppush",
      g: group,
      p: partition,
      vs: values,
      x: ttlMs === undefined ? undefined : this.core.clock.now() + ttlMs,
    });
    const pushed = this.core.state.partition(group, partition)!;
    const result: PartitionPushResult = { ok: true, length: pushed.items.length };
    this.core.deadlines.trackPartition(pushed);
    this.pops.wake(partitionWaitKey(group, partition));
    return result;
  }

  /** Pop up to `max` values from the head. */
  pop(group: string, partition: string, max: number): string[] {
    const entry = this.live(group, partition);
    if (!entry) return [];
    const values = entry.items.peek(max);
    this.core.write({ op: "ppop", g: group, p: partition, n: values.length });
    return values;
  }

  range(group: string, partition: string, start: number, count: number): string[] {
    const from = atLeastZero("start", start);
    const n = atLeastOne("count", count);
    return this.live(group, partition)?.items.slice(from, n) ?? [];
  }

  length(group: string, partition: string): number {
    return this.live(group, partition)?.items.length ?? 0;
  }

  stats(group: string): PartitionStats {
    this.core.deadlines.catchUp();
    const parts = this.core.state.partitions.get(group);
    return { partitions: parts?.size ?? 0, items: itemsOf(parts) };
  }

  /** How many values the emptied partition had. */
  clear(group: string, partition: string): number {
    const entry = this.live(group, partition);
    const count = entry?.items.length ?? 0;
    if (entry) this.core.write({ op: "pclear", g: group, p: partition });
    return count;
  }

  /** How many values the dropped group had. */
  drop(group: string): number {
    this.core.deadlines.catchUp();
    const parts = this.core.state.partitions.get(group);
    const items = itemsOf(parts);
    if (parts) this.core.write({ op: "pdrop", g: group });
    return items;
  }

  /** The deadline of `entry` came. */
  due(entry: PartitionEntry, now: number): void {
    if (
      this.core.state.partition(entry.group, entry.partition) !== entry ||
      entry.expiresAt === null
    )
      return;
    if (entry.expiresAt > now) this.core.deadlines.trackPartition(entry);
    else this.core.write({ op: "pclear", g: entry.group, p: entry.partition });
  }

  /** The partition unless it expired (an expired one is cleared). */
  private live(group: string, partition: string): PartitionEntry | undefined {
    const entry = this.core.state.partition(group, partition);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== null && entry.expiresAt <= this.core.clock.now()) {
      this.core.write({ op: "pclear", g: group, p: partition });
      return undefined;
    }
    return entry;
  }
}

/** Where blocked pops of a partition wait (beside list keys, which never start with NUL). */
export function partitionWaitKey(group: string, partition: string): string {
  return `\u0000${group}\u0000${partition}`;
}

function itemsOf(parts: Map<string, PartitionEntry> | undefined): number {
  let items = 0;
  for (const entry of parts?.values() ?? []) items += entry.items.length;
  return items;
}
