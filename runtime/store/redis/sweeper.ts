/**
 * The periodic sweep of one agent: the queues whose earliest delay end or lease deadline has come
 * (the `due` index) get their lapsed leases and ended delays recovered, which publishes wake-ups,
 * so the waiters of every agent hear of them within `sweepMs`.
 */
import type { Clock, Timer } from "../../clock.js";
import type { RunScript } from "./connections.js";
import { DUE_QUEUES, SWEEP_QUEUE } from "./scripts.js";

/** Queues handled per sweep pass. */
export const SWEEP_LIMIT = 100;

export class Sweeper {
  private timer: Timer | null = null;
  private at = Infinity;
  private sweeping: Promise<void> | null = null;
  private again = false;
  private stopped = false;

  constructor(
    private readonly run: RunScript,
    private readonly clock: Clock,
    /** Longest wait between sweeps. */
    private readonly sweepMs: number,
  ) {}

  /** Sweep `inMs` from now, unless one is already due sooner. */
  schedule(inMs: number): void {
    if (this.stopped) return;
    const at = this.clock.now() + inMs;
    if (this.timer && this.at <= at) return;
    this.timer?.cancel();
    this.at = at;
    this.timer = this.clock.setTimeout(
      () => {
        this.timer = null;
        this.at = Infinity;
        this.sweep();
      },
      inMs,
      { unref: true },
    );
  }

  /** No more sweeps; resolves when the one in progress (if any) has ended. */
  stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
    return this.sweeping ?? Promise.resolve();
  }

  /** Recover lapsed leases and ended delays of every due queue (publishing wake-ups), then re-arm. */
  private sweep(): void {
    if (this.stopped) return;
    if (this.sweeping) {
      this.again = true;
      return;
    }
    this.sweeping = (async () => {
      let next = this.sweepMs;
      try {
        const due = await this.run(DUE_QUEUES, { limit: SWEEP_LIMIT });
        if (due.nextDueInMs !== null) next = Math.min(next, due.nextDueInMs);
        for (const queue of due.names) {
          if (this.stopped) return;
          const queueDue = await this.run(SWEEP_QUEUE, { queue });
          if (queueDue !== null) next = Math.min(next, queueDue);
        }
        if (due.names.length >= SWEEP_LIMIT) next = 0;
      } catch {
        // Redis unreachable (or closing): try again at the next interval.
      } finally {
        this.sweeping = null;
      }
      if (this.again) {
        this.again = false;
        next = 0;
      }
      this.schedule(Math.max(next, 1));
    })();
  }
}
