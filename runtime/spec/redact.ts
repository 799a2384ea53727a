/** Copies of specs that are safe to log or show in a preview: secret values replaced. */
import type { CompiledAppSpec } from "./app-spec.js";
import type { CompiledFunctionSpec } from "./function-spec.js";

export const REDACTED = "<redacted>";

function redactFunction(fn: CompiledFunctionSpec): CompiledFunctionSpec {
  const copy = structuredClone(fn);
  for (const name of Object.keys(copy.secrets)) copy.secrets[name] = REDACTED;
  return copy;
}

/** A deep copy with every secret value replaced by "<redacted>" (names are kept). */
export function redactSpec(spec: CompiledAppSpec): CompiledAppSpec;
export function redactSpec(spec: CompiledFunctionSpec): CompiledFunctionSpec;
export function redactSpec(
  spec: CompiledAppSpec | CompiledFunctionSpec,
): CompiledAppSpec | CompiledFunctionSpec {
  if ("handler" in spec) return redactFunction(spec);
  const copy = structuredClone(spec);
  for (const [name, fn] of Object.entries(copy.functions))
    copy.functions[name] = redactFunction(fn);
  return copy;
}
