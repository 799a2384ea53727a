/** zod schemas for command-line values, and one place that turns a bad value into a usage error. */
import { isInteger, isSafeNumber, parse as parseJson } from "lossless-json";
import { z } from "zod";
import { InvalidError, messageOf } from "../runtime/errors.js";

/** A whole number given as text, within [min, max]. */
export function integerArg(min: number, max: number) {
  return z
    .string()
    .trim()
    .regex(/^[+-]?\d+$/, "expected a whole number")
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));
}

/** A number given as text, above zero and at most max. */
export function positiveNumberArg(max: number) {
  return z
    .string()
    .trim()
    .regex(/^\d+(\.\d+)?$|^\.\d+$/, "expected a number")
    .transform(Number)
    .pipe(z.number().positive("must be above 0").max(max, `must be at most ${max}`));
}

export const portArg = integerArg(0, 65_535);

export const nameArg = z.string().min(1, "must not be empty");

export const urlArg = z
  .string()
  .trim()
  .refine((text) => {
    try {
      const url = new URL(text);
      return url.protocol === "http:" || url.protocol === "https:";
    } catch {
      return false;
    }
  }, "expected an http(s) URL, e.g. http://127.0.0.1:7070");

/**
 * A call argument. Text that looks like JSON (starts with `{`, `[`, `"`, a digit or `-`, or is
 * `true`/`false`/`null`) must be JSON: integers beyond 2^53 arrive as BigInt, and numbers JSON
 * cannot hold (`1e999`) are refused instead of becoming Infinity. Anything else is a plain string
 * (`hello`); `--str` sends every argument as a string.
 */
export const jsonArg = z.string().transform((text, ctx): unknown => {
  if (!looksLikeJson(text)) return text;
  try {
    return parseJson(text, null, parseJsonNumber) as unknown;
  } catch (error) {
    ctx.addIssue({
      code: "custom",
      message: `looks like JSON but is not (${messageOf(error)}); pass --str to send it as a string`,
    });
    return z.NEVER;
  }
});

function looksLikeJson(text: string): boolean {
  const trimmed = text.trim();
  return /^[[{"\d-]/.test(trimmed) || ["true", "false", "null"].includes(trimmed);
}

function parseJsonNumber(text: string): number | bigint {
  if (isInteger(text) && !isSafeNumber(text)) return BigInt(text);
  const value = Number(text);
  if (!Number.isFinite(value)) throw new Error(`the number ${text} is out of range`);
  return value;
}

/** Parse one command-line value; a bad one is an InvalidError (exit 2) that names the flag. */
export function parseArg<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what: string,
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const shown = typeof value === "string" ? ` (got '${value}')` : "";
  throw new InvalidError(
    `${what}: ${result.error.issues.map((issue) => issue.message).join("; ")}${shown}`,
  );
}
