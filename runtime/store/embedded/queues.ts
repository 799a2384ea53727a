/**
 * Work queues of the embedded store: items pending (ready or delayed) or claimed under a lease
 * and a fence. A claim takes from the first of its queues with ready items; a lapsed lease or an
 * ended delay makes the item ready again. Blocked claimers are served, oldest first, by whatever
 * made an item ready (an enqueue, a release, a lapse, a delay's end).
 */
import { nonNegative, positive } from "../checks.js";
import type {
  Claim,
  ClaimRef,
  EnqueueManyResult,
  EnqueueOptions,
  QueueStats,
  ReleaseOptions,
  WorkItem,
} from "../store.js";
import type { Core } from "./core.js";
import type { KeyValues } from "./keys.js";
import type { Item } from "./state.js";
import { BlockedCalls, type Blocked } from "./waiting.js";

/** A blocked claim on its queues (`keys`). */
interface ClaimWaiter extends Blocked<Claim> {
  readonly owner: string;
  readonly leaseMs: number;
}

export class WorkQueues {
  private readonly claimers: BlockedCalls<Claim, ClaimWaiter>;

  constructor(
    private readonly core: Core,
    private readonly keys: KeyValues,
  ) {
    this.claimers = new BlockedCalls(core);
  }

  /** Queue `items` in order until a cap refuses one; `records` are written when any was accepted. */
  enqueue(queue: string, items: readonly WorkItem[], options: EnqueueOptions): EnqueueManyResult {
    const delayMs = nonNegative("delayMs", options.delayMs ?? 0);
    this.core.deadlines.catchUp();
    let accepted = 0;
    let refused: EnqueueManyResult["refused"];
    for (const item of items) {
      const state = this.core.state.queues.get(queue);
      if (!state?.items.has(item.id)) {
        const pending = state?.pending ?? 0;
        const total = pending + (state?.claimed ?? 0);
        if (options.maxPending !== undefined && pending >= options.maxPending) {
          refused = { reason: "pending", count: pending };
          break;
        }
        if (options.maxTotal !== undefined && total >= options.maxTotal) {
          refused = { reason: "total", count: total };
          break;
        }
        const readyAt = delayMs > 0 ? this.core.clock.now() + delayMs : undefined;
        this.core.write({ op: "enq", q: queue, id: item.id, p: item.payload, r: readyAt });
        if (readyAt !== undefined)
          this.core.deadlines.trackItem(this.core.state.item(queue, item.id)!);
      }
      accepted += 1;
    }
    if (accepted > 0)
      for (const record of options.records ?? [])
        this.keys.put(record.key, record.value, undefined);
    // Claimers see the step whole, as on Redis.
    if (delayMs === 0 && accepted > 0) this.wake(queue);
    return refused ? { accepted, refused } : { accepted };
  }

  /** Claim up to `max` items from the first of `queues` that has any ready. */
  take(queues: readonly string[], owner: string, leaseMs: number, max: number): Claim[] {
    for (const queue of queues) {
      const state = this.core.state.queues.get(queue);
      if (!state || state.ready.size === 0) continue;
      const ids: string[] = [];
      for (let item = state.ready.head; item && ids.length < max; item = item.next)
        ids.push(item.id);
      this.core.write({ op: "claim", q: queue, ids, f: this.core.state.seq + 1, o: owner });
      const until = this.core.clock.now() + leaseMs;
      return ids.map((id) => {
        const item = state.items.get(id)!;
        item.dueAt = until;
        this.core.deadlines.trackItem(item);
        return { queue, id, payload: item.payload, fence: item.fence, deliveries: item.claims - 1 };
      });
    }
    return [];
  }

  /** Block a claim that found nothing until an item is ready for it, `waitMs` passes or `signal` aborts. */
  wait(
    queues: readonly string[],
    owner: string,
    leaseMs: number,
    max: number,
    waitMs: number,
    signal: AbortSignal | undefined,
  ): Promise<Claim[]> {
    return this.claimers.block(waitMs, signal, (waiter) => ({
      keys: queues,
      owner,
      leaseMs,
      max,
      waiter,
    }));
  }

