/** An intrusive doubly linked list: O(1) push, unshift, shift and remove of a known node. */

export interface Linked<T> {
  prev: T | null;
  next: T | null;
}

export class LinkedList<T extends Linked<T>> {
  head: T | null = null;
  tail: T | null = null;
  size = 0;

  push(node: T): void {
    node.prev = this.tail;
    node.next = null;
    if (this.tail) this.tail.next = node;
    else this.head = node;
    this.tail = node;
    this.size++;
  }

  unshift(node: T): void {
    node.next = this.head;
    node.prev = null;
    if (this.head) this.head.prev = node;
    else this.tail = node;
    this.head = node;
    this.size++;
  }

  /** Unlink `node`, which must be in this list. */
  remove(node: T): void {
    if (node.prev) node.prev.next = node.next;
    else this.head = node.next;
    if (node.next) node.next.prev = node.prev;
    else this.tail = node.prev;
    node.prev = null;
    node.next = null;
    this.size--;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let node = this.head; node; node = node.next) yield node;
  }
}
