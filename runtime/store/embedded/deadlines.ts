/**
 * The embedded store's deadlines (key and list TTLs, leases, delays, hash-field and partition
 * expiry, lock expiry) in one min-heap driven by one `Clock` timer. Each tick does bounded work,
 * so leases lapse and delays end on time even when nobody calls the store.
 */
import type { Clock, Timer } from "../../clock.js";
import { MinHeap } from "./min-heap.js";
import type { HashField, Item, KeyEntry, LockEntry, PartitionEntry } from "./state.js";

/** Deadlines handled per timer tick; the rest wait for the next tick (the event loop runs in between). */
const DEADLINES_PER_TICK = 1000;

type Deadline =
  | { at: number; kind: "key"; target: KeyEntry }
  | { at: number; kind: "item"; target: Item }
  | { at: number; kind: "lock"; target: LockEntry }
  | { at: number; kind: "field"; target: HashField }
  | { at: number; kind: "part"; target: PartitionEntry };

/**
 * What to do when a deadline comes: each handler checks the target is still current, re-tracks
 * it when its deadline moved later, and otherwise expires it.
 */
export interface DueHandlers {
  key(entry: KeyEntry, now: number): void;
  item(item: Item, now: number): void;
  lock(lock: LockEntry, now: number): void;
  field(entry: HashField, now: number): void;
  part(entry: PartitionEntry, now: number): void;
}

export class Deadlines {
  private readonly heap = new MinHeap<Deadline>();
  private timer: Timer | null = null;
  private timerAt = Infinity;
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly handlers: DueHandlers,
  ) {}

  trackKey(entry: KeyEntry): void {
    if (entry.expiresAt !== null && (entry.heapAt === null || entry.expiresAt < entry.heapAt)) {
      entry.heapAt = entry.expiresAt;
      this.schedule({ at: entry.expiresAt, kind: "key", target: entry });
    }
  }

  trackItem(item: Item): void {
    if (item.dueAt !== null && (item.heapAt === null || item.dueAt < item.heapAt)) {
      item.heapAt = item.dueAt;
      this.schedule({ at: item.dueAt, kind: "item", target: item });
    }
  }

  trackField(entry: HashField): void {
    if (entry.deadline !== null && (entry.heapAt === null || entry.deadline < entry.heapAt)) {
      entry.heapAt = entry.deadline;
      this.schedule({ at: entry.deadline, kind: "field", target: entry });
    }
  }

  trackPartition(entry: PartitionEntry): void {
    if (entry.expiresAt !== null && (entry.heapAt === null || entry.expiresAt < entry.heapAt)) {
      entry.heapAt = entry.expiresAt;
      this.schedule({ at: entry.expiresAt, kind: "part", target: entry });
    }
  }

  trackLock(lock: LockEntry): void {
    if (lock.heapAt === null || lock.expiresAt < lock.heapAt) {
      lock.heapAt = lock.expiresAt;
      this.schedule({ at: lock.expiresAt, kind: "lock", target: lock });
    }
  }

  /** Handle up to a tick's worth of due deadlines, then re-arm the timer for the next one. */
  catchUp(): void {
    const now = this.clock.now();
    for (let handled = 0; handled < DEADLINES_PER_TICK; handled++) {
      const next = this.heap.peek();
      if (next === undefined || next.at > now) break;
      this.heap.pop();
      this.due(next, now);
    }
    const next = this.heap.peek();
    if (next !== undefined && next.at < this.timerAt) this.arm(next.at);
  }

  /** Forget every deadline and stop the timer (the store closed). */
  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
    this.heap.clear();
  }

  private schedule(deadline: Deadline): void {
    this.heap.push(deadline);
    if (deadline.at < this.timerAt) this.arm(deadline.at);
  }

  private arm(at: number): void {
    this.timer?.cancel();
    this.timerAt = at;
    this.timer = this.clock.setTimeout(() => this.onTimer(), at - this.clock.now(), {
      unref: true,
    });
  }

  private onTimer(): void {
    this.timer = null;
    this.timerAt = Infinity;
    if (this.stopped) return;
    this.catchUp();
  }

  private due(deadline: Deadline, now: number): void {
    const target = deadline.target;
    if (target.heapAt === deadline.at) target.heapAt = null;
    switch (deadline.kind) {
      case "key":
        return this.handlers.key(deadline.target, now);
      case "item":
        return this.handlers.item(deadline.target, now);
      case "lock":
        return this.handlers.lock(deadline.target, now);
      case "field":
        return this.handlers.field(deadline.target, now);
      case "part":
        return this.handlers.part(deadline.target, now);
    }
  }
}
