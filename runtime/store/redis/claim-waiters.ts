/**
 * Blocked claims (`claim` with `waitMs`). A waiter holds no connection: it is woken by a wake-up
 * for one of its queues and then runs the claim script; waiters of one agent are served in
 * arrival order. Also here: what the agent knows about its queues being empty (wake marks), and
 * the enqueues that go straight to a waiter (enqueue-and-claim, the eager hand-over).
 */
import type { Clock, Timer } from "../../clock.js";
import { InternalError, UnavailableError, type KilnError } from "../../errors.js";
import { Waiter, WaiterIndex } from "../shared/waiters.js";
import type { Claim, EnqueueManyResult, WorkItem } from "../store.js";
import { sleep, type Connections } from "./connections.js";
import {
  CLAIM,
  ENQUEUE_CLAIM,
  ENQUEUE_TAKE,
  HANDED_OVER,
  type ClaimReply,
  type Claimer,
  type EnqueueClaimInput,
  type EnqueueRecord,
} from "./scripts.js";

/** How often a hand-over whose reply was lost asks whether it ran, while the server does not answer. */
const HAND_OVER_RECHECK_MS = 200;

/** What the waiters need of the connections: run scripts, map failures, and their state. */
export type WaiterConnections = Pick<Connections, "run" | "fail" | "ready" | "closed">;

/** A blocked claim: `claim`'s arguments, the call's {@link Waiter}, and its attempts. */
interface ClaimWaiter extends Claimer {
  /** Whether it takes an item before the store recorded its claim, now (ClaimOptions.eager). */
  readonly eager: (() => boolean) | undefined;
  /** Ends the `claim` call: with claims, at its timeout or abort (`onStop`), or with an error. */
  readonly call: Waiter<Claim[]>;
  /** Asked to end (timeout, abort, close) during a claim attempt: it ends with its result. */
  stopping: boolean;
  /** The claim attempt in flight; resolves true when it claimed something. */
  running: Promise<boolean> | null;
  /** Another attempt was asked for while one was in flight (a wake-up arrived meanwhile). */
  rerun: boolean;
  recheck: Timer | null;
}

/** Whether `waiter` still waits: not ended, and not asked to end. */
function waiting(waiter: ClaimWaiter): boolean {
  return !waiter.call.done && !waiter.stopping;
}

/**
 * A set of queues a claim attempt left with no ready item: until a wake-up for one of them is
 * heard (or the subscriber reconnects, or `dueAt` passes), a claimer may wait without asking.
 */
interface KnownEmpty {
  /** {@link ClaimWaiters.wakeMark} when the attempt was sent. */
  mark: string;
  /** clock.now() when the earliest delay or lease among them ends; Infinity when none. */
  dueAt: number;
}

export interface WaitOptions extends Claimer {
  waitMs: number;
  signal: AbortSignal | undefined;
  eager: (() => boolean) | undefined;
}

export class ClaimWaiters {
  private readonly waiters = new WaiterIndex<ClaimWaiter>();
  /** Wake-ups heard per queue; `wakeEpoch` moves for every queue when the subscriber reconnects. */
  private readonly wakesHeard = new Map<string, number>();
  private wakeEpoch = 0;
  /** By {@link queueSetKey}: queue sets the last claim attempt on them left with nothing ready. */
  private readonly knownEmptySets = new Map<string, KnownEmpty>();
  /** Queues with a wake-up round in progress, and those that got another wake-up meanwhile. */
  private readonly rounds = new Set<string>();
  private readonly roundAgain = new Set<string>();

  constructor(
    private readonly conns: WaiterConnections,
    /** Local timers: the waits, the re-checks. */
    private readonly clock: Clock,
    /** Longest wait between a waiter's re-checks (a bound against missed wake-ups). */
    private readonly sweepMs: number,
  ) {}

  /** One claim attempt, now. */
  async claimNow(claimer: Claimer): Promise<Claim[]> {
    return (await this.attemptClaim(claimer)).claims;
  }

