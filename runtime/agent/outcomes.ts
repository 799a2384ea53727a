/**
 * Writes an input's outcome where its caller looks for it, before the input is acknowledged:
 * a result key for calls (kept `resultTtlMs`), the map's output list for map inputs, the stream
 * list for generators. Then announces it on the call's channel.
 *
 * Results are written first-writer-wins (`ifAbsent`), so an input delivered twice (a lease that
 * lapsed) never shows its caller two different results.
 */
import type { CallInfo, MapOutput, Outcome, StreamItem } from "../protocol.js";
import type { Store } from "../store/store.js";
import { channels, keys, type InputEnvelope, type StoredResult } from "./inputs.js";

/** Map outputs and stream items nobody reads expire this long after the last write. */
export const LIST_TTL_MS = 60 * 60 * 1000;

export class OutcomeWriter {
  constructor(
    private readonly store: Store,
    private readonly resultTtlMs: number,
  ) {}

  /**
   * Record that an attempt started. Map inputs have no call record; `.remote()` calls keep
   * theirs lean (their caller waits on the outcome, and getCall derives the final status from
   * the result), so only spawned calls and streams track `running` and attempts.
   */
  async markRunning(input: InputEnvelope): Promise<void> {
    if (input.kind === "map" || input.kind === "call") return;
    await this.updateCall(input.id, (call) => ({
      ...call,
      status: "running",
      startedAt: call.startedAt ?? new Date().toISOString(),
      attempts: call.attempts + 1,
    }));
  }

  async streamItem(input: InputEnvelope, value: string): Promise<void> {
    await this.store.listPush(keys.stream(input.id), [JSON.stringify({ t: "y", v: value } satisfies StreamItem)], {
      ttlMs: LIST_TTL_MS,
    });
    await this.store.publish(channels.done(input.id), "item");
  }

  /** Store the outcome for the caller. Returns false when another delivery already did. */
  async deliver(input: InputEnvelope, outcome: Outcome): Promise<boolean> {
    if (input.kind === "map") {
      const output: MapOutput = { idx: input.idx ?? 0, ...outcome };
      await this.store.listPush(keys.mapOutputs(input.mapId ?? ""), [JSON.stringify(output)], { ttlMs: LIST_TTL_MS });
      await this.store.incr(keys.mapInFlight(input.mapId ?? ""), -1, { min: 0 });
      await this.store.publish(channels.done(`map:${input.mapId}`), "out");
      return true;
    }
    const stored: StoredResult = { outcome, finishedAt: Date.now() };
    const first = await this.store.set(keys.result(input.id), JSON.stringify(stored), {
      ttlMs: this.resultTtlMs,
      ifAbsent: true,
    });
    if (!first) return false;
    if (input.kind === "stream") {
      const end: StreamItem = outcome.ok ? { t: "end" } : { t: "err", error: outcome.error };
      await this.store.listPush(keys.stream(input.id), [JSON.stringify(end)], { ttlMs: LIST_TTL_MS });
    }
    if (input.kind !== "call") {
      const status = statusOf(outcome);
      await this.updateCall(input.id, (call) => ({ ...call, status, finishedAt: new Date().toISOString() }), this.resultTtlMs);
    }
    // The message carries the stored result, so a waiting request needs no read-back.
    await this.store.publish(channels.done(input.id), JSON.stringify(stored));
    return true;
  }

  private async updateCall(id: string, change: (call: CallInfo) => CallInfo, ttlMs?: number): Promise<void> {
    const raw = await this.store.get(keys.call(id));
    if (raw === null) return;
    const next = change(JSON.parse(raw) as CallInfo);
    await this.store.set(keys.call(id), JSON.stringify(next), ttlMs === undefined ? {} : { ttlMs });
  }
}

export function statusOf(outcome: Outcome): "succeeded" | "failed" | "cancelled" {
  return outcome.ok ? "succeeded" : outcome.error.code === "CANCELLED" ? "cancelled" : "failed";
}
