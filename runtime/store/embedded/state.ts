/**
 * The embedded store's state and the records that change it.
 *
 * Every mutation is a {@link LogRecord}; `State.apply` is the only code that changes the state,
 * for live calls and for replay alike, so a replayed log rebuilds exactly what the live calls built.
 * Records carry results, not intentions (the claimed ids, the absolute expiry, the new counter
 * value), so applying them never reads the clock. A snapshot is itself a list of records.
 */
import { Deque } from "./deque.js";
import { LinkedList } from "./linked-list.js";

export type LogRecord =
  | { op: "set"; k: string; v: string; x?: number }
  | { op: "del"; k: string }
  /** `x` absent keeps the list's expiry. */
  | { op: "lpush"; k: string; vs: readonly string[]; x?: number }
  | { op: "lpop"; k: string; n: number }
  | { op: "enq"; q: string; id: string; p: string; r?: number }
  | { op: "claim"; q: string; ids: string[]; f: number; o: string }
  | { op: "lapse"; q: string; id: string }
  | { op: "ready"; q: string; id: string }
  | { op: "done"; q: string; id: string }
  | { op: "rel"; q: string; id: string; p?: string; r?: number; front: boolean }
  | { op: "rm"; q: string; id: string }
  | { op: "dropq"; q: string }
  | { op: "lock"; n: string; o: string; t: number; x: number }
  | { op: "unlock"; n: string }
  // snapshot-only records
  | { op: "seq"; n: number }
  | { op: "item"; q: string; id: string; p: string; s: ItemState; c: number; r?: number; fr?: boolean; f?: number; o?: string };

export type ItemState = "pending" | "delayed" | "claimed";

/** Anything with a deadline tracked in the store's heap. `heapAt`: the earliest heap entry for it. */
export interface Deadlined {
  heapAt: number | null;
}

export interface KeyEntry extends Deadlined {
  readonly key: string;
  /** A string key, or a list. */
  value: string | Deque<string>;
  expiresAt: number | null;
}

export interface LockEntry extends Deadlined {
  readonly name: string;
  owner: string;
  token: number;
  expiresAt: number;
}

export interface Item extends Deadlined {
  readonly queue: string;
  readonly id: string;
  payload: string;
  state: ItemState;
  /** How many times it was claimed. */
  claims: number;
  fence: number;
  owner: string;
  /** delayed: when it becomes claimable; claimed: when its lease lapses (null while replaying). */
  dueAt: number | null;
  /** delayed: goes to the front when it becomes claimable. */
  front: boolean;
  prev: Item | null;
  next: Item | null;
}

export class QueueState {
  readonly items = new Map<string, Item>();
  /** Claimable items, in claim order. */
  readonly ready = new LinkedList<Item>();
  delayed = 0;
  claimed = 0;

  get pending(): number {
    return this.ready.size + this.delayed;
  }
}

export class State {
  readonly keys = new Map<string, KeyEntry>();
  readonly queues = new Map<string, QueueState>();
  readonly locks = new Map<string, LockEntry>();
  /** The last fence / lock token handed out. */
  seq = 0;

  item(queue: string, id: string): Item | undefined {
    return this.queues.get(queue)?.items.get(id);
  }

