/**
 * The input router: takes calls, spawns, map inputs and streams at the door (limits checked,
 * typed errors), puts them on the function's queue in the store, and hands outcomes back.
 *
 * Queues per function: `q:<app>:<fn>` for `.remote` / `.map` / `remoteGen` inputs (2,000 pending,
 * 25,000 pending + running) and `q:<app>:<fn>:spawn` for spawned calls (1,000,000 pending).
 * Every wait is bounded by the request's `waitMs`; a caller that gets no outcome asks again.
 */
import { randomUUID } from "node:crypto";
import { CancelledError, NotFoundError, ResourceExhaustedError, toWire } from "../errors.js";
import type {
  CallBody,
  CallInfo,
  CallResponse,
  MapInputsBody,
  MapInputsResponse,
  MapOutput,
  Outcome,
  ResultResponse,
  StreamItem,
} from "../protocol.js";
import { checkPayloadSize } from "../serde.js";
import {
  MAX_MAP_INFLIGHT,
  MAX_PENDING_INPUTS,
  MAX_SPAWN_PENDING_INPUTS,
  MAX_TOTAL_INPUTS,
} from "../spec/index.js";
import type { Store } from "../store/store.js";
import type { AppRegistry } from "./apps.js";
import {
  channels,
  keys,
  newCall,
  type CallRun,
  type InputEnvelope,
  type InputKind,
  type StoredCall,
  type StoredResult,
} from "./inputs.js";
import { callStatus, statusOf, type OutcomeWriter } from "./outcomes.js";
import { awaitable, type Replies } from "./replies.js";

interface MapRecord {
  id: string;
  app: string;
  fn: string;
  createdAt: number;
}

export interface RouterLimits {
  maxPending: number;
  maxSpawnPending: number;
  maxTotal: number;
  maxMapInFlight: number;
  resultTtlMs: number;
}

export const DEFAULT_ROUTER_LIMITS: Omit<RouterLimits, "resultTtlMs"> = {
  maxPending: MAX_PENDING_INPUTS,
  maxSpawnPending: MAX_SPAWN_PENDING_INPUTS,
  maxTotal: MAX_TOTAL_INPUTS,
  maxMapInFlight: MAX_MAP_INFLIGHT,
};

export class Router {
  constructor(
    private readonly store: Store,
    private readonly apps: AppRegistry,
    private readonly outcomes: OutcomeWriter,
    private readonly replies: Replies,
    private readonly limits: RouterLimits,
  ) {}

  /** Stop listening for outcomes (agent shutdown). */
  async stop(): Promise<void> {
    await this.replies.stop();
  }

  // ---- calls ----------------------------------------------------------------------------------

  async call(app: string, fn: string, body: Required<CallBody>): Promise<CallResponse> {
    this.apps.function(app, fn);
    checkPayloadSize(body.args, "the arguments");
    const kind: InputKind = body.mode === "stream" ? "stream" : body.spawn ? "spawn" : "call";
    const waiting = body.waitMs > 0 && kind !== "stream";
    const { call, input } = newCall(
      `fc-${randomUUID()}`,
      kind,
      app,
      fn,
      body.args,
      waiting ? this.replies.agentId : undefined,
    );
    const id = call.id;
    // Listening before the input exists: its outcome cannot arrive unheard.
    const expecting = waiting ? this.replies.expect(id) : null;
    try {
      // The call's record is written in the same store step as its input, and only with it.
      // A caller waiting here lets a free container on this agent start it while the store records it.
      await this.enqueue(
        input,
        [{ key: keys.call(id), value: JSON.stringify(call) }],
        expecting !== null && kind === "call",
      );
      if (!expecting) return { callId: id };
      const outcome = (await expecting.wait(body.waitMs)) ?? (await this.readResult(id))?.outcome;
      return outcome ? { callId: id, outcome } : { callId: id };
    } finally {
      expecting?.stop();
    }
  }

  /** Subscribe to a call's outcome announcement (the stored result travels in the message). */
  private async listen(
    id: string,
  ): Promise<{ wait(ms: number): Promise<Outcome | null>; stop(): Promise<void> }> {
    const arrival = awaitable<Outcome>();
    const unsubscribe = await this.store.subscribe(channels.done(id), (message) => {
      if (message.startsWith("{")) arrival.deliver((JSON.parse(message) as StoredResult).outcome);
    });
    return { wait: arrival.wait, stop: unsubscribe };
  }

  async getCall(id: string): Promise<CallInfo> {
    return (await this.readCall(id)).info;
  }

