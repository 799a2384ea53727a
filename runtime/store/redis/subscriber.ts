/**
 * The subscriber connection's side of the store: `subscribe` channels with their listeners (one
 * SUBSCRIBE per channel, fanned out in process), and the wake channel, whose messages and the
 * connection's reconnects go to the claim waiters.
 */
import type { Redis } from "ioredis";
import type { Unsubscribe } from "../store.js";

interface Channel {
  readonly listeners: Set<(message: string) => void>;
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
      entry = { listeners: new Set(), subscribed: false, chain: Promise.resolve() };
      this.channels.set(name, entry);
    }
    const channel = entry;
    // Wrap, so the same function subscribed twice is two subscriptions, each removed on its own.
    const subscription = (message: string): void => listener(message);
    channel.listeners.add(subscription);
    try {
      await this.reconcile(name, channel);
    } catch (error) {
      channel.listeners.delete(subscription);
      void this.reconcile(name, channel).catch(() => {});
      throw error;
    }
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      channel.listeners.delete(subscription);
      if (!this.options.isClosed()) await this.reconcile(name, channel).catch(() => {});
    };
  }

  /** Close: forget every channel. */
  clear(): void {
    this.channels.clear();
  }

  private onMessage(channel: string, message: string): void {
    if (channel === this.options.wakeChannel) {
      this.options.onWake(message);
      return;
    }
    const entry = this.channels.get(channel);
    if (!entry) return;
    for (const listener of [...entry.listeners]) {
      try {
        listener(message);
      } catch (error) {
        try {
          this.options.onListenerError(error);
        } catch {
          // the error handler failing must not break delivery to the others either
        }
      }
    }
  }

  /** Bring the subscriber in line with whether `name` has listeners; one change at a time per channel. */
  private reconcile(name: string, entry: Channel): Promise<void> {
    const next = entry.chain
      .catch(() => {})
      .then(async () => {
        const wanted = entry.listeners.size > 0;
        if (wanted && !entry.subscribed) {
          await this.conns.sub.subscribe(name);
          entry.subscribed = true;
        } else if (!wanted && entry.subscribed) {
          entry.subscribed = false;
          await this.conns.sub.unsubscribe(name);
        }
        if (entry.listeners.size === 0 && !entry.subscribed && this.channels.get(name) === entry)
          this.channels.delete(name);
      });
    entry.chain = next;
    return next;
  }
}
