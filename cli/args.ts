/** zod schemas for command-line values, and one place that turns a bad value into a usage error. */
import { z } from "zod";
import { InvalidError } from "../runtime/errors.js";

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

/** A call argument: JSON when it parses (`7`, `"7"`, `[1,2]`, `{"a":1}`), the plain string otherwise. */
export const jsonArg = z.string().transform((text): unknown => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
});

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