  /** A call as callers see it, and where its waiting caller listens. */
  private async readCall(id: string): Promise<{ info: CallInfo; replyTo: string | undefined }> {
    const [raw, result, run] = await this.store.getMany([
      keys.call(id),
      keys.result(id),
      keys.callRun(id),
    ]);
    if (raw === null || raw === undefined) {
      throw new NotFoundError(
        `function call ${id} does not exist (or its result expired after the retention period)`,
      );
    }
    // The record is written once: its attempts and the result say where it is.
    const { replyTo, ...call } = JSON.parse(raw) as StoredCall;
    return {
      info: callStatus(
        call,
        result ? (JSON.parse(result) as StoredResult) : null,
        run ? (JSON.parse(run) as CallRun) : null,
      ),
      replyTo,
    };
  }

  /** The call's outcome, waiting up to `waitMs` for it. */
  async waitResult(id: string, waitMs: number): Promise<ResultResponse> {
    const ready = await this.readResult(id);
    if (ready || waitMs === 0) return ready ?? { status: (await this.getCall(id)).status };
    const announced = await this.listen(id);
    try {
      // Subscribed first, then read again: an outcome stored in between is not missed.
      const raced = await this.readResult(id);
      if (raced) return raced;
      const call = await this.getCall(id);
      const outcome = await announced.wait(waitMs);
      if (outcome) return { status: statusOf(outcome), outcome };
      return (
        (await this.readResult(id)) ?? { status: (await this.getCall(id).catch(() => call)).status }
      );
    } finally {
      await announced.stop();
    }
  }

  /**
   * Cancel a call: its input is removed from the queue and the cancellation stored as its outcome
   * (first writer wins: a call that finished just before keeps its result); a running input's
   * worker is killed, and its late result is dropped (its claim is gone).
   */
  async cancel(id: string, killRunning: (inputId: string) => Promise<void>): Promise<CallInfo> {
    const { info: call, replyTo } = await this.readCall(id);
    if (call.status === "succeeded" || call.status === "failed" || call.status === "cancelled")
      return call;
    const queue =
      call.kind === "spawn"
        ? keys.spawnQueue(call.app, call.function)
        : keys.queue(call.app, call.function);
    const where = await this.store.remove(queue, id);
    const input: InputEnvelope = {
      id,
      kind: call.kind,
      app: call.app,
      fn: call.function,
      args: "",
      attempt: 0,
      platformAttempt: 0,
      createdAt: Date.parse(call.createdAt),
      ...(replyTo === undefined ? {} : { replyTo }),
    };
    await this.outcomes.deliver(input, {
      ok: false,
      error: toWire(new CancelledError(`call ${id} was cancelled`)),
    });
    if (where === "claimed") await killRunning(id);
    return this.getCall(id);
  }

  private async readResult(id: string): Promise<ResultResponse | null> {
    const raw = await this.store.get(keys.result(id));
    if (raw === null) return null;
    const { outcome } = JSON.parse(raw) as StoredResult;
    return { status: statusOf(outcome), outcome };
  }

  // ---- streams (remoteGen) --------------------------------------------------------------------

  async streamItems(id: string, waitMs: number): Promise<StreamItem[]> {
    await this.getCall(id);
    const raw = await this.store.listPop(keys.stream(id), { max: 1000, waitMs });
    return raw.map((r) => JSON.parse(r) as StreamItem);
  }

  // ---- maps -----------------------------------------------------------------------------------

  async createMap(app: string, fn: string): Promise<{ mapId: string }> {
    this.apps.function(app, fn);
    const id = `map-${randomUUID()}`;
    const record: MapRecord = { id, app, fn, createdAt: Date.now() };
    await this.store.set(keys.map(id), JSON.stringify(record), { ttlMs: this.limits.resultTtlMs });
    return { mapId: id };
  }

