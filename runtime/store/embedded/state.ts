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
  /** Hash fields; an entry's own deadline / fixed TTL (3rd, 4th) win over the record's `d` / `x`. */
  | { op: "hset"; k: string; es: HashEntryRecord[]; d?: number; x?: number }
  | { op: "htouch"; k: string; f: string; d: number }
  | { op: "hdel"; k: string; f: string }
  | { op: "hdrop"; k: string }
  /** `x` absent keeps the partition's expiry. */
  | { op: "ppush"; g: string; p: string; vs: readonly string[]; x?: number }
  | { op: "ppop"; g: string; p: string; n: number }
  | { op: "pclear"; g: string; p: string }
  | { op: "pdrop"; g: string }
  // snapshot-only records
  | { op: "seq"; n: number }
  | {
      op: "item";
      q: string;
      id: string;
      p: string;
      s: ItemState;
      c: number;
      r?: number;
      fr?: boolean;
      f?: number;
      o?: string;
    };

export type ItemState = "pending" | "delayed" | "claimed";

/** `[field, value]`, or `[field, value, deadline, fixed]` (null: none). */
export type HashEntryRecord = [string, string] | [string, string, number | null, number | null];

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

export interface HashField extends Deadlined {
  readonly hash: string;
  readonly field: string;
  value: string;
  /** Insertion sequence within the hash: scan order and cursor. */
  readonly seq: number;
  /** When it expires: the earlier of `fixed` and the inactivity deadline; null: never. */
  deadline: number | null;
  /** The fixed TTL's end (`ttlMs` at write), null: none. */
  fixed: number | null;
  removed: boolean;
}

export class HashState {
  readonly fields = new Map<string, HashField>();
  /** Fields in insertion order (ascending `seq`), removed ones included until compacted. */
  private order: HashField[] = [];
  private removedInOrder = 0;
  private nextSeq = 1;

  constructor(readonly name: string) {}

  put(field: string, value: string, deadline: number | null, fixed: number | null): HashField {
    const current = this.fields.get(field);
    if (current) {
      current.value = value;
      current.deadline = deadline;
      current.fixed = fixed;
      return current;
    }
    const entry: HashField = {
      hash: this.name,
      field,
      value,
      seq: this.nextSeq++,
      deadline,
      fixed,
      removed: false,
      heapAt: null,
    };
    this.fields.set(field, entry);
    this.order.push(entry);
    return entry;
  }

  remove(field: string): void {
    const entry = this.fields.get(field);
    if (!entry) return;
    entry.removed = true;
    this.fields.delete(field);
    this.removedInOrder++;
    if (this.removedInOrder > 1024 && this.removedInOrder * 2 > this.order.length) {
      this.order = this.order.filter((f) => !f.removed);
      this.removedInOrder = 0;
    }
  }

  /** Up to `count` fields with a sequence above `after`, in order; `done` when none is left after them. */
  page(after: number, count: number): { fields: HashField[]; done: boolean } {
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.order[mid]!.seq <= after) lo = mid + 1;
      else hi = mid;
    }
    const fields: HashField[] = [];
    let i = lo;
    for (; i < this.order.length && fields.length < count; i++) {
      const entry = this.order[i]!;
      if (!entry.removed) fields.push(entry);
    }
    while (i < this.order.length && this.order[i]!.removed) i++;
    return { fields, done: i >= this.order.length };
  }

  *entries(): Generator<HashField> {
    for (const entry of this.order) if (!entry.removed) yield entry;
  }
}

export interface PartitionEntry extends Deadlined {
  readonly group: string;
  readonly partition: string;
  readonly items: Deque<string>;
  expiresAt: number | null;
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
  readonly hashes = new Map<string, HashState>();
  /** group -> partition -> entry; a partition exists while it holds items. */
  readonly partitions = new Map<string, Map<string, PartitionEntry>>();
  /** The last fence / lock token handed out. */
  seq = 0;

  item(queue: string, id: string): Item | undefined {
    return this.queues.get(queue)?.items.get(id);
  }

  partition(group: string, partition: string): PartitionEntry | undefined {
    return this.partitions.get(group)?.get(partition);
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
      case "hset": {
        let hash = this.hashes.get(r.k);
        if (!hash) {
          hash = new HashState(r.k);
          this.hashes.set(r.k, hash);
        }
        for (const e of r.es) {
          const own = e.length === 4;
          hash.put(e[0], e[1], own ? e[2] : (r.d ?? null), own ? e[3] : (r.x ?? null));
        }
        return;
      }
      case "htouch": {
        const entry = this.hashes.get(r.k)?.fields.get(r.f);
        if (entry) entry.deadline = r.d;
        return;
      }
      case "hdel": {
        const hash = this.hashes.get(r.k);
        if (!hash) return;
        hash.remove(r.f);
        if (hash.fields.size === 0) this.hashes.delete(r.k);
        return;
      }
      case "hdrop":
        this.hashes.delete(r.k);
        return;
      case "ppush": {
        let group = this.partitions.get(r.g);
        if (!group) {
          group = new Map();
          this.partitions.set(r.g, group);
        }
        let entry = group.get(r.p);
        if (!entry) {
          entry = {
            group: r.g,
            partition: r.p,
            items: new Deque<string>(),
            expiresAt: null,
            heapAt: null,
          };
          group.set(r.p, entry);
        }
        entry.items.pushAll(r.vs);
        if (r.x !== undefined) entry.expiresAt = r.x;
        return;
      }
      case "ppop": {
        const entry = this.partition(r.g, r.p);
        if (!entry) return;
        entry.items.drop(r.n);
        if (entry.items.length === 0) this.removePartition(r.g, r.p);
        return;
      }
      case "pclear":
        this.removePartition(r.g, r.p);
        return;
      case "pdrop":
        this.partitions.delete(r.g);
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
      for (const item of queue.items.values())
        if (item.state !== "pending") yield itemRecord(name, item);
    }
    for (const lock of this.locks.values()) {
      yield { op: "lock", n: lock.name, o: lock.owner, t: lock.token, x: lock.expiresAt };
    }
    for (const hash of this.hashes.values()) {
      let es: HashEntryRecord[] = [];
      for (const f of hash.entries()) {
        es.push([f.field, f.value, f.deadline, f.fixed]);
        if (es.length >= SNAPSHOT_CHUNK) {
          yield { op: "hset", k: hash.name, es };
          es = [];
        }
      }
      if (es.length > 0) yield { op: "hset", k: hash.name, es };
    }
    for (const group of this.partitions.values()) {
      for (const entry of group.values()) {
        yield {
          op: "ppush",
          g: entry.group,
          p: entry.partition,
          vs: entry.items.toArray(),
          x: entry.expiresAt ?? undefined,
        };
      }
    }
  }

  private removePartition(group: string, partition: string): void {
    const parts = this.partitions.get(group);
    if (!parts) return;
    parts.delete(partition);
    if (parts.size === 0) this.partitions.delete(group);
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

/** Hash fields per snapshot record. */
const SNAPSHOT_CHUNK = 1000;

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
