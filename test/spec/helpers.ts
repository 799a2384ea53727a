import { expect } from "vitest";
import { InvalidError } from "../../runtime/errors.js";
import { compileAppSpec, type CompileOptions, type SpecIssue } from "../../runtime/spec/index.js";

export const HANDLER = "./functions.ts#square";

/** An app with one function `f` made of `fields`. */
export function appWith(
  fields: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { name: "app", functions: { f: { handler: HANDLER, ...fields } }, ...extra };
}

/** The InvalidError `run` throws (fails the test if it does not throw one). */
export function invalid(run: () => unknown): InvalidError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidError);
    return error as InvalidError;
  }
  throw new Error("expected an InvalidError, nothing was thrown");
}

/** The `{ path, message }` issues of compiling `input`. */
export function issuesOf(input: unknown, options?: CompileOptions): SpecIssue[] {
  return invalid(() => compileAppSpec(input, options)).details.issues as SpecIssue[];
}

/** The lines of the InvalidError message of compiling `input`. */
export function linesOf(input: unknown, options?: CompileOptions): string[] {
  return invalid(() => compileAppSpec(input, options)).message.split("\n");
}
