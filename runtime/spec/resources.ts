/**
 * CPU, memory and ephemeral disk. CPU and memory take a request or a `[request, limit]` pair and
 * compile to `{ request, limit }`.
 */
import { z } from "zod";
import { type Range, rangeProblem } from "./checks.js";
import type { Ceilings } from "./maxima.js";
import {
  DEFAULT_CPU,
  DEFAULT_CPU_HEADROOM,
  DEFAULT_MEMORY_MIB,
  MIN_EPHEMERAL_DISK_MIB,
  MIN_MEMORY_MIB,
} from "./limits.js";

const CpuInputSchema = z.union([z.number(), z.tuple([z.number(), z.number()])], {
  error: "expected a number of cores or a [request, limit] pair",
});

const MemoryInputSchema = z.union([z.number(), z.tuple([z.number(), z.number().nullable()])], {
  error: "expected a number of MiB or a [request, limit] pair",
});

type AddIssue = (message: string) => void;

/** Check a `{ request, limit }` pair: request in range, then limit at or above the request and in range. */
function checkPair(
  pair: { request: number; limit: number | null },
  range: Range,
  add: AddIssue,
): void {
  const request = rangeProblem(pair.request, range, "request ");
  if (request !== null) {
    add(request);
    return;
  }
  if (pair.limit === null) return;
  if (pair.limit < pair.request) {
    add(`limit ${pair.limit} is below request ${pair.request}`);
    return;
  }
  const limit = rangeProblem(pair.limit, range, "limit ");
  if (limit !== null) add(limit);
}

/**
 * CPU in cores: `0.5` or `[0.5, 2]`. Default request 0.125; default (soft) limit request + 4,
 * capped at the ceiling (but never below the request).
 */
export function cpuSchema(ceiling: Ceilings["cpu"]) {
  const range: Range = { min: 0, minExclusive: true, ...ceiling, unit: " cores" };
  const defaultLimit = (request: number) =>
    Math.max(request, Math.min(request + DEFAULT_CPU_HEADROOM, ceiling.max));
  return CpuInputSchema.optional()
    .transform((value) => {
      if (value === undefined) return { request: DEFAULT_CPU, limit: defaultLimit(DEFAULT_CPU) };
      if (typeof value === "number") return { request: value, limit: defaultLimit(value) };
      return { request: value[0], limit: value[1] };
    })
    .superRefine((pair, ctx) =>
      checkPair(pair, range, (message) => ctx.addIssue({ code: "custom", message, input: pair })),
    );
}

/** Memory in MiB: `1024` or `[1024, 2048]` (the limit is hard: OOM kill). Default 128, no limit. */
export function memorySchema(ceiling: Ceilings["memoryMiB"]) {
  const range: Range = { min: MIN_MEMORY_MIB, integer: true, ...ceiling, unit: " MiB" };
  return MemoryInputSchema.optional()
    .transform((value) => {
      if (value === undefined) return { request: DEFAULT_MEMORY_MIB, limit: null };
      if (typeof value === "number") return { request: value, limit: null };
      return { request: value[0], limit: value[1] };
    })
    .superRefine((pair, ctx) =>
      checkPair(pair, range, (message) => ctx.addIssue({ code: "custom", message, input: pair })),
    );
}

/** Ephemeral disk in MiB, or null for the host's default. */
export function ephemeralDiskSchema(ceiling: Ceilings["ephemeralDiskMiB"]) {
  const range: Range = { min: MIN_EPHEMERAL_DISK_MIB, integer: true, ...ceiling, unit: " MiB" };
  return z
    .number()
    .nullish()
    .superRefine((value, ctx) => {
      if (value === null || value === undefined) return;
      const problem = rangeProblem(value, range);
      if (problem !== null) ctx.addIssue({ code: "custom", message: problem, input: value });
    })
    .transform((value) => value ?? null);
}