  /** A claim that waits up to `waitMs` for something to claim. */
  wait(options: WaitOptions): Promise<Claim[]> {
    const waiter: ClaimWaiter = {
      queues: options.queues,
      owner: options.owner,
      leaseMs: options.leaseMs,
      max: options.max,
      eager: options.eager,
      call: new Waiter<Claim[]>({
        clock: this.clock,
        waitMs: options.waitMs,
        signal: options.signal,
        onStop: () => this.stopWaiter(waiter),
      }),
      stopping: false,
      running: null,
      rerun: false,
      recheck: null,
    };
    // Registered before the first attempt, so a wake-up that races it is not missed.
    this.waiters.add(waiter.queues, waiter);
    // The last attempt on these queues left nothing ready and no wake-up came since: nothing to
    // ask for until one comes (or the re-check). A waiting agent's next call is then an
    // enqueue-and-claim, not a claim that finds nothing first.
    const empty = this.knownEmpty(waiter.queues);
    if (empty === null) void this.poke(waiter);
    else this.armRecheck(waiter, empty.dueInMs);
    return waiter.call.result;
  }

  /**
   * When a claimer of this store waits on `queue` with no attempt in flight: enqueue and claim for
   * it in one script (ENQUEUE_CLAIM; its first attempt runs synchronously up to its first await).
   * Null when there is none, or when the enqueue did not run (the caller enqueues).
   */
  enqueueClaim(
    input: Omit<EnqueueClaimInput, "claimer">,
  ): Promise<EnqueueManyResult | null> | null {
    const waiter = this.idleWaiter(input.queue);
    if (!waiter) return null;
    let enqueued: EnqueueManyResult | null = null;
    let failure: unknown = null;
    const poked = this.poke(waiter, async () => {
      try {
        return await this.attempt(waiter.queues, async () => {
          const reply = await this.conns.run(ENQUEUE_CLAIM, { ...input, claimer: waiter });
          enqueued = reply.enqueued;
          return reply.claimed;
        });
      } catch (error) {
        failure = error;
        throw error;
      }
    });
    return poked.then(() => {
      if (failure !== null) throw this.conns.fail(failure);
      return enqueued;
    });
  }

  /**
   * An eager hand-over (EnqueueOptions.eager) of `item`, when an eager claimer of this store is
   * idle on `queue` and the queue is known to hold nothing ready (its last attempt found it empty
   * and no wake-up came since), so the item jumps no one. Only while both connections are up: the
   * command one, or the recording step is doomed from the start; the subscriber, or wake-ups for
   * items queued elsewhere go unheard. Null when there is no such claimer.
   */
  handOver(
    queue: string,
    item: WorkItem,
    records: readonly EnqueueRecord[],
  ): Promise<EnqueueManyResult> | null {
    const waiter = this.eagerWaiter(queue);
    return waiter && this.handOverTo(waiter, queue, item, records);
  }

  /** Whether an eager enqueue on `queue` would be handed over now (as `handOver` decides). */
  wouldHandOver(queue: string): boolean {
    return this.eagerWaiter(queue) !== null;
  }

  /** The idle claimer an eager enqueue on `queue` goes to now, or null when none may take it. */
  private eagerWaiter(queue: string): ClaimWaiter | null {
    if (!this.conns.ready) return null;
    const waiter = this.idleWaiter(queue);
    return waiter?.eager?.() === true && this.knownEmpty(waiter.queues) !== null ? waiter : null;
  }

  /** A wake-up for `queue` was heard. */
  heard(queue: string): void {
    this.wakesHeard.set(queue, (this.wakesHeard.get(queue) ?? 0) + 1);
    this.wake(queue);
  }

  /** The subscriber reconnected: wake-ups may have been missed while it was away. */
  reconnected(): void {
    this.wakeEpoch += 1;
    for (const queue of this.waiters.keys()) this.wake(queue);
  }

  /** Close: every waiter ends with [] (or with what its attempt in flight claims), the attempts returned. */
  stopAll(): Promise<boolean>[] {
    const running: Promise<boolean>[] = [];
    for (const waiter of this.waiters.all()) {
      if (waiter.running) running.push(waiter.running);
      this.stopWaiter(waiter);
    }
    return running;
  }

