/**
 * What the CLI prints: one-line errors with the exit code they mean, aligned tables, call results
 * (readable for values JSON cannot show, or JSON), and log lines.
 */
import { inspect } from "node:util";
import { CommanderError } from "commander";
import { InvalidError, KilnError, UnauthenticatedError } from "../runtime/errors.js";
import { describeGpuOffers, type GpuOffer } from "../runtime/containers/gpu-offers.js";
import type { LogLine } from "../runtime/protocol.js";

/**
 * Exit codes, after Pulumi's: 0 success; 1 a failure; 2 a program or argument error (bad flags,
 * invalid specs, a program that fails); 4 the agent refuses (no or wrong token) or cannot be
 * reached; 7 `kiln preview --expect-no-changes` found changes.
 */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_AGENT = 4;
export const EXIT_CHANGES = 7;

/** An error that asks for a given exit code (`--expect-no-changes`: 7). */
export class ExitError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = "ExitError";
  }
}

/**
 * Whether the error says the agent cannot be reached: the client's transport failures (and what
 * answered instead of an agent) carry `details.agentUnreachable`, the URL. An UnavailableError the
 * agent itself sends (its store is down) does not: the agent answered.
 */
export function isAgentUnreachable(error: unknown): boolean {
  return (
    error instanceof KilnError &&
    error.code === "UNAVAILABLE" &&
    typeof error.details["agentUnreachable"] === "string"
  );
}

/** The exit code for an error, for every command (one place). */
export function exitCodeFor(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : EXIT_USAGE;
  if (error instanceof ExitError) return error.exitCode;
  if (error instanceof InvalidError) return EXIT_USAGE;
  if (error instanceof UnauthenticatedError || isAgentUnreachable(error)) return EXIT_AGENT;
  return EXIT_FAILURE;
}

/** `error: <message>`, or `error (NotFoundError): <message>` for kiln's errors; one line. */
export function formatError(error: unknown): string {
  const message = oneLine(error instanceof Error ? error.message : String(error));
  return error instanceof KilnError ? `error (${error.name}): ${message}` : `error: ${message}`;
}

/** The error line on stderr; with `verbose`, the stack (and causes) after it. */
export function reportError(
  error: unknown,
  verbose: boolean,
  write: (text: string) => void = (t) => process.stderr.write(t),
): void {
  write(`${formatError(error)}\n`);
  if (!verbose) return;
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 5; depth++) {
    write(`${depth === 0 ? "" : "caused by: "}${current.stack ?? current.message}\n`);
    current = current.cause;
  }
}

/** Multi-line messages (one spec issue per line) joined so the error stays on one line. */
export function oneLine(message: string): string {
  return message
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .join("; ");
}

// ---- tables -------------------------------------------------------------------------------------

export interface TableOptions {
  /** Indexes of columns to right-align (numbers). */
  right?: readonly number[];
  /** Put before every line. */
  indent?: string;
}

/** Rows (the first one the header) as aligned lines, two spaces between columns. */
export function table(rows: readonly (readonly string[])[], options: TableOptions = {}): string[] {
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  const right = new Set(options.right ?? []);
  return rows.map((row) => {
    const cells = row.map((cell, i) => {
      const width = widths[i] ?? 0;
      if (right.has(i)) return cell.padStart(width);
      return i === row.length - 1 ? cell : cell.padEnd(width);
    });
    return `${options.indent ?? ""}${cells.join("  ")}`.trimEnd();
  });
}

// ---- GPUs ---------------------------------------------------------------------------------------

/**
 * A host's GPUs for its status line: `GPUs 2 x A100-80GB (1 free, 1 in use)` per model, or the
 * inventory alone (`GPUs 2 x A100-80GB`) when the host did not say how many are free (an older
 * agent). Null for a host without GPUs, so its line says nothing about them.
 */
export function formatHostGpus(offers: readonly GpuOffer[] | undefined): string | null {
  if (!offers || offers.length === 0) return null;
  if (offers.some((offer) => offer.free === undefined)) return `GPUs ${describeGpuOffers(offers)}`;
  const parts = offers.map(
    (offer) =>
      `${describeGpuOffers([offer])} (${offer.free ?? 0} free, ${offer.count - (offer.free ?? 0)} in use)`,
  );
  return `GPUs ${parts.join(", ")}`;
}