  async mapInputs(mapId: string, body: MapInputsBody): Promise<MapInputsResponse> {
    const map = await this.getMap(mapId);
    this.apps.function(map.app, map.fn);
    const n = body.items.length;
    // Room in this map's in-flight window: the whole batch, or what is left of the window (a few
    // tries: outputs free room meanwhile, and the caller sends the rest later anyway).
    const inFlight = keys.mapInFlight(mapId);
    const max = this.limits.maxMapInFlight;
    let room = n;
    if ((await this.store.incr(inFlight, n, { max })) === null) {
      room = 0;
      for (let tries = 0; tries < 5; tries++) {
        const want = Math.min(n, max - Number((await this.store.get(inFlight)) ?? 0));
        if (want <= 0) break;
        if ((await this.store.incr(inFlight, want, { max })) !== null) {
          room = want;
          break;
        }
      }
    }
    let accepted = 0;
    let refused: MapInputsResponse["refused"];
    try {
      const items = body.items.slice(0, room);
      for (const item of items) checkPayloadSize(item.args, `the arguments of input ${item.idx}`);
      // One store step for the whole batch; what it accepts is a prefix.
      const createdAt = Date.now();
      const work = items.map((item) => {
        const input: InputEnvelope = {
          id: `${mapId}.${item.idx}`,
          kind: "map",
          app: map.app,
          fn: map.fn,
          args: item.args,
          attempt: 0,
          platformAttempt: 0,
          createdAt,
          mapId,
          idx: item.idx,
        };
        return { id: input.id, payload: JSON.stringify(input) };
      });
      const result = await this.store.enqueueMany(keys.queue(map.app, map.fn), work, {
        maxPending: this.limits.maxPending,
        maxTotal: this.limits.maxTotal,
      });
      accepted = result.accepted;
      if (result.refused) refused = toWire(this.refusal(map.app, map.fn, false, result.refused));
      if (!refused && room < n) {
        refused = toWire(
          new ResourceExhaustedError(
            `map ${mapId} has ${this.limits.maxMapInFlight} inputs in flight, the limit per map; send the rest as outputs arrive`,
            { details: { limit: this.limits.maxMapInFlight } },
          ),
        );
      }
    } catch (error) {
      refused = toWire(error);
    }
    if (accepted < room) await this.store.incr(inFlight, -(room - accepted), { min: 0 });
    return refused ? { accepted, refused } : { accepted };
  }

  async mapOutputs(mapId: string, waitMs: number, max: number): Promise<MapOutput[]> {
    await this.getMap(mapId);
    const raw = await this.store.listPop(keys.mapOutputs(mapId), { max, waitMs });
    return raw.map((r) => JSON.parse(r) as MapOutput);
  }

  /** The caller stopped reading: drop the map's queued inputs (running ones finish). */
  async cancelMap(mapId: string, upToIdx: number): Promise<number> {
    const map = await this.getMap(mapId);
    let removed = 0;
    for (let idx = 0; idx < upToIdx; idx++) {
      if ((await this.store.remove(keys.queue(map.app, map.fn), `${mapId}.${idx}`)) === "pending")
        removed += 1;
    }
    await this.store.delete(keys.map(mapId));
    await this.store.delete(keys.mapOutputs(mapId));
    await this.store.delete(keys.mapInFlight(mapId));
    return removed;
  }

  private async getMap(mapId: string): Promise<MapRecord> {
    const raw = await this.store.get(keys.map(mapId));
    if (raw === null)
      throw new NotFoundError(`map ${mapId} does not exist (finished, cancelled or expired)`);
    return JSON.parse(raw) as MapRecord;
  }

  // ---- queueing ---------------------------------------------------------------------------------

  private async enqueue(
    input: InputEnvelope,
    records: { key: string; value: string }[],
    eager = false,
  ): Promise<void> {
    const spawn = input.kind === "spawn";
    const queue = spawn ? keys.spawnQueue(input.app, input.fn) : keys.queue(input.app, input.fn);
    const result = await this.store.enqueue(
      queue,
      { id: input.id, payload: JSON.stringify(input) },
      spawn
        ? { maxPending: this.limits.maxSpawnPending, records }
        : { maxPending: this.limits.maxPending, maxTotal: this.limits.maxTotal, records, eager },
    );
    if (!result.ok) throw this.refusal(input.app, input.fn, spawn, result);
  }

  /** The error for an input a queue's cap refused. */
  private refusal(
    app: string,
    fn: string,
    spawn: boolean,
    refused: { reason: "pending" | "total"; count: number },
  ): ResourceExhaustedError {
    const what = `${app}.${fn}`;
    if (refused.reason === "pending") {
      const limit = spawn ? this.limits.maxSpawnPending : this.limits.maxPending;
      return new ResourceExhaustedError(
        `${what} already has ${refused.count} pending ${spawn ? "spawned " : ""}inputs, the limit of ${limit}; ` +
          "wait for some to finish (or raise maxContainers so they drain faster) and retry",
        { details: { limit, count: refused.count, kind: "pending" } },
      );
    }
    return new ResourceExhaustedError(
      `${what} already has ${refused.count} inputs pending or running, the limit of ${this.limits.maxTotal}; retry later`,
      { details: { limit: this.limits.maxTotal, count: refused.count, kind: "total" } },
    );
  }
}

export type { Outcome };
