/**
 * Validation of component arguments at construction: what is known then (plain values) is checked
 * at once with `runtime/spec`, so a bad argument fails `pulumi preview` with its field path; what
 * is an Output is checked again once it resolves.
 */
import * as pulumi from "@pulumi/pulumi";
import { InvalidError } from "../runtime/errors.js";
import type { SpecIssue } from "../runtime/spec/index.js";
import { specIssues } from "../runtime/spec/issues.js";
import type { z } from "zod";

/** Stands for a value that is not known at construction (an Output or a Promise). */
export const UNKNOWN: unique symbol = Symbol("kiln.unknown");
export type Known<T> = T | typeof UNKNOWN;

function isDeferred(value: unknown): boolean {
  return (
    pulumi.Output.isInstance(value) ||
    value instanceof Promise ||
    (typeof value === "object" &&
      value !== null &&
      typeof (value as { then?: unknown }).then === "function")
  );
}

/** The plain value of an input when nothing inside it is an Output or a Promise; else UNKNOWN. */
export function known<T>(input: pulumi.Input<T> | undefined): Known<T | undefined> {
  if (isDeferred(input)) return UNKNOWN;
  if (Array.isArray(input)) {
    for (const item of input) if (known(item) === UNKNOWN) return UNKNOWN;
    return input as T;
  }
  if (
    typeof input === "object" &&
    input !== null &&
    Object.getPrototypeOf(input) === Object.prototype
  ) {
    for (const value of Object.values(input)) if (known(value) === UNKNOWN) return UNKNOWN;
  }
  return input as T | undefined;
}

/**
 * The fields of `args` named in `fields` whose values are known, for checking at construction.
 * `records` (env, secrets) are kept when only some values are unknown, with "" in their place,
 * so that their names are checked too.
 */
export function knownFields(
  args: object,
  fields: readonly string[],
  records: readonly string[] = [],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of fields) {
    const value = (args as Record<string, unknown>)[field];
    if (value === undefined) continue;
    if (
      records.includes(field) &&
      !isDeferred(value) &&
      typeof value === "object" &&
      value !== null
    ) {
      out[field] = Object.fromEntries(
        Object.entries(value).map(([k, v]) => [k, known(v) === UNKNOWN ? "" : v]),
      );
      continue;
    }
    const plain = known(value);
    if (plain !== UNKNOWN) out[field] = plain;
  }
  return out;
}

/** The argument names of `args` other than `except` (the component's own: app, name...), for passing every field on to a strict spec schema. */
export function specKeys(args: object, except: readonly string[]): string[] {
  return Object.keys(args ?? {}).filter((key) => !except.includes(key));
}

/** `unknown field` issues for arguments outside `allowed`. */
export function unknownArgs(args: object, allowed: readonly string[]): SpecIssue[] {
  return Object.keys(args ?? {})
    .filter((key) => !allowed.includes(key) && (args as Record<string, unknown>)[key] !== undefined)
    .map((key) => ({ path: key, message: "unknown field" }));
}

/** Drop undefined fields (what the spec would default). */
/**
 * The names of the fields whose value is, or holds, a secret Output (`pulumi.secret(...)`, a
 * secret config value or anything derived from one). Not itself secret: it names, never shows.
 */
export function secretFields(fields: Record<string, unknown>): pulumi.Output<string[]> {
  const checks = Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(async ([key, value]) => ((await pulumi.isSecret(pulumi.output(value))) ? key : null));
  return pulumi.output(
    Promise.all(checks).then((keys) => keys.filter((k): k is string => k !== null).sort()),
  );
}

/**
 * A function's `env` split: entries whose value is a secret Output go with the secret values (the
 * agent sets them as the same environment variables, and redacts them wherever it shows a spec);
 * the rest stay plain. A whole `env` that is a secret Output is secret entry by entry.
 */
export function splitSecretEnv(env: unknown): {
  plain: pulumi.Output<Record<string, string>> | undefined;
  secret: pulumi.Output<Record<string, string>>;
} {
  if (env === undefined || env === null)
    return { plain: undefined, secret: pulumi.output({} as Record<string, string>) };
  const whole = pulumi.output(env as pulumi.Input<Record<string, pulumi.Input<string>>>);
  const entries =
    pulumi.Output.isInstance(env) || typeof env !== "object"
      ? null
      : Object.entries(env as Record<string, unknown>);
  type Split = { plain: Record<string, string>; secret: Record<string, string> };
  const tagged: pulumi.Output<Split> =
    entries === null
      ? whole.apply(async (values): Promise<Split> => {
          const all = (values ?? {}) as Record<string, string>;
          return (await pulumi.isSecret(whole))
            ? { plain: {}, secret: all }
            : { plain: all, secret: {} };
        })
      : pulumi
          .all(
            entries.map(([key, value]) => {
              const out = pulumi.output(value as pulumi.Input<string>);
              return out.apply(
                async (v) => [key, v, await pulumi.isSecret(out)] as [string, string, boolean],
              );
            }),
          )
          .apply((triples): Split => ({
            plain: Object.fromEntries(triples.filter((t) => !t[2]).map(([k, v]) => [k, v])),
            secret: Object.fromEntries(triples.filter((t) => t[2]).map(([k, v]) => [k, v])),
          }));
  return {
    // Secret entries are left out of `plain`, so it is not secret (unsecret says so to Pulumi).
    plain: pulumi.unsecret(tagged.apply((t) => t.plain)),
    secret: pulumi.secret(tagged.apply((t) => t.secret)),
  };
}

export function defined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * One InvalidError for a component: `ServerlessFunction "square": memory: limit 64 is below
 * request 128`, one issue per line; `details.issues` has `{ path, message }` with argument paths.
 */
export function componentError(
  label: string,
  issues: readonly SpecIssue[],
  cause?: unknown,
): InvalidError {
  const lines = issues.map((issue) => `${label}: ${issue.path}: ${issue.message}`);
  return new InvalidError(lines.join("\n"), {
    details: { component: label, issues: issues.map((i) => ({ ...i })) },
    cause,
  });
}

/** Issues of a zod parse as argument paths (no prefix). */
export function zodIssues(error: z.ZodError): SpecIssue[] {
  return specIssues(error.issues);
}

/** Issues of an InvalidError from `compileFunctionSpec` / `compileAppSpec`, with `prefix` removed from their paths. */
export function issuesOf(error: InvalidError, prefix = ""): SpecIssue[] {
  const issues = (error.details["issues"] as SpecIssue[] | undefined) ?? [
    { path: "(root)", message: error.message },
  ];
  return issues.map((issue) => ({
    path:
      prefix !== "" && issue.path.startsWith(prefix)
        ? issue.path.slice(prefix.length).replace(/^\./, "") || "(root)"
        : issue.path,
    message: issue.message,
  }));
}

/** An InvalidError from any copy of kiln's modules. */
export function isInvalidError(error: unknown): error is InvalidError {
  return error instanceof Error && (error as { code?: unknown }).code === "INVALID";
}

/** `Component "name"`, as errors name a component. */
export function labelOf(kind: string, name: string): string {
  return `${kind} ${JSON.stringify(name)}`;
}
