/**
 * Subscriptions fanned out in process: the listeners of each channel, and delivery of a message
 * to each of them in turn, a listener's error going to an error callback (never to the publisher
 * or to the other listeners).
 */

export type Listener = (message: string) => void;

export class Listeners {
  private readonly byChannel = new Map<string, Set<Listener>>();

  /** `onError` gets what a listener throws; what it throws in turn is dropped. */
  constructor(private readonly onError: (error: unknown) => void) {}

  /**
   * Subscribe `listener` to `channel`. The same function added twice is two subscriptions, each
   * removed on its own: the returned function removes this one (true the first time only).
   */
  add(channel: string, listener: Listener): () => boolean {
    const subscription: Listener = (message) => listener(message);
    let set = this.byChannel.get(channel);
    if (!set) {
      set = new Set();
      this.byChannel.set(channel, set);
    }
    set.add(subscription);
    return () => {
      const current = this.byChannel.get(channel);
      if (!current?.delete(subscription)) return false;
      if (current.size === 0) this.byChannel.delete(channel);
      return true;
    };
  }

  /** How many subscriptions `channel` has. */
  count(channel: string): number {
    return this.byChannel.get(channel)?.size ?? 0;
  }

  /** Call each listener of `channel` (those subscribed when delivery starts) with `message`. */
  deliver(channel: string, message: string): void {
    const listeners = this.byChannel.get(channel);
    if (!listeners) return;
    for (const listener of [...listeners]) {
      try {
        listener(message);
      } catch (error) {
        try {
          this.onError(error);
        } catch {
          // the error handler failing must not break delivery to the others either
        }
      }
    }
  }

  /** Drop every subscription. */
  clear(): void {
    this.byChannel.clear();
  }
}
