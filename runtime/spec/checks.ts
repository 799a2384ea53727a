/**
 * Range checks with messages that name the value and the allowed range, and the number schemas
 * built on them. `0 is below the minimum 1 s (allowed 1..86400)`.
 */
import { z } from "zod";

/** An allowed numeric range. `max: null` is unbounded; `pool: true` means `max` is the pool's maximum. */
export interface Range {
  min: number;
  max: number | null;
  /** The minimum itself is not allowed (cpu > 0). */
  minExclusive?: boolean;
  integer?: boolean;
  /** Printed after numbers, with its leading space: " s", " MiB", " cores". */
  unit?: string;
  /** The maximum comes from the pool's maxima, not from kiln's own ceiling. */
  pool?: boolean;
}

/** Run checks even after other fields failed, so that every issue is reported at once. */
export const always = (): boolean => true;

function describeRange(range: Range): string {
  const low = `${range.minExclusive ? ">" : ""}${range.min}`;
  if (range.max === null) return range.minExclusive ? `> ${range.min}` : `>= ${range.min}`;
  return `${low}..${range.max}`;
}

/** What is wrong with `value` for `range`, or null. `label` prefixes the value ("request "). */
export function rangeProblem(value: number, range: Range, label = ""): string | null {
  const unit = range.unit ?? "";
  const allowed = `(allowed ${describeRange(range)})`;
  if (!Number.isFinite(value)) return `${label}${value} is not a finite number ${allowed}`;
  if (range.integer && !Number.isInteger(value))
    return `${label}${value} is not a whole number ${allowed}`;
  if (range.minExclusive ? value <= range.min : value < range.min) {
    return range.minExclusive
      ? `${label}${value} must be above ${range.min}${unit} ${allowed}`
      : `${label}${value} is below the minimum ${range.min}${unit} ${allowed}`;
  }
  if (range.max !== null && value > range.max) {
    return range.pool
      ? `${label}${value} exceeds the pool maximum of ${range.max}${unit}`
      : `${label}${value} is above the maximum ${range.max}${unit} ${allowed}`;
  }
  return null;
}

/** A number in `range`. */
export function bounded(range: Range) {
  return z.number().superRefine((value, ctx) => {
    const problem = rangeProblem(value, range);
    if (problem !== null) ctx.addIssue({ code: "custom", message: problem, input: value });
  });
}

/** A whole number in `min..max` (`max: null` for no upper bound). */
export function boundedInt(min: number, max: number | null, unit?: string) {
  return bounded({ min, max, integer: true, ...(unit === undefined ? {} : { unit }) });
}

/** Read a number field from a value that may not have parsed (for cross-field checks). */
export function numberAt(value: unknown, key: string): number | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const field = (value as Record<string, unknown>)[key];
  return typeof field === "number" && Number.isFinite(field) ? field : undefined;
}
