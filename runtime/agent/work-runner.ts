/**
 * Runs a pool's claimed work on its containers: one input, or one batch, per container slot.
 * Each input's run ends in a Verdict; the retry policy decides, and the runner carries it out:
 * finish the claim with its outcome (OutcomeWriter.settle) or release it for a retry. It knows
 * which inputs are running where, and which wait to run alone (held), for cancel and to hand them
 * back when the pool stops.
 */
import { randomUUID } from "node:crypto";
import { WorkerExitedError, WorkerStartError } from "../containers/worker-process.js";
import type { OomVerdict } from "../containers/oom.js";
import type { Outcome } from "../protocol.js";
import { PLATFORM_RETRIES } from "../spec/index.js";
import type { Claim, Store } from "../store/store.js";
import type { Container, ContainerSet, FunctionRuntime } from "./containers.js";
import type { InputEnvelope } from "./inputs.js";
import type { Lease, LeaseKeeper } from "./lease-keeper.js";
import type { OutcomeWriter } from "./outcomes.js";
import {
  admit,
  decide,
  verdictOfFailure,
  verdictOfRun,
  verdictsOfBatch,
  withoutRetry,
  type RunFailure,
  type Verdict,
} from "./retry-policy.js";

/** A claimed input: the claim and the input it carries. */
export interface ClaimedInput {
  claim: Claim;
  input: InputEnvelope;
}

/** One slot's work: a single input, or a batch of inputs for a batched function. */
export interface Work {
  id: string;
  items: ClaimedInput[];
  batch: boolean;
  /** A `solo` input (never a batch): it runs in a container that runs nothing else meanwhile. */
  solo: boolean;
  cancelled: boolean;
  timedOut: boolean;
  /** Its claims, claimed together: whether they are surely still this agent's. */
  lease: Lease;
}

export interface WorkRunnerContext {
  store: Pick<Store, "release">;
  outcomes: Pick<OutcomeWriter, "markRunning" | "streamItem" | "settle">;
  leases: Pick<LeaseKeeper, "open" | "track" | "untrack" | "clear">;
  containers: Pick<ContainerSet, "assign" | "finished">;
  /** The function as deployed now. */
  runtime(): FunctionRuntime;
  /** Whether the pool is stopping (it hands back what runs). */
  stopped(): boolean;
  log(text: string, containerId?: string): void;
  /** Work started: `inputs` inputs run now. */
  started(inputs: number): void;
  /** The last running input ended. */
  idle(): void;
  /** A slot came free. */
  notify(): void;
}

export class WorkRunner {
  /** Input id -> the container running it and its work (for cancel and stop). */
  private readonly running = new Map<string, { container: Container; work: Work }>();
  /** Solo work claimed while no container could take it alone, oldest first (leases renewed). */
  private readonly heldWork: Work[] = [];

  constructor(private readonly ctx: WorkRunnerContext) {}

  /** How many inputs run now. */
  get inFlight(): number {
    return this.running.size;
  }

  /** How many claimed inputs wait to run alone. */
  get held(): number {
    return this.heldWork.length;
  }

  /** Keep solo `work` claimed (its leases renewed) until a container can run it alone. */
  hold(work: Work): void {
    this.heldWork.push(work);
    this.ctx.leases.track(work.lease, work.items);
  }

  /** The oldest held work, still held (the caller runs it or holds it on). */
  firstHeld(): Work | undefined {
    return this.heldWork[0];
  }

  /** Stop holding `work` (about to run it). Returns false when it is no longer held (cancelled). */
  unhold(work: Work): boolean {
    const at = this.heldWork.indexOf(work);
    if (at < 0) return false;
    this.heldWork.splice(at, 1);
    this.ctx.leases.untrack(work.lease);
    return true;
  }

  /**
   * Work from fresh claims (asked for at `askedAt`), or null when none of them is to run: an
   * input whose platform retries are spent is finished with WorkerCrashed instead.
   */
  admit(claims: readonly Claim[], batch: boolean, askedAt: number): Work | null {
    const work: Work = {
      id: `w-${randomUUID().slice(0, 8)}`,
      items: [],
      batch,
      solo: false,
      cancelled: false,
      timedOut: false,
      lease: this.ctx.leases.open(askedAt),
    };
    for (const claim of claims) {
      const admission = admit(JSON.parse(claim.payload) as InputEnvelope, claim.deliveries);
      if (admission.kind === "give-up") {
        const { input, outcome } = admission;
        void this.recorded(claim, input).then(async (ok) => {
          if (ok) await this.finish(claim, input, outcome, false);
        });
      } else work.items.push({ claim, input: admission.input });
    }
    if (work.items.length === 0) return null;
    work.solo = !batch && work.items.some((item) => item.input.solo === true);
    return work;
  }

