/**
 * Where `.remote()` callers wait for their outcome: one channel per agent (`reply:<agentId>`),
 * subscribed once at start, instead of a SUBSCRIBE and an UNSUBSCRIBE per call (two store round
 * trips on Redis, one of them before the input could even be queued).
 *
 * A waiting call's input and record carry `replyTo` (the agent whose caller waits). The agent
 * that finishes the input publishes the outcome there in the same store step that stores it
 * (OutcomeWriter); when that agent is the caller's own, it hands the outcome over in process and
 * publishes nothing. Messages are best effort, as every store notification: a caller that hears
 * nothing by its deadline reads the stored result.
 */
import type { Outcome } from "../protocol.js";
import type { Store, Unsubscribe } from "../store/store.js";
import { channels, type StoredResult } from "./inputs.js";

interface ReplyMessage {
  id: string;
  result: StoredResult;
}

export interface Expecting {
  /** The outcome once it arrives, or null after `ms`. */
  wait(ms: number): Promise<Outcome | null>;
  /** Stop listening (idempotent). */
  stop(): void;
}

export class Replies {
  private readonly waiting = new Map<string, (outcome: Outcome) => void>();
  private unsubscribe: Unsubscribe | null = null;

  constructor(
    private readonly store: Store,
    readonly agentId: string,
  ) {}

  async start(): Promise<void> {
    this.unsubscribe = await this.store.subscribe(channels.reply(this.agentId), (message) => {
      const { id, result } = JSON.parse(message) as ReplyMessage;
      this.resolve(id, result.outcome);
    });
  }

  async stop(): Promise<void> {
    await this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /** Listen for `id`'s outcome; call before its input is queued, so it cannot arrive unheard. */
  expect(id: string): Expecting {
    const arrival = awaitable<Outcome>();
    this.waiting.set(id, arrival.deliver);
    return {
      wait: arrival.wait,
      stop: () => {
        this.waiting.delete(id);
      },
    };
  }

  /** Hand `id`'s outcome to its waiting caller on this agent, if there is one (true when there was). */
  resolve(id: string, outcome: Outcome): boolean {
    const waiter = this.waiting.get(id);
    if (!waiter) return false;
    this.waiting.delete(id);
    waiter(outcome);
    return true;
  }

  /** The message the finishing agent publishes on `reply:<replyTo>`. */
  static message(id: string, result: StoredResult): string {
    return JSON.stringify({ id, result } satisfies ReplyMessage);
  }
}

/** A value that arrives at most once, and a bounded wait for it (null when it did not come in time). */
export function awaitable<T>(): { deliver(value: T): void; wait(ms: number): Promise<T | null> } {
  let value: T | null = null;
  let wake: () => void = () => undefined;
  return {
    deliver: (arrived) => {
      value ??= arrived;
      wake();
    },
    wait: async (ms) => {
      if (value !== null) return value;
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, ms);
      });
      clearTimeout(timer);
      return value;
    },
  };
}
