/**
 * The scheduler: fires each deployed app's `schedules` (cron in an IANA zone, or a period) as
 * spawned calls, one leader at a time across the agents on a store. Leadership, exactly-once
 * ticks, missed ticks and redeploys: ARCHITECTURE.md, "Schedules".
 */
import { CronExpressionParser } from "cron-parser";
import { systemClock, type Clock, type Timer } from "../clock.js";
import { ResourceExhaustedError, messageOf, toWire } from "../errors.js";
import type { CallInfo, ScheduleRun, ScheduleStatus } from "../protocol.js";
import { encode } from "../serde.js";
import {
  MAX_SPAWN_PENDING_INPUTS,
  periodSeconds,
  type CompiledAppSpec,
  type CompiledScheduleSpec,
} from "../spec/index.js";
import type { Store } from "../store/store.js";
import {
  keys,
  newCall,
  registries,
  scheduleField,
  type CallRun,
  type StoredResult,
} from "./inputs.js";
import { callStatus, type OutcomeWriter } from "./outcomes.js";
import { Registry } from "./registry.js";

const SCHEDULER_LOCK = "scheduler";
/** Runs kept in a schedule's state for status. */
const RUNS_KEPT = 10;
/** Cron ticks are searched for no further back than this (older ones are missed anyway). */
const MAX_LOOKBACK_MS = 2 * 24 * 60 * 60 * 1000;

export interface LeaderTask {
  /** Run at most this often, by the leader only. */
  everyMs: number;
  run: () => Promise<unknown>;
}

export interface SchedulerOptions {
  store: Store;
  /** Submits the runs' failures (a refused submission) where callers look for outcomes. */
  outcomes: OutcomeWriter;
  /** Who holds the leader lock (the agent id). */
  owner: string;
  clock?: Clock;
  /** The leader lock's lease. Default 10 s. */
  leaseMs?: number;
  /** Longest time between passes (leadership renewal, re-reading apps). Default 2 s. */
  pollMs?: number;
  /** A tick fired within this long of its time is on time; an older one is missed. Default 30 s. */
  graceMs?: number;
  /** Pending spawned inputs per function (the router's limit). */
  maxSpawnPending?: number;
  /** Housekeeping the leader runs (the ephemeral sweep). */
  leaderTasks?: LeaderTask[];
  /** Where a failed pass is reported. Default: stderr. */
  onError?: (error: unknown) => void;
}

/** A schedule's state in the store. */
export interface ScheduleState {
  /** The timing it was computed for (cron + zone, or period): a change restarts the schedule. */
  timing: string;
  /** Ticks after this instant are due; those at or before it are handled. */
  since: number;
  /** A period schedule ticks at `anchor + k * period`. */
  anchor: number;
  lastTickAt: number | null;
  /** Newest first. */
  runs: { callId: string; tickAt: number; firedAt: number; catchUp?: boolean }[];
}

/** The app records the scheduler reads (the registry's record, only the fields it needs). */
interface StoredApp {
  name: string;
  spec: CompiledAppSpec;
  ephemeral?: boolean;
}

export class Scheduler {
  private readonly store: Store;
  private readonly clock: Clock;
  private readonly leaseMs: number;
  private readonly pollMs: number;
  private readonly graceMs: number;
  private readonly maxSpawnPending: number;
  private readonly onError: (error: unknown) => void;
  private readonly taskRuns = new Map<LeaderTask, number>();
  /** The deployed apps' records (written by apps.ts). */
  private readonly apps: Registry;
  /** Each schedule's state, by {@link scheduleField}. */
  private readonly states: Registry;

  private timer: Timer | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = true;
  /** The fencing token of this agent's current term as leader, or null. */
  private term: number | null = null;
  /** When the lock was last renewed (this clock). */
  private renewedAt = 0;

