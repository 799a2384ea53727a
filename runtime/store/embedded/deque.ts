/** An array-backed FIFO: amortized O(1) push and shift (the consumed head is compacted away). */
export class Deque<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  pushAll(values: readonly T[]): void {
    for (const value of values) this.items.push(value);
  }

  /** The first `n` values, without removing them. */
  peek(n: number): T[] {
    return this.items.slice(this.head, this.head + n) as T[];
  }

  /** Up to `count` values from index `start` (0 = head), without removing them. */
  slice(start: number, count: number): T[] {
    const from = this.head + start;
    return this.items.slice(from, from + count) as T[];
  }

  /** Remove the first `n` values. */
  drop(n: number): void {
    const end = Math.min(this.head + n, this.items.length);
    for (let i = this.head; i < end; i++) this.items[i] = undefined;
    this.head = end;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  toArray(): T[] {
    return this.items.slice(this.head) as T[];
  }
}