  /**
   * Hand `item` to `waiter` now and record it as claimed by it in the same step as its enqueue
   * (ENQUEUE_TAKE, sent before the waiter's owner gets the claim): the work and the round trip
   * overlap. See Claim.recorded.
   */
  private async handOverTo(
    waiter: ClaimWaiter,
    queue: string,
    item: WorkItem,
    records: readonly EnqueueRecord[],
  ): Promise<EnqueueManyResult> {
    const claim: Claim = { queue, id: item.id, payload: item.payload, fence: 0, deliveries: 0 };
    const taken = this.conns.run(ENQUEUE_TAKE, {
      queue,
      item,
      owner: waiter.owner,
      leaseMs: waiter.leaseMs,
      records,
    });
    claim.recorded = taken
      .then(
        (reply) => {
          if (!reply.taken)
            throw new InternalError(`input ${item.id} is already queued; the queued copy runs`);
          return reply.fence;
        },
        (error: unknown) => this.handedOver(queue, item.id, waiter.owner, waiter.leaseMs, error),
      )
      .then((fence) => {
        claim.fence = fence;
        delete claim.recorded;
      });
    claim.recorded.catch(() => {});
    this.resolveWaiter(waiter, [claim]);
    await taken;
    // An id already queued counts as accepted, as ENQUEUE counts it.
    return { accepted: 1 };
  }

  /**
   * The reply to a hand-over's ENQUEUE_TAKE never came (command timeout, dropped connection), so
   * whether it ran is unknown. Ask (HANDED_OVER) once the server answers, for up to half the lease
   * (nobody renews the claim meanwhile): when it did run, its fence, so the run that already
   * happened is settled rather than repeated once the claim lapses. Throws `error` when it did not
   * run, or when that cannot be found out in time.
   */
  private async handedOver(
    queue: string,
    id: string,
    owner: string,
    leaseMs: number,
    error: unknown,
  ): Promise<number> {
    if (!(error instanceof UnavailableError)) throw error;
    // Real time, as the pauses between asks: the lease runs on the server whatever `clock` says.
    const deadline = performance.now() + leaseMs / 2;
    while (!this.conns.closed && performance.now() < deadline) {
      try {
        const reply = await this.conns.run(HANDED_OVER, { queue, id, owner });
        if (reply.ran) return reply.fence;
        break;
      } catch (retry) {
        if (!(retry instanceof UnavailableError)) break;
      }
      await sleep(HAND_OVER_RECHECK_MS);
    }
    throw error;
  }

  /** This store's first claimer waiting on `queue` with no attempt in flight. */
  private idleWaiter(queue: string): ClaimWaiter | null {
    for (const waiter of this.waiters.on(queue)) {
      if (waiting(waiter) && waiter.running === null) return waiter;
    }
    return null;
  }

  private attemptClaim(claimer: Claimer): Promise<ClaimReply> {
    if (claimer.queues.length === 0)
      return Promise.resolve({ claims: [], after: { readyLeft: false, dueInMs: null } });
    return this.attempt(claimer.queues, () => this.conns.run(CLAIM, claimer));
  }

  /** Run a claim script on `queues` and note whether it left them known to be empty. */
  private async attempt(
    queues: readonly string[],
    run: () => Promise<ClaimReply>,
  ): Promise<ClaimReply> {
    const mark = this.wakeMark(queues);
    const reply = await run();
    const key = queueSetKey(queues);
    if (reply.after.readyLeft) this.knownEmptySets.delete(key);
    else {
      const { dueInMs } = reply.after;
      this.knownEmptySets.set(key, {
        mark,
        dueAt: dueInMs === null ? Infinity : this.clock.now() + dueInMs,
      });
    }
    return reply;
  }

  /**
   * What has been heard that could have made `queues` claimable: wake-ups for them, reconnects.
   * The same whatever the order of `queues` (a claimer alternates it).
   */
  private wakeMark(queues: readonly string[]): string {
    return `${this.wakeEpoch}:${[...queues]
      .sort()
      .map((queue) => this.wakesHeard.get(queue) ?? 0)
      .join(",")}`;
  }

