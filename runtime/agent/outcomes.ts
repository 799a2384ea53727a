/**
 * Writes an input's outcome where its caller looks for it: a result key for calls (kept
 * `resultTtlMs`, and the call's record expires with it), the map's output list for map inputs,
 * the stream list for generators; then announces it on the call's channel and, for a waiting
 * `.remote()`, on its caller's agent's reply channel (replies.ts).
 *
 * An input run from a claim is settled in one store step with its ack (`Store.settle`): fenced,
 * so an agent whose lease lapsed (paused, partitioned) writes nothing, and first-writer-wins
 * (`guard`), so an outcome stored by someone else first (a cancel) stands.
 */
import type { CallInfo, MapOutput, Outcome, StreamItem } from "../protocol.js";
import type { ClaimRef, Effects, SettleResult, Store } from "../store/store.js";
import { channels, keys, type CallRun, type InputEnvelope, type StoredResult } from "./inputs.js";
import { Replies } from "./replies.js";

/** Map outputs and stream items nobody reads expire this long after the last write. */
const LIST_TTL_MS = 60 * 60 * 1000;

/** Settles sent to the store in one round trip, at most. */
const SETTLE_BATCH_MAX = 256;

interface PendingSettle {
  claim: ClaimRef;
  input: InputEnvelope;
  outcome: Outcome;
  effects: Effects;
  resolve(result: SettleResult): void;
  reject(error: unknown): void;
}

export class OutcomeWriter {
  private readonly settling: PendingSettle[] = [];
  private flushing = false;
  /** A flush is due at the end of this turn (after an early hand-over). */
  private flushQueued = false;

  constructor(
    private readonly store: Store,
    private readonly resultTtlMs: number,
    private readonly replies: Replies,
  ) {}

  /**
   * Record that an attempt started (beside the call's record, which is written once, so nothing
   * here can undo its expiry). Map inputs have no call record; `.remote()` calls keep theirs lean
   * (their caller waits on the outcome), so only spawned calls and streams track attempts.
   */
  async markRunning(input: InputEnvelope): Promise<void> {
    if (input.kind === "map" || input.kind === "call") return;
    const raw = await this.store.get(keys.callRun(input.id));
    const before = raw === null ? null : (JSON.parse(raw) as CallRun);
    const run: CallRun = {
      startedAt: before?.startedAt ?? new Date().toISOString(),
      attempts: (before?.attempts ?? 0) + 1,
    };
    await this.store.set(keys.callRun(input.id), JSON.stringify(run), { ttlMs: this.resultTtlMs });
  }

  async streamItem(input: InputEnvelope, value: string): Promise<void> {
    await this.store.listPush(
      keys.stream(input.id),
      [JSON.stringify({ t: "y", v: value } satisfies StreamItem)],
      {
        ttlMs: LIST_TTL_MS,
      },
    );
    await this.store.publish(channels.done(input.id), "item");
  }

