/**
 * What every part of the embedded store works on: the state, the clock, the deadlines, and
 * `write`, the one way to change the state (applied at once, appended to the log when there is
 * one). A value read or written is handed out only once the writes before it are in the log.
 */
import type { Clock } from "../../clock.js";
import type { Deadlines } from "./deadlines.js";
import type { LogFile } from "./log-file.js";
import { State, type LogRecord } from "./state.js";

export class Core {
  readonly state = new State();
  /** The append-only log; null when memory-only (and once closed). */
  log: LogFile | null = null;

  constructor(
    readonly clock: Clock,
    readonly deadlines: Deadlines,
  ) {}

  /** Apply a mutation and append it to the log. */
  write(record: LogRecord): void {
    this.state.apply(record);
    this.log?.append(record);
  }

  /** `value`, once every mutation so far is written (at once in memory-only mode). */
  durable<T>(value: T): T | Promise<T> {
    const barrier = this.log?.barrier();
    return barrier ? barrier.then(() => value) : value;
  }
}