  /**
   * When the last attempt on `queues` left nothing ready and nothing was heard since (a wake-up is
   * published whenever a ready list goes from empty to non-empty, in any agent): when something
   * among them is due (null: nothing is). Null when they must be asked.
   */
  private knownEmpty(queues: readonly string[]): { dueInMs: number | null } | null {
    const empty = this.knownEmptySets.get(queueSetKey(queues));
    if (!empty || empty.mark !== this.wakeMark(queues)) return null;
    const dueInMs = empty.dueAt - this.clock.now();
    if (dueInMs <= 0) return null;
    return { dueInMs: Number.isFinite(dueInMs) ? dueInMs : null };
  }

  /**
   * Run a claim attempt for `waiter` (or, when one is in flight, one more right after it).
   * Resolves true when the waiter got claims. Never rejects.
   */
  private poke(waiter: ClaimWaiter, first?: () => Promise<ClaimReply>): Promise<boolean> {
    if (!waiting(waiter)) return Promise.resolve(false);
    if (waiter.running) {
      waiter.rerun = true;
      return waiter.running;
    }
    let attempt = first ?? (() => this.attemptClaim(waiter));
    const running = (async (): Promise<boolean> => {
      try {
        for (;;) {
          waiter.rerun = false;
          const { claims, after } = await attempt();
          attempt = () => this.attemptClaim(waiter);
          if (claims.length > 0) {
            this.resolveWaiter(waiter, claims);
            return true;
          }
          if (!waiting(waiter)) {
            this.resolveWaiter(waiter, []);
            return false;
          }
          if (!waiter.rerun) {
            this.armRecheck(waiter, after.readyLeft ? null : after.dueInMs);
            return false;
          }
        }
      } catch (error) {
        if (waiter.stopping) this.resolveWaiter(waiter, []);
        else this.resolveWaiter(waiter, [], this.conns.fail(error));
        return false;
      } finally {
        waiter.running = null;
      }
    })();
    waiter.running = running;
    return running;
  }

  /** Try again after `sweepMs`, or right after `dueInMs` when that is sooner (null: nothing due). */
  private armRecheck(waiter: ClaimWaiter, dueInMs: number | null): void {
    waiter.recheck?.cancel();
    const { sweepMs } = this;
    const ms = dueInMs !== null ? Math.min(sweepMs, dueInMs + 1) : sweepMs;
    waiter.recheck = this.clock.setTimeout(() => {
      waiter.recheck = null;
      void this.poke(waiter);
    }, ms);
  }

  /** A wake-up for `queue`: its waiters try in arrival order until one finds nothing. */
  private wake(queue: string): void {
    if (this.conns.closed || !this.waiters.has(queue)) return;
    if (this.rounds.has(queue)) {
      this.roundAgain.add(queue);
      return;
    }
    this.rounds.add(queue);
    void (async () => {
      try {
        do {
          this.roundAgain.delete(queue);
          for (const waiter of [...this.waiters.on(queue)]) {
            if (!waiting(waiter)) continue;
            // Nothing for this waiter means nothing claimable in `queue` either.
            if (!(await this.poke(waiter))) break;
          }
        } while (this.roundAgain.has(queue) && !this.conns.closed);
      } finally {
        this.rounds.delete(queue);
        this.roundAgain.delete(queue);
      }
    })();
  }

  /** Timeout, abort or close: end now, or with the result of the attempt in flight. */
  private stopWaiter(waiter: ClaimWaiter): void {
    if (!waiting(waiter)) return;
    if (waiter.running) {
      waiter.stopping = true;
      waiter.call.disarm();
      waiter.recheck?.cancel();
    } else {
      this.resolveWaiter(waiter, []);
    }
  }

  /** End `waiter`'s `claim` call: with `claims`, or with `error`. */
  private resolveWaiter(waiter: ClaimWaiter, claims: Claim[], error?: KilnError): void {
    const ended = error ? waiter.call.fail(error) : waiter.call.finish(claims);
    if (!ended) return;
    waiter.recheck?.cancel();
    this.waiters.remove(waiter.queues, waiter);
  }
}

/** One key for a set of queues, whatever order a claimer names them in. */
function queueSetKey(queues: readonly string[]): string {
  return [...queues].sort().join("\n");
}