  /**
   * Settle a claimed input: ack, store and announce its outcome in one step (nothing when stale).
   * The first settle goes to the store at once; those that come while it is in flight go
   * together in the next (one round trip for many map outputs, no wait for a lone call).
   *
   * `trusted`: the caller knows the claim is surely still its own (within the trusted part of its
   * lease, see lease-keeper.ts), so no other delivery can have run or settled the input: a
   * `.remote()` caller waiting on this agent gets the outcome now, while the store step is under
   * way, instead of a store round trip later. The input stays claimed until that step acks it, so
   * if this agent dies in between the input runs again elsewhere (at-least-once, as for any crash
   * before the ack) and its result is stored for nobody. Without `trusted`, the caller gets the
   * outcome only once it is stored.
   */
  settle(
    claim: ClaimRef,
    input: InputEnvelope,
    outcome: Outcome,
    options: { trusted?: boolean } = {},
  ): Promise<SettleResult> {
    const handedOver = options.trusted === true && this.handOver(input, outcome);
    return new Promise<SettleResult>((resolve, reject) => {
      this.settling.push({
        claim,
        input,
        outcome,
        effects: this.effects(input, outcome),
        resolve,
        reject,
      });
      if (this.flushing || this.flushQueued) return;
      if (!handedOver) {
        void this.flush();
        return;
      }
      // The reply handed over goes out first (in this turn's microtasks), the store step at the
      // end of this event-loop turn: the caller does not wait for its encoding and write. The
      // client's `.remote()` does not expose the call's id; a raw HTTP caller that asks about
      // the call within that turn may still see it running.
      this.flushQueued = true;
      setImmediate(() => {
        this.flushQueued = false;
        if (!this.flushing) void this.flush();
      });
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.settling.length > 0) {
        const batch = this.settling.splice(0, SETTLE_BATCH_MAX);
        try {
          const results = await this.store.settleMany(
            batch.map(({ claim, effects }) => ({ claim, effects })),
          );
          batch.forEach((entry, i) => {
            const result = results[i] ?? "stale";
            if (result === "applied") this.handOver(entry.input, entry.outcome);
            entry.resolve(result);
          });
        } catch (error) {
          for (const entry of batch) entry.reject(error);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  /** Store and announce an outcome with no claim (a cancelled pending input, a refused run). False when one was stored first. */
  async deliver(input: InputEnvelope, outcome: Outcome): Promise<boolean> {
    const applied = await this.store.apply(this.effects(input, outcome));
    if (applied) this.handOver(input, outcome);
    return applied;
  }

  /** The writes that store and announce `outcome` (see Effects in store.ts). */
  private effects(input: InputEnvelope, outcome: Outcome): Effects {
    if (input.kind === "map") {
      const mapId = input.mapId ?? "";
      const output: MapOutput = { idx: input.idx ?? 0, ...outcome };
      return {
        push: [
          { key: keys.mapOutputs(mapId), values: [JSON.stringify(output)], ttlMs: LIST_TTL_MS },
        ],
        incr: [{ key: keys.mapInFlight(mapId), by: -1, min: 0 }],
        publish: [{ channel: channels.done(`map:${mapId}`), message: "out" }],
      };
    }
    const stored: StoredResult = { outcome, finishedAt: Date.now() };
    const text = JSON.stringify(stored);
    const publish = [{ channel: channels.done(input.id), message: text }];
    if (input.replyTo !== undefined && input.replyTo !== this.replies.agentId) {
      publish.push({
        channel: channels.reply(input.replyTo),
        message: Replies.message(input.id, stored),
      });
    }
    const end: StreamItem = outcome.ok ? { t: "end" } : { t: "err", error: outcome.error };
    return {
      guard: { key: keys.result(input.id), value: text, ttlMs: this.resultTtlMs },
      // The record is never rewritten; getCall and status read the final state from the result.
      expire: [
        { key: keys.call(input.id), ttlMs: this.resultTtlMs },
        { key: keys.callRun(input.id), ttlMs: this.resultTtlMs },
      ],
      ...(input.kind === "stream"
        ? {
            push: [
              { key: keys.stream(input.id), values: [JSON.stringify(end)], ttlMs: LIST_TTL_MS },
            ],
          }
        : {}),
      publish,
    };
  }

  /** A caller waiting on this agent gets the outcome in process (nothing was published for it). True when one was waiting. */
  private handOver(input: InputEnvelope, outcome: Outcome): boolean {
    return input.replyTo === this.replies.agentId && this.replies.resolve(input.id, outcome);
  }
}

export function statusOf(outcome: Outcome): "succeeded" | "failed" | "cancelled" {
  return outcome.ok ? "succeeded" : outcome.error.code === "CANCELLED" ? "cancelled" : "failed";
}

/** A call as callers see it: its record, with its attempts and its stored result when there are. */
export function callStatus(
  call: CallInfo,
  result: StoredResult | null,
  run: CallRun | null,
): CallInfo {
  const ran: CallInfo = run
    ? { ...call, status: "running", startedAt: run.startedAt, attempts: run.attempts }
    : call;
  if (result === null) return ran;
  return {
    ...ran,
    status: statusOf(result.outcome),
    finishedAt: new Date(result.finishedAt).toISOString(),
  };
}
