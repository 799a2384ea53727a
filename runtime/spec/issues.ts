/**
 * Turning zod issues into one `InvalidError` whose message names each field path and what is allowed.
 *
 * One line per issue, path first: `functions.embed.memory: limit 64 is below request 128`.
 * `InvalidError.details.issues` carries the same as `{ path, message }` objects.
 */
import type { z } from "zod";
import { InvalidError } from "../errors.js";

/** One problem in a spec: the dotted field path (`functions.square.timeout`) and what is wrong. */
export interface SpecIssue {
  path: string;
  message: string;
}

type PathSegment = PropertyKey;
type Issue = z.core.$ZodIssue;

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** `["functions", "a", "gpu", 1]` → `functions.a.gpu[1]`; odd keys are quoted: `env["A B"]`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (typeof segment === "string" && PLAIN_KEY.test(segment))
      out += out === "" ? segment : `.${segment}`;
    else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out === "" ? "(root)" : out;
}

/** The JSON-ish name of a value's type, for "expected X, got Y". */
function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  return typeof value;
}

/** Flatten zod issues into spec issues, each with a full path and a readable message. */
export function specIssues(
  issues: readonly Issue[],
  prefix: readonly PathSegment[] = [],
): SpecIssue[] {
  const out: SpecIssue[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    switch (issue.code) {
      case "unrecognized_keys":
        for (const key of issue.keys)
          out.push({ path: formatPath([...path, key]), message: "unknown field" });
        break;
      case "invalid_key":
        out.push({
          path: formatPath(path),
          message: issue.issues.map((inner) => inner.message).join("; "),
        });
        break;
      case "invalid_union": {
        // Report the branch that matched the value's shape (a tuple for an array, an object for an
        // object) rather than "invalid input"; fall back to the union's own message.
        const shaped = issue.errors.filter(
          (branch) =>
            !branch.some((inner) => inner.code === "invalid_type" && inner.path.length === 0),
        );
        if (shaped.length === 1 && shaped[0] !== undefined)
          out.push(...specIssues(shaped[0], path));
        else
          out.push({
            path: formatPath(path),
            message: `${issue.message}, got ${typeName(issue.input)}`,
          });
        break;
      }
      case "invalid_type":
        out.push({
          path: formatPath(path),
          message:
            issue.input === undefined
              ? "required"
              : `expected ${issue.expected === "record" ? "object" : issue.expected}, got ${typeName(issue.input)}`,
        });
        break;
      case "invalid_value":
        out.push({
          path: formatPath(path),
          message: `expected one of ${issue.values.map((value) => JSON.stringify(value)).join(", ")}, got ${JSON.stringify(issue.input) ?? typeName(issue.input)}`,
        });
        break;
      default:
        out.push({ path: formatPath(path), message: issue.message });
    }
  }
  return out;
}

/** One InvalidError listing every issue, one per line, path first. */
export function invalidSpecError(issues: readonly SpecIssue[], cause?: unknown): InvalidError {
  const message = issues.map((issue) => `${issue.path}: ${issue.message}`).join("\n");
  return new InvalidError(message, {
    details: { issues: issues.map((issue) => ({ ...issue })) },
    cause,
  });
}

/** The InvalidError for a failed zod parse; `prefix` is prepended to every path. */
export function invalidFromZod(
  error: z.ZodError,
  prefix: readonly PathSegment[] = [],
): InvalidError {
  return invalidSpecError(specIssues(error.issues, prefix), error);
}