  /** Kill the work of an input that runs here. Returns whether it runs here. */
  cancel(inputId: string): boolean {
    const held = this.heldWork.find((work) => work.items.some((i) => i.input.id === inputId));
    if (held) {
      this.unhold(held);
      held.cancelled = true;
      const verdict = verdictOfFailure({ ...this.failureOf(held), error: null });
      for (const { claim, input } of held.items) void this.conclude(claim, input, verdict, held);
      return true;
    }
    const running = this.running.get(inputId);
    if (!running) return false;
    running.work.cancelled = true;
    running.container.proc.kill("cancel");
    return true;
  }

  /** Give claims back to the front of their queue, unrun. */
  handBackClaims(claims: readonly Claim[]): void {
    for (const claim of claims)
      void this.handBack(claim, JSON.parse(claim.payload) as InputEnvelope);
  }

  /** Give work's inputs back to the front of their queue, unrun. */
  handBackWork(work: Work): void {
    for (const { claim, input } of work.items) void this.handBack(claim, input);
  }

  /** The pool stops: whatever still runs goes back to the queue, for another container or agent. */
  async handBackRunning(): Promise<void> {
    const works = new Set([...this.running.values()].map((r) => r.work));
    for (const work of this.heldWork) works.add(work);
    this.running.clear();
    this.heldWork.length = 0;
    this.ctx.leases.clear();
    for (const work of works) {
      await Promise.all(work.items.map(({ claim, input }) => this.handBack(claim, input)));
    }
  }

  /** Run `work` on `container`, then carry out the retry policy's decision for each input. */
  async run(container: Container, work: Work): Promise<void> {
    const timeoutS = this.ctx.runtime().spec.timeout;
    const inputs = work.items.map((item) => item.input);
    this.ctx.containers.assign(container, work.id, inputs.length, work.solo);
    for (const input of inputs) this.running.set(input.id, { container, work });
    this.ctx.leases.track(work.lease, work.items);
    this.ctx.started(this.running.size);
    let timer: NodeJS.Timeout | undefined;
    let yielded = false;
    let streamWrites: Promise<void> = Promise.resolve();
    let verdicts: Verdict[];
    try {
      await container.proc.ready();
      if (work.cancelled)
        throw new WorkerExitedError({ code: null, signal: "SIGKILL", killedFor: "cancel" });
      await Promise.all(inputs.map((input) => this.ctx.outcomes.markRunning(input)));
      timer = setTimeout(() => {
        work.timedOut = true;
        container.proc.kill("timeout");
      }, timeoutS * 1000);
      if (work.batch) {
        const outcome = await container.proc.runBatch(
          work.id,
          inputs.map((input) => input.args),
        );
        verdicts = verdictsOfBatch(outcome, inputs.length);
      } else {
        const input = inputs[0] as InputEnvelope;
        const run = await container.proc.run(
          input.id,
          input.args,
          input.kind === "stream" ? "stream" : "value",
          (value) => {
            yielded = true;
            streamWrites = streamWrites.then(() => this.ctx.outcomes.streamItem(input, value));
          },
        );
        verdicts = [verdictOfRun(run, input)];
      }
    } catch (error) {
      verdicts = await this.failed(container, work, error);
    } finally {
      clearTimeout(timer);
      this.ctx.containers.finished(container, work.id);
      for (const input of inputs) this.running.delete(input.id);
      this.ctx.leases.untrack(work.lease);
      if (this.running.size === 0) this.ctx.idle();
      this.ctx.notify();
    }
    await streamWrites;
    await Promise.all(
      work.items.map(({ claim, input }, i) => {
        const verdict = verdicts[i] as Verdict;
        // A stream that already yielded is not retried: its caller saw part of it.
        return this.conclude(claim, input, yielded ? withoutRetry(verdict) : verdict, work);
      }),
    );
  }

