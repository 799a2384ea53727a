/**
 * Content hashes of what an app runs: a function's `specHash` is the sha256 of its bundle's hash
 * and its compiled spec (secret values left out, names kept), so it changes exactly when the
 * handler code or a setting changes, and is the same for the same code checked out anywhere.
 */
import { createHash } from "node:crypto";
import {
  canonicalJson,
  redactSpec,
  type CompiledAppSpec,
  type CompiledFunctionSpec,
} from "../runtime/spec/index.js";

function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** sha256 of `{ bundle, spec }`: the handler file's bundle hash and the compiled function spec, redacted. */
export function functionSpecHash(spec: CompiledFunctionSpec, bundleSha: string): string {
  return sha256Hex(canonicalJson({ bundle: bundleSha, spec: redactSpec(spec) }));
}

/** The bundles an app's functions use: handler file → sha256 (files no function names are left out). */
export function usedBundles(
  spec: CompiledAppSpec,
  bundles: Readonly<Record<string, string>>,
): Record<string, string> {
  const used: Record<string, string> = {};
  for (const fn of Object.values(spec.functions)) {
    const sha = bundles[fn.handler.file];
    if (sha !== undefined) used[fn.handler.file] = sha;
  }
  return used;
}

/** sha256 of `{ bundles, spec }` for a whole app: every bundle it runs and its compiled spec, redacted. */
export function appSpecHash(
  spec: CompiledAppSpec,
  bundles: Readonly<Record<string, string>>,
): string {
  return sha256Hex(canonicalJson({ bundles: usedBundles(spec, bundles), spec: redactSpec(spec) }));
}