  constructor(private readonly options: SchedulerOptions) {
    this.store = options.store;
    this.apps = new Registry(options.store, registries.apps);
    this.states = new Registry(options.store, registries.schedules);
    this.clock = options.clock ?? systemClock;
    this.leaseMs = options.leaseMs ?? 10_000;
    this.pollMs = options.pollMs ?? 2_000;
    this.graceMs = options.graceMs ?? 30_000;
    this.maxSpawnPending = options.maxSpawnPending ?? MAX_SPAWN_PENDING_INPUTS;
    this.onError =
      options.onError ??
      ((error) =>
        process.stderr.write(`kiln scheduler: ${(error as Error)?.stack ?? String(error)}\n`));
  }

  /** Whether this agent leads (as of its last pass). */
  get leader(): boolean {
    return this.term !== null;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.arm(0);
  }

  /** Run a pass soon (after a deploy or delete). */
  poke(): void {
    if (this.stopped) return;
    if (this.running) this.again = true;
    else this.arm(0);
  }

  /** Resolves once no pass is running (tests drive the clock, then wait here). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /**
   * Stop passes and hand leadership back at once (`handBack: false` keeps the lock until its lease
   * lapses, as a crashed agent would).
   */
  async stop(options: { handBack?: boolean } = {}): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
    await this.idle();
    if (options.handBack === false) {
      this.term = null;
      return;
    }
    if (this.term !== null) {
      this.term = null;
      await this.store.unlock(SCHEDULER_LOCK, this.options.owner).catch(() => undefined);
    }
  }

  /** One pass: renew or take leadership; as leader, fire what is due and run housekeeping. */
  private async pass(): Promise<void> {
    let wakeIn = this.pollMs;
    try {
      const token = await this.renew();
      if (token !== null) {
        const next = await this.fireDue(token);
        if (next !== null) wakeIn = Math.min(wakeIn, Math.max(0, next - this.clock.now()));
        await this.runTasks();
      }
    } catch (error) {
      this.onError(error);
    }
    if (!this.stopped) this.arm(wakeIn);
  }

  /** Take or keep the leader lock; returns the term's token, or null when another agent leads. */
  private async renew(): Promise<number | null> {
    const token = await this.store.lock(SCHEDULER_LOCK, this.options.owner, this.leaseMs);
    this.term = token;
    this.renewedAt = this.clock.now();
    return token;
  }

  /** Whether `term` still leads, renewing the lock when a third of its lease has passed. */
  private async stillLeads(term: number): Promise<boolean> {
    if (this.stopped) return false;
    if (this.clock.now() - this.renewedAt >= this.leaseMs / 3) await this.renew();
    return this.term === term;
  }

  private arm(ms: number): void {
    this.timer?.cancel();
    this.timer = this.clock.setTimeout(
      () => {
        this.timer = null;
        if (this.stopped) return;
        if (this.running) {
          this.again = true;
          return;
        }
        this.running = (async () => {
          try {
            do {
              this.again = false;
              await this.pass();
            } while (this.again && !this.stopped);
          } finally {
            this.running = null;
          }
        })();
      },
      ms,
      { unref: true },
    );
  }

  private async runTasks(): Promise<void> {
    const now = this.clock.now();
    for (const task of this.options.leaderTasks ?? []) {
      const last = this.taskRuns.get(task);
      if (last !== undefined && now - last < task.everyMs) continue;
      this.taskRuns.set(task, now);
      try {
        await task.run();
      } catch (error) {
        this.onError(error);
      }
    }
  }

  /** Fire every due tick; returns the earliest next tick over all schedules (null: none). */
  private async fireDue(term: number): Promise<number | null> {
    const apps = await this.loadApps();
    const live = new Set<string>();
    let earliest: number | null = null;
    for (const app of apps) {
      for (const [name, spec] of Object.entries(app.spec.schedules ?? {})) {
        live.add(scheduleField(app.name, name));
        if (app.ephemeral) continue;
        // A lost lease ends the term: the next leader goes on from the state written so far.
        if (!(await this.stillLeads(term))) return null;
        const next = await this.handle(app.name, name, spec);
        if (next !== null && (earliest === null || next < earliest)) earliest = next;
      }
    }
    // Forget the state of schedules (and apps) that are gone.
    for (const field of (await this.states.entries()).keys())
      if (!live.has(field)) await this.states.delete(field);
    return earliest;
  }

  /** Handle one schedule: fire its due tick (if on time, or caught up); returns its next tick. */
  private async handle(
    app: string,
    name: string,
    spec: CompiledScheduleSpec,
  ): Promise<number | null> {
    const now = this.clock.now();
    const field = scheduleField(app, name);
    const timing = timingOf(spec);
    let state = await this.readState(field);
    if (state === null || state.timing !== timing) {
      const fresh: ScheduleState = {
        timing,
        since: now,
        anchor: now,
        lastTickAt: state?.lastTickAt ?? null,
        runs: state?.runs ?? [],
      };
      if (state === null) {
        // Two leaders in a hand-over agree on the first anchor.
        await this.states.add(field, JSON.stringify(fresh));
        state = (await this.readState(field)) ?? fresh;
      } else {
        state = fresh;
        await this.states.put(field, JSON.stringify(state));
      }
    }
    const { latest, next } = dueTicks(spec, state, now);
    if (latest === null) return next;
    const late = now - latest > this.graceMs;
    if (!late || spec.catchUp === 1) {
      const callId = await this.fire(app, name, spec, latest);
      if (callId !== null) {
        state.runs = [
          { callId, tickAt: latest, firedAt: now, ...(late ? { catchUp: true } : {}) },
          ...state.runs,
        ].slice(0, RUNS_KEPT);
      }
    }
    state.since = latest;
    state.lastTickAt = latest;
    await this.states.put(field, JSON.stringify(state));
    return next;
  }

  /**
   * Spawn the run of one tick, unless some scheduler already did. Returns the call id when this
   * call fired it, null when it was fired before.
   */
  private async fire(
    app: string,
    name: string,
    spec: CompiledScheduleSpec,
    tickAt: number,
  ): Promise<string | null> {
    const id = tickCallId(app, name, tickAt);
    const { call, input } = newCall(id, "spawn", app, spec.function, encode(spec.args));
    const queue = keys.spawnQueue(app, spec.function);
    const payload = JSON.stringify(input);
    if (!(await this.store.set(keys.call(id), JSON.stringify(call), { ifAbsent: true }))) {
      // Fired before. If that scheduler died between the record and the enqueue, finish its work
      // (an enqueue of an id already queued or running is a no-op).
      const [raw, result] = await this.store.getMany([keys.call(id), keys.result(id)]);
      if (raw != null && result == null && (JSON.parse(raw) as CallInfo).status === "pending") {
        await this.store.enqueue(queue, { id, payload }, { maxPending: this.maxSpawnPending });
      }
      return null;
    }
    const queued = await this.store.enqueue(
      queue,
      { id, payload },
      { maxPending: this.maxSpawnPending },
    );
    if (!queued.ok) {
      const error = new ResourceExhaustedError(
        `schedule ${app}.${name}: ${app}.${spec.function} already has ${queued.count} pending spawned inputs, the limit of ${this.maxSpawnPending}; this run was not submitted`,
        { details: { limit: this.maxSpawnPending, count: queued.count } },
      );
      await this.options.outcomes.deliver(input, { ok: false, error: toWire(error) });
    }
    return id;
  }

  private async readState(field: string): Promise<ScheduleState | null> {
    const raw = await this.states.get(field);
    return raw === null ? null : (JSON.parse(raw) as ScheduleState);
  }

  private async loadApps(): Promise<StoredApp[]> {
    const apps: StoredApp[] = [];
    for (const raw of (await this.apps.entries()).values()) {
      try {
        apps.push(JSON.parse(raw) as StoredApp);
      } catch (error) {
        this.onError(new Error(`unreadable app record: ${messageOf(error)}`));
      }
    }
    return apps.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The schedules of an app for `kiln status`: timing, next and last tick, the latest runs. */
  async status(app: string, spec: CompiledAppSpec, ephemeral = false): Promise<ScheduleStatus[]> {
    const out: ScheduleStatus[] = [];
    const now = this.clock.now();
    for (const [name, schedule] of Object.entries(spec.schedules ?? {}).sort(([a], [b]) =>
      a < b ? -1 : 1,
    )) {
      const state = await this.readState(scheduleField(app, name));
      const current = state !== null && state.timing === timingOf(schedule) ? state : null;
      const next = ephemeral
        ? null
        : current !== null
          ? dueTicks(schedule, current, now).next
          : firstTickAfter(schedule, now);
      const runs = state?.runs ?? [];
      const ids = runs.map((run) => run.callId);
      const raws =
        ids.length === 0
          ? []
          : await this.store.getMany(
              ids.flatMap((id) => [keys.call(id), keys.result(id), keys.callRun(id)]),
            );
      out.push({
        name,
        function: schedule.function,
        cron: schedule.cron,
        timezone: schedule.timezone,
        periodS: schedule.period ? periodSeconds(schedule.period) : null,
        catchUp: schedule.catchUp,
        nextTickAt: next === null ? null : new Date(next).toISOString(),
        lastTickAt: state?.lastTickAt == null ? null : new Date(state.lastTickAt).toISOString(),
        runs: runs.map((run, i): ScheduleRun => {
          const [callRaw, resultRaw, runRaw] = [
            raws[3 * i] ?? null,
            raws[3 * i + 1] ?? null,
            raws[3 * i + 2] ?? null,
          ];
          const call = callRaw === null ? null : (JSON.parse(callRaw) as CallInfo);
          const result = resultRaw === null ? null : (JSON.parse(resultRaw) as StoredResult);
          const attempts = runRaw === null ? null : (JSON.parse(runRaw) as CallRun);
          return {
            callId: run.callId,
            tickAt: new Date(run.tickAt).toISOString(),
            firedAt: new Date(run.firedAt).toISOString(),
            status: call === null ? "expired" : callStatus(call, result, attempts).status,
            ...(result && !result.outcome.ok ? { error: result.outcome.error.message } : {}),
            ...(run.catchUp ? { catchUp: true } : {}),
          };
        }),
      });
    }
    return out;
  }
}