  apply(r: LogRecord): void {
    switch (r.op) {
      case "set": {
        const entry = this.keys.get(r.k);
        if (entry) {
          entry.value = r.v;
          entry.expiresAt = r.x ?? null;
        } else {
          this.keys.set(r.k, { key: r.k, value: r.v, expiresAt: r.x ?? null, heapAt: null });
        }
        return;
      }
      case "del":
        this.keys.delete(r.k);
        return;
      case "lpush": {
        let entry = this.keys.get(r.k);
        if (!entry) {
          entry = { key: r.k, value: new Deque<string>(), expiresAt: null, heapAt: null };
          this.keys.set(r.k, entry);
        } else if (typeof entry.value === "string") {
          entry.value = new Deque<string>();
          entry.expiresAt = null;
        }
        (entry.value as Deque<string>).pushAll(r.vs);
        if (r.x !== undefined) entry.expiresAt = r.x;
        return;
      }
      case "lpop": {
        const entry = this.keys.get(r.k);
        if (!entry || typeof entry.value === "string") return;
        entry.value.drop(r.n);
        if (entry.value.length === 0) this.keys.delete(r.k);
        return;
      }
      case "enq": {
        const queue = this.queue(r.q);
        if (queue.items.has(r.id)) return;
        const item = newItem(r.q, r.id, r.p);
        queue.items.set(r.id, item);
        if (r.r !== undefined) {
          item.state = "delayed";
          item.dueAt = r.r;
          queue.delayed++;
        } else {
          queue.ready.push(item);
        }
        return;
      }
      case "item": {
        const queue = this.queue(r.q);
        if (queue.items.has(r.id)) return;
        const item = newItem(r.q, r.id, r.p);
        item.claims = r.c;
        queue.items.set(r.id, item);
        if (r.s === "delayed") {
          item.state = "delayed";
          item.dueAt = r.r ?? 0;
          item.front = r.fr ?? false;
          queue.delayed++;
        } else if (r.s === "claimed") {
          item.state = "claimed";
          item.fence = r.f ?? 0;
          item.owner = r.o ?? "";
          queue.claimed++;
        } else {
          queue.ready.push(item);
        }
        return;
      }
      case "claim": {
        const queue = this.queues.get(r.q);
        if (!queue) return;
        r.ids.forEach((id, i) => {
          const item = queue.items.get(id);
          if (!item || item.state === "claimed") return;
          this.leave(queue, item);
          item.state = "claimed";
          item.claims++;
          item.fence = r.f + i;
          item.owner = r.o;
          item.dueAt = null;
          queue.claimed++;
          if (item.fence > this.seq) this.seq = item.fence;
        });
        return;
      }
      case "lapse":
      case "ready":
      case "rel": {
        const queue = this.queues.get(r.q);
        const item = queue?.items.get(r.id);
        if (!queue || !item) return;
        if (r.op === "lapse" && item.state !== "claimed") return;
        if (r.op === "ready" && item.state !== "delayed") return;
        if (r.op === "rel" && item.state !== "claimed") return;
        const front = r.op === "lapse" ? true : r.op === "ready" ? item.front : r.front;
        this.leave(queue, item);
        if (r.op === "rel" && r.p !== undefined) item.payload = r.p;
        if (r.op === "rel" && r.r !== undefined) {
          item.state = "delayed";
          item.dueAt = r.r;
          item.front = front;
          queue.delayed++;
          return;
        }
        item.state = "pending";
        item.dueAt = null;
        if (front) queue.ready.unshift(item);
        else queue.ready.push(item);
        return;
      }
      case "done":
      case "rm": {
        const queue = this.queues.get(r.q);
        const item = queue?.items.get(r.id);
        if (!queue || !item) return;
        this.leave(queue, item);
        queue.items.delete(r.id);
        if (queue.items.size === 0) this.queues.delete(r.q);
        return;
      }
      case "dropq":
        this.queues.delete(r.q);
        return;
      case "lock": {
        const entry = this.locks.get(r.n);
        if (entry) {
          entry.owner = r.o;
          entry.token = r.t;
          entry.expiresAt = r.x;
        } else {
          this.locks.set(r.n, { name: r.n, owner: r.o, token: r.t, expiresAt: r.x, heapAt: null });
        }
        if (r.t > this.seq) this.seq = r.t;
        return;
      }
      case "unlock":
        this.locks.delete(r.n);
        return;
      case "seq":
        if (r.n > this.seq) this.seq = r.n;
        return;
      default:
        throw new Error(`unknown store log record ${JSON.stringify(r satisfies never)}`);
    }
  }

  /** Records that rebuild this state from nothing. */
  *snapshot(): Generator<LogRecord> {
    yield { op: "seq", n: this.seq };
    for (const entry of this.keys.values()) {
      const x = entry.expiresAt ?? undefined;
      if (typeof entry.value === "string") yield { op: "set", k: entry.key, v: entry.value, x };
      else yield { op: "lpush", k: entry.key, vs: entry.value.toArray(), x };
    }
    for (const [name, queue] of this.queues) {
      for (const item of queue.ready) yield itemRecord(name, item);
      for (const item of queue.items.values()) if (item.state !== "pending") yield itemRecord(name, item);
    }
    for (const lock of this.locks.values()) {
      yield { op: "lock", n: lock.name, o: lock.owner, t: lock.token, x: lock.expiresAt };
    }
  }

  private queue(name: string): QueueState {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new QueueState();
      this.queues.set(name, queue);
    }
    return queue;
  }

  /** Take `item` out of its current state's bookkeeping. */
  private leave(queue: QueueState, item: Item): void {
    if (item.state === "pending") queue.ready.remove(item);
    else if (item.state === "delayed") queue.delayed--;
    else queue.claimed--;
  }
}

function newItem(queue: string, id: string, payload: string): Item {
  return {
    queue,
    id,
    payload,
    state: "pending",
    claims: 0,
    fence: 0,
    owner: "",
    dueAt: null,
    front: false,
    heapAt: null,
    prev: null,
    next: null,
  };
}

function itemRecord(queue: string, item: Item): LogRecord {
  return {
    op: "item",
    q: queue,
    id: item.id,
    p: item.payload,
    s: item.state,
    c: item.claims,
    ...(item.state === "delayed" ? { r: item.dueAt ?? 0, fr: item.front } : {}),
    ...(item.state === "claimed" ? { f: item.fence, o: item.owner } : {}),
  };
}