  /** The verdicts of work whose worker gave no answer. */
  private async failed(container: Container, work: Work, error: unknown): Promise<Verdict[]> {
    // A worker killed at its memory limit is the handler's failure, with the limit named.
    let oom: OomVerdict = { oom: false };
    if (
      !work.cancelled &&
      !work.timedOut &&
      (error instanceof WorkerExitedError || error instanceof WorkerStartError)
    ) {
      const exit = error instanceof WorkerExitedError ? error.exit : await container.proc.exited;
      oom = await container.sandbox.classifyExit(exit);
    }
    const verdict = verdictOfFailure({
      ...this.failureOf(work),
      error,
      ...(oom.oom ? { oom: container.sandbox.oomError(oom) } : {}),
    });
    return work.items.map(() => verdict);
  }

  /** What a failure of `work` is, apart from its error. */
  private failureOf(work: Work): Omit<RunFailure, "error"> {
    const { app, fn, spec } = this.ctx.runtime();
    return {
      cancelled: work.cancelled,
      timedOut: work.timedOut,
      fn: `${app}.${fn}`,
      timeoutS: spec.timeout,
      batch: work.batch,
    };
  }

  /** Carry out the retry policy's decision on one input. */
  private async conclude(
    claim: Claim,
    input: InputEnvelope,
    verdict: Verdict,
    work: Work,
  ): Promise<void> {
    if (this.ctx.stopped() && verdict.kind === "platform-failure") return; // handed back on stop
    if (!(await this.recorded(claim, input))) return;
    const trusted = work.lease.trusted();
    const decision = decide(input, verdict, this.ctx.runtime().spec.retries);
    switch (decision.kind) {
      case "deliver":
        return this.finish(claim, input, decision.outcome, trusted);
      case "give-up":
        return this.finish(claim, decision.next, decision.outcome, trusted);
      case "retry":
        await this.ctx.store.release(claim, {
          front: false,
          delayMs: decision.delayMs,
          payload: JSON.stringify(decision.next),
        });
        return;
      case "platform-retry":
        this.ctx.log(
          `input ${input.id}${input.solo ? " (ran alone)" : ""}: ${decision.reason}; platform retry ${decision.next.platformAttempt}/${PLATFORM_RETRIES}`,
        );
        await this.ctx.store.release(claim, {
          front: true,
          payload: JSON.stringify(decision.next),
        });
        return;
      case "isolate":
        this.ctx.log(
          `input ${input.id}: ${decision.reason}; not counted as a platform retry: it runs alone from now on, to tell whether it caused the crash`,
        );
        await this.ctx.store.release(claim, {
          front: true,
          payload: JSON.stringify(decision.next),
        });
    }
  }

  /**
   * Finish the claim with `outcome` (stored and announced in one store step with its ack).
   * `trusted`: the claim is surely still this agent's (a waiting caller may have it at once).
   */
  private async finish(
    claim: Claim,
    input: InputEnvelope,
    outcome: Outcome,
    trusted: boolean,
  ): Promise<void> {
    try {
      const result = await this.ctx.outcomes.settle(claim, input, outcome, { trusted });
      const cancelled = !outcome.ok && outcome.error.code === "CANCELLED";
      if (result === "stale" && !cancelled) {
        this.ctx.log(
          `input ${input.id} finished after its claim was taken (lease lapsed, or cancelled); its result was dropped`,
        );
      }
    } catch (error) {
      this.ctx.log(
        `could not store the outcome of ${input.id}: ${(error as Error).message}; it will be retried`,
      );
      await this.ctx.store.release(claim, { front: true }).catch(() => false);
    }
  }

  /**
   * Whether an eager hand-over's claim is recorded (at once for any other claim). When it could
   * not be, the caller was told so (the enqueue failed) or the queued copy runs: this run's
   * outcome is dropped.
   */
  private async recorded(claim: Claim, input: InputEnvelope): Promise<boolean> {
    if (!claim.recorded) return true;
    try {
      await claim.recorded;
      return true;
    } catch (error) {
      this.ctx.log(
        `input ${input.id} was started before the store recorded it, and the store could not: ${(error as Error).message}; its outcome is dropped`,
      );
      return false;
    }
  }

  /** Give a claimed input back to the front of its queue, unrun: not a failure. */
  private async handBack(claim: Claim, input: InputEnvelope): Promise<void> {
    if (!(await this.recorded(claim, input))) return;
    const next: InputEnvelope = { ...input, returned: (input.returned ?? 0) + 1 };
    await this.ctx.store
      .release(claim, { front: true, payload: JSON.stringify(next) })
      .catch(() => false);
  }
}
