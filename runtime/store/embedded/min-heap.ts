/** A binary min-heap ordered by `at` (deadlines); equal deadlines come out in insertion order. */
export class MinHeap<T extends { at: number }> {
  private readonly items: { value: T; seq: number }[] = [];
  private seq = 0;

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0]?.value;
  }

  push(value: T): void {
    const items = this.items;
    const node = { value, seq: this.seq++ };
    let i = items.length;
    items.push(node);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent]!;
      if (!before(node, p)) break;
      items[i] = p;
      i = parent;
    }
    items[i] = node;
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top?.value;
    const n = items.length;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && before(items[right]!, items[left]!) ? right : left;
      if (!before(items[child]!, last)) break;
      items[i] = items[child]!;
      i = child;
    }
    items[i] = last;
    return top.value;
  }

  clear(): void {
    this.items.length = 0;
  }
}

function before(
  a: { value: { at: number }; seq: number },
  b: { value: { at: number }; seq: number },
): boolean {
  return a.value.at < b.value.at || (a.value.at === b.value.at && a.seq < b.seq);
}
