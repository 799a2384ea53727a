/**
 * The subscriber connection's side of the store: `subscribe` channels with their listeners (one
 * SUBSCRIBE per channel, fanned out in process), and the wake channel, whose messages and the
 * connection's reconnects go to the claim waiters.
 */
import type { Redis } from "ioredis";
import { Listeners } from "../shared/listeners.js";
import type { Unsubscribe } from "../store.js";

/** A channel on the connection (its listeners are in {@link Listeners}). */
interface Channel {
  subscribed: boolean;
  /** SUBSCRIBE / UNSUBSCRIBE of this channel run one after the other. */
  chain: Promise<void>;
}

export interface SubscriberOptions {
  /** The wake channel (KeyLayout.wake). */
  wakeChannel: string;
  /** A wake-up for `queue` was heard. */
  onWake(queue: string): void;
  /** The connection is back after a drop (ioredis re-subscribed): wake-ups may have been missed. */
  onReconnect(): void;
  /** A listener threw (the publisher is not affected). */
  onListenerError(error: unknown): void;
  /** The store is closing: unsubscribing no longer reaches the server. */
  isClosed(): boolean;
}

export class Subscriber {
  private readonly channels = new Map<string, Channel>();
  private readonly listeners = new Listeners((error) => this.options.onListenerError(error));

  constructor(
    /** The subscriber connection (made when the store connects, before {@link start}). */
    private readonly conns: { readonly sub: Redis },
    private readonly options: SubscriberOptions,
  ) {}

  /** Listen on the connection and subscribe to the wake channel. */
  async start(): Promise<void> {
    this.conns.sub.on("message", (channel: string, message: string) =>
      this.onMessage(channel, message),
    );
    this.conns.sub.on("ready", () => this.options.onReconnect());
    await this.conns.sub.subscribe(this.options.wakeChannel);
  }

  /**
   * Add `listener` on channel `name` (the full channel name). Rejects with the connection's error
   * when the SUBSCRIBE fails (the listener is then not added).
   */
  async subscribe(name: string, listener: (message: string) => void): Promise<Unsubscribe> {
    let entry = this.channels.get(name);
    if (!entry) {
      entry = { subscribed: false, chain: Promise.resolve() };
      this.channels.set(name, entry);
    }
    const channel = entry;
    const remove = this.listeners.add(name, listener);
    try {
      await this.reconcile(name, channel);
    } catch (error) {
      remove();
      void this.reconcile(name, channel).catch(() => {});
      throw error;
    }
    return async () => {
      if (!remove()) return;
      if (!this.options.isClosed()) await this.reconcile(name, channel).catch(() => {});
    };
  }

  /** Close: forget every channel and its listeners. */
  clear(): void {
    this.channels.clear();
    this.listeners.clear();
  }

  private onMessage(channel: string, message: string): void {
    if (channel === this.options.wakeChannel) {
      this.options.onWake(message);
      return;
    }
    this.listeners.deliver(channel, message);
  }

  /**
   * Bring the subscriber in line with whether `name` has listeners; one change at a time per
   * channel. A record no longer the channel's (forgotten when it went idle, or at close) changes
   * nothing: the listeners counted are those of the channel's current record.
   */
  private reconcile(name: string, entry: Channel): Promise<void> {
    const next = entry.chain
      .catch(() => {})
      .then(async () => {
        if (this.channels.get(name) !== entry) return;
        const wanted = this.listeners.count(name) > 0;
        if (wanted && !entry.subscribed) {
          await this.conns.sub.subscribe(name);
          entry.subscribed = true;
        } else if (!wanted && entry.subscribed) {
          entry.subscribed = false;
          await this.conns.sub.unsubscribe(name);
        }
        if (
          this.listeners.count(name) === 0 &&
          !entry.subscribed &&
          this.channels.get(name) === entry
        )
          this.channels.delete(name);
      });
    entry.chain = next;
    return next;
  }
}
