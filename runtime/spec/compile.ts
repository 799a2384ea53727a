/**
 * Options in, compiled spec out: `compileAppSpec(input) → CompiledAppSpec`, every default filled in,
 * or an `InvalidError` listing every issue (one per line, path first).
 */
import { AppSpecSchema, type CompiledAppSpec, createAppSpecSchema } from "./app-spec.js";
import {
  type CompiledFunctionSpec,
  createFunctionSpecSchema,
  FunctionSpecSchema,
} from "./function-spec.js";
import { invalidFromZod, invalidSpecError, specIssues } from "./issues.js";
import { type Maxima, MaximaSchema } from "./maxima.js";
import { resourceNameSchema } from "./names.js";

export interface CompileOptions {
  /** Per-container maxima of the pool the app runs on; requests above them fail. */
  maxima?: Maxima | undefined;
}

function parseMaxima(maxima: Maxima | undefined): Maxima | undefined {
  if (maxima === undefined) return undefined;
  const result = MaximaSchema.safeParse(maxima, { reportInput: true });
  if (!result.success) throw invalidFromZod(result.error, ["maxima"]);
  return result.data;
}

/** Validate and normalize a whole app. Throws `InvalidError` naming every bad field. */
export function compileAppSpec(input: unknown, options: CompileOptions = {}): CompiledAppSpec {
  const maxima = parseMaxima(options.maxima);
  const schema = maxima === undefined ? AppSpecSchema : createAppSpecSchema(maxima);
  const result = schema.safeParse(input, { reportInput: true });
  if (!result.success) throw invalidFromZod(result.error);
  return result.data;
}

/** Validate and normalize one function; paths read `functions.<name>.<field>`. */
export function compileFunctionSpec(
  name: string,
  input: unknown,
  options: CompileOptions = {},
): CompiledFunctionSpec {
  const maxima = parseMaxima(options.maxima);
  const nameResult = resourceNameSchema("function").safeParse(name, { reportInput: true });
  const schema = maxima === undefined ? FunctionSpecSchema : createFunctionSpecSchema(maxima);
  const result = schema.safeParse(input, { reportInput: true });
  const issues = [
    ...(nameResult.success ? [] : specIssues(nameResult.error.issues, ["functions", name])),
    ...(result.success ? [] : specIssues(result.error.issues, ["functions", name])),
  ];
  if (issues.length > 0 || !result.success) throw invalidSpecError(issues, result.error);
  return result.data;
}
