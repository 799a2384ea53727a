/**
 * What a typed script builder is ({@link Script}), how one is made, and the helpers builders share:
 * reading a raw Redis reply into typed values (an unexpected shape is an InternalError, never a
 * cast), and writing optional numbers and fences as the scripts take them.
 */
import { InternalError } from "../../errors.js";
import type { KeyLayout } from "./keys.js";

export type Arg = string | number;

/** One script: its file, its ioredis command, how to call it and what its reply means. */
export interface Script<I, R> {
  /** `lua/<file>.lua`. */
  readonly file: string;
  /** The command it is registered as on the connection (`kiln` + the file name in PascalCase). */
  readonly command: string;
  build(layout: KeyLayout, input: I): { keys: string[]; args: Arg[] };
  reply(raw: unknown, input: I): R;
}

export function script<I, R>(
  file: string,
  build: Script<I, R>["build"],
  reply: Script<I, R>["reply"],
): Script<I, R> {
  const command = `kiln${file.replace(/(^|-)([a-z])/g, (_m, _dash, c: string) => c.toUpperCase())}`;
  return { file, command, build, reply };
}

export function unexpected(what: string, raw: unknown): InternalError {
  return new InternalError(`redis script ${what}: unexpected reply ${JSON.stringify(raw)}`);
}

export function list(what: string, raw: unknown): unknown[] {
  if (!Array.isArray(raw)) throw unexpected(what, raw);
  return raw;
}

export function int(what: string, raw: unknown): number {
  const value = typeof raw === "string" && raw !== "" ? Number(raw) : raw;
  if (typeof value !== "number" || !Number.isFinite(value)) throw unexpected(what, raw);
  return value;
}

export function text(what: string, raw: unknown): string {
  if (typeof raw === "string") return raw;
  if (typeof raw === "number") return String(raw);
  throw unexpected(what, raw);
}

export function textOrNull(what: string, raw: unknown): string | null {
  return raw === null || raw === undefined ? null : text(what, raw);
}

/** A script's "ms until due" (-1: nothing is due). */
export function dueIn(what: string, raw: unknown): number | null {
  const ms = int(what, raw);
  return ms < 0 ? null : ms;
}

/** An optional number as a script takes it: '' for none. */
export function optional(value: number | undefined): Arg {
  return value === undefined ? "" : value;
}

export function fenceArg(fence: number): string {
  return Number.isSafeInteger(fence) ? String(fence) : "-1";
}

/** Each distinct queue once, in first-seen order: the blocks of a multi-queue script. */
export function queueIndex(queues: readonly string[]): {
  names: string[];
  index: (q: string) => number;
} {
  const names = [...new Set(queues)];
  return { names, index: (queue) => names.indexOf(queue) + 1 };
}

export function queueBlocks(layout: KeyLayout, names: readonly string[]): string[] {
  return names.flatMap((name) => layout.queue(name).keys);
}

/** KEYS and ARGV for lua/includes/apply-effects.lua, in its order. */