// ---- values -------------------------------------------------------------------------------------

/**
 * A call's result for people: strings as they are, anything else as Node shows it (Map, Set,
 * BigInt...). Errors carried inside the value show their first line unless `stacks`.
 */
export function formatValue(value: unknown, options: { stacks?: boolean } = {}): string {
  if (typeof value === "string") return value;
  if (!options.stacks) trimStacks(value, new WeakSet());
  return inspect(value, {
    depth: null,
    colors: false,
    maxArrayLength: 1000,
    breakLength: 100,
    sorted: false,
  });
}

/** Cut the stacks of Errors inside a decoded result (which the CLI owns) to their first line. */
function trimStacks(value: unknown, seen: WeakSet<object>): void {
  if (value === null || typeof value !== "object" || seen.has(value) || ArrayBuffer.isView(value))
    return;
  seen.add(value);
  if (value instanceof Error) value.stack = `${value.name}: ${value.message}`;
  const children =
    value instanceof Map
      ? [...value.keys(), ...value.values()]
      : value instanceof Set
        ? [...value]
        : Object.values(value);
  for (const child of children) trimStacks(child, seen);
  if (value instanceof Error && value.cause !== undefined) trimStacks(value.cause, seen);
}

/**
 * A value JSON can carry: BigInt as a decimal string, Map as an object (or `[key, value]` pairs
 * when a key is not a string), Set and byte arrays as arrays, Error as `{ name, message, ... }`.
 */
export function toJsonValue(value: unknown, seen = new WeakSet<object>()): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value === undefined || typeof value === "function" || typeof value === "symbol") return null;
  if (value === null || typeof value !== "object") return value;
  if (seen.has(value)) return "[Circular]";
  seen.add(value);
  try {
    if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
    if (value instanceof Map) {
      const entries = [...value.entries()];
      if (entries.every(([key]) => typeof key === "string")) {
        return Object.fromEntries(entries.map(([key, v]) => [key, toJsonValue(v, seen)]));
      }
      return entries.map(([key, v]) => [toJsonValue(key, seen), toJsonValue(v, seen)]);
    }
    if (value instanceof Set) return [...value].map((v) => toJsonValue(v, seen));
    if (ArrayBuffer.isView(value)) {
      return value instanceof DataView
        ? Array.from(new Uint8Array(value.buffer, value.byteOffset, value.byteLength))
        : Array.from(value as unknown as ArrayLike<number | bigint>, (v) => toJsonValue(v, seen));
    }
    if (value instanceof ArrayBuffer) return Array.from(new Uint8Array(value));
    if (value instanceof Error) {
      const fields = Object.fromEntries(
        Object.entries(value).map(([key, v]) => [key, toJsonValue(v, seen)]),
      );
      return { name: value.name, message: value.message, ...fields };
    }
    if (value instanceof RegExp || value instanceof URL) return String(value);
    if (Array.isArray(value)) return value.map((v) => toJsonValue(v, seen));
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      if (v !== undefined) out[key] = toJsonValue(v, seen);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

export function formatJson(value: unknown): string {
  return JSON.stringify(toJsonValue(value), null, 2);
}

// ---- logs ---------------------------------------------------------------------------------------

export interface LogFormat {
  /** Lead with the timestamp (`kiln logs`); the agent's terminal leaves it out. */
  ts: boolean;
  /** Name the app too (`[app.fn call-id]`), for the agent's terminal where apps mix. */
  app: boolean;
}

/** `ts [fn call-id] text`, one output line per line of text; system lines read `(system) text`. */
export function formatLogLine(line: LogLine, format: LogFormat): string[] {
  const where = `${format.app ? `${line.app}.` : ""}${line.function}${line.callId ? ` ${line.callId}` : ""}`;
  const head = `${format.ts ? `${line.ts} ` : ""}[${where}]${line.stream === "system" ? " (system)" : ""}`;
  const texts = line.text.replace(/\r?\n$/, "").split(/\r?\n/);
  return texts.map((text) => `${head} ${text}`.trimEnd());
}