  /** Extend leases; per claim, whether it is still held. */
  renew(claims: readonly ClaimRef[], leaseMs: number): boolean[] {
    positive("leaseMs", leaseMs);
    this.core.deadlines.catchUp();
    const until = this.core.clock.now() + leaseMs;
    return claims.map((ref) => {
      const item = this.heldItem(ref);
      if (!item) return false;
      item.dueAt = until;
      this.core.deadlines.trackItem(item);
      return true;
    });
  }

  /** Acknowledge a claim still held: its item is done and leaves the queue. False when stale. */
  ack(claim: ClaimRef): boolean {
    if (!this.heldItem(claim)) return false;
    this.core.write({ op: "done", q: claim.queue, id: claim.id });
    return true;
  }

  /** Give a claim still held back to pending; false when stale. */
  release(claim: ClaimRef, options: ReleaseOptions): boolean {
    const delayMs = nonNegative("delayMs", options.delayMs ?? 0);
    this.core.deadlines.catchUp();
    const item = this.heldItem(claim);
    if (!item) return false;
    const readyAt = delayMs > 0 ? this.core.clock.now() + delayMs : undefined;
    this.core.write({
      op: "rel",
      q: claim.queue,
      id: claim.id,
      p: options.payload,
      r: readyAt,
      front: options.front ?? true,
    });
    if (readyAt === undefined) this.wake(claim.queue);
    else this.core.deadlines.trackItem(item);
    return true;
  }

  /** Remove an item, pending or claimed; where it was. */
  remove(queue: string, id: string): "pending" | "claimed" | null {
    this.core.deadlines.catchUp();
    const item = this.core.state.item(queue, id);
    if (!item) return null;
    const where = item.state === "claimed" ? "claimed" : "pending";
    this.core.write({ op: "rm", q: queue, id });
    return where;
  }

  stats(queue: string): QueueStats {
    this.core.deadlines.catchUp();
    const state = this.core.state.queues.get(queue);
    return {
      pending: state?.pending ?? 0,
      claimed: state?.claimed ?? 0,
      delayed: state?.delayed ?? 0,
    };
  }

  /** How many items the dropped queue had. */
  drop(queue: string): number {
    const dropped = this.core.state.queues.get(queue)?.items.size ?? 0;
    if (dropped > 0) this.core.write({ op: "dropq", q: queue });
    return dropped;
  }

  /** The deadline of `item` came: its lease lapses, or its delay ends. */
  due(item: Item, now: number): void {
    if (
      this.core.state.item(item.queue, item.id) !== item ||
      item.dueAt === null ||
      item.state === "pending"
    )
      return;
    if (item.dueAt > now) {
      this.core.deadlines.trackItem(item);
      return;
    }
    this.core.write({
      op: item.state === "claimed" ? "lapse" : "ready",
      q: item.queue,
      id: item.id,
    });
    this.wake(item.queue);
  }

  /** End every blocked claim with nothing (the store closed). */
  close(): void {
    this.claimers.close();
  }

  /** The item a claim refers to, if the claim is still held (a lapsed lease is handed back here). */
  private heldItem(ref: ClaimRef): Item | null {
    const item = this.core.state.item(ref.queue, ref.id);
    if (!item || item.state !== "claimed" || item.fence !== ref.fence) return null;
    if (item.dueAt !== null && item.dueAt <= this.core.clock.now()) {
      this.core.write({ op: "lapse", q: item.queue, id: item.id });
      this.wake(item.queue);
      return null;
    }
    return item;
  }

  /** Serve blocked claimers of `queue` (oldest first) while it has ready items. */
  private wake(queue: string): void {
    for (const claimer of this.claimers.on(queue)) {
      const state = this.core.state.queues.get(queue);
      if (!state || state.ready.size === 0) return;
      const claims = this.take(claimer.keys, claimer.owner, claimer.leaseMs, claimer.max);
      if (claims.length > 0) this.claimers.finish(claimer, claims);
    }
  }
}