/** The call id of a schedule's tick. */
export function tickCallId(app: string, name: string, tickAt: number): string {
  return `sched:${app}:${name}:${tickAt}`;
}

function timingOf(spec: CompiledScheduleSpec): string {
  return spec.cron !== null ? `cron ${spec.cron} ${spec.timezone}` : `period ${periodMs(spec)}`;
}

function periodMs(spec: CompiledScheduleSpec): number {
  return Math.round(periodSeconds(spec.period!) * 1000);
}

/**
 * The latest tick in `(state.since, now]` (null: none) and the first tick after `now`.
 * Exported for tests.
 */
export function dueTicks(
  spec: CompiledScheduleSpec,
  state: Pick<ScheduleState, "since" | "anchor">,
  now: number,
): { latest: number | null; next: number } {
  if (spec.cron === null) {
    const p = periodMs(spec);
    const k = Math.floor((now - state.anchor) / p);
    const latest = k >= 1 ? state.anchor + k * p : null;
    return {
      latest: latest !== null && latest > state.since ? latest : null,
      next: state.anchor + Math.max(k + 1, 1) * p,
    };
  }
  // Forward from the last handled tick (not backward from now: in a repeated autumn hour,
  // cron-parser's prev() can name the second occurrence of a local time already fired).
  const start = Math.max(state.since, now - MAX_LOOKBACK_MS);
  const ticks = CronExpressionParser.parse(spec.cron, {
    tz: spec.timezone,
    currentDate: new Date(start),
  });
  let latest: number | null = null;
  for (let i = 0; i < 1_000_000; i++) {
    const at = ticks.next().toDate().getTime();
    if (at > now) {
      if (latest === null && start > state.since) {
        // Nothing in the look-back window: the latest tick may be older (a monthly cron).
        const before = CronExpressionParser.parse(spec.cron, {
          tz: spec.timezone,
          currentDate: new Date(now + 1),
        })
          .prev()
          .toDate()
          .getTime();
        if (before > state.since) latest = before;
      }
      return { latest, next: at };
    }
    latest = at;
  }
  throw new Error(
    `cron ${spec.cron}: no tick after ${new Date(now).toISOString()} within 1,000,000 steps`,
  );
}

function firstTickAfter(spec: CompiledScheduleSpec, now: number): number {
  return dueTicks(spec, { since: now, anchor: now }, now).next;
}
