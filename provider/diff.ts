/**
 * What changes between two versions of an app: functions, dicts, queues and schedules added,
 * removed or changed, and for each change the fields with their old and new values. Used by the
 * provider's `diff` (old outputs against new inputs) and by `kiln preview` (what the agent runs
 * against the program). Pure.
 */
import {
  canonicalJson,
  compileAppSpec,
  type CompiledDictSpec,
  type CompiledFunctionSpec,
  type CompiledQueueSpec,
  type CompiledScheduleSpec,
} from "../runtime/spec/index.js";
import { agentSpec, type AppDeploymentInputs } from "./state.js";

/** One function as a diff sees it. */
export interface FunctionView {
  /** The compiled spec; `secrets` values are only meaningful when `secretValuesKnown`. */
  spec: CompiledFunctionSpec;
  /** sha256 of the handler file's bundle, or null when not known (an agent that does not say). */
  code: string | null;
  secretValuesKnown: boolean;
  /**
   * When `code` is null: what a comparison of container versions found out about the code (and
   * the secret values) that the spec does not show.
   */
  hidden?: "same" | "code" | "code-or-secrets";
}

/** An app as a diff sees it. */
export interface AppView {
  name: string;
  endpoint: string | null;
  functions: Record<string, FunctionView>;
  dicts: Record<string, CompiledDictSpec>;
  queues: Record<string, CompiledQueueSpec>;
  schedules: Record<string, CompiledScheduleSpec>;
}

export type EntryKind = "function" | "dict" | "queue" | "schedule";

/** One changed field. `undefined` means absent on that side; secret values read "(secret)". */
export interface FieldChange {
  field: string;
  old: unknown;
  new: unknown;
}

export interface EntryChange {
  kind: EntryKind;
  name: string;
  action: "add" | "remove" | "change";
  /** For "change": what changed. Empty for "add" and "remove". */
  fields: FieldChange[];
}

export interface AppDiff {
  app: string;
  /** False when there is nothing to diff against (a new app). */
  exists: boolean;
  /** Fields whose change replaces the deployment (the app's name, the agent). */
  replaces: FieldChange[];
  entries: EntryChange[];
  counts: { add: number; change: number; remove: number };
  /** Anything at all to do. */
  changed: boolean;
}

/** Marker shown for secret values. */
export const SECRET = "(secret)";

/** The view of an AppDeployment's inputs (or outputs): compiled spec, bundles, secret values. */
export function viewOfInputs(
  inputs: Pick<AppDeploymentInputs, "spec" | "secrets" | "bundles" | "endpoint">,
): AppView {
  const compiled = compileAppSpec(agentSpec(inputs));
  const functions: Record<string, FunctionView> = {};
  for (const [name, spec] of Object.entries(compiled.functions)) {
    functions[name] = {
      spec,
      code: inputs.bundles?.[spec.handler.file] ?? null,
      secretValuesKnown: true,
    };
  }
  return {
    name: compiled.name,
    endpoint: inputs.endpoint ?? null,
    functions,
    dicts: compiled.dicts,
    queues: compiled.queues,
    schedules: compiled.schedules,
  };
}

/** Compare `old` (null: nothing deployed) with `next`. */
export function diffApps(old: AppView | null, next: AppView): AppDiff {
  const replaces: FieldChange[] = [];
  const entries: EntryChange[] = [];
  if (old) {
    if (old.name !== next.name) replaces.push({ field: "appName", old: old.name, new: next.name });
    if (
      old.endpoint !== null &&
      next.endpoint !== null &&
      stripSlash(old.endpoint) !== stripSlash(next.endpoint)
    ) {
      replaces.push({ field: "endpoint", old: old.endpoint, new: next.endpoint });
    }
  }
  entries.push(...diffRecords("function", old?.functions ?? {}, next.functions, diffFunction));
  entries.push(...diffRecords("dict", old?.dicts ?? {}, next.dicts, (a, b) => diffValue("", a, b)));
  entries.push(
    ...diffRecords("queue", old?.queues ?? {}, next.queues, (a, b) => diffValue("", a, b)),
  );
  entries.push(
    ...diffRecords("schedule", old?.schedules ?? {}, next.schedules, (a, b) => diffValue("", a, b)),
  );
  const counts = { add: 0, change: 0, remove: 0 };
  for (const entry of entries) counts[entry.action]++;
  return {
    app: next.name,
    exists: old !== null,
    replaces,
    entries,
    counts,
    changed: old === null || replaces.length > 0 || entries.length > 0,
  };
}

function diffRecords<T>(
  kind: EntryKind,
  old: Record<string, T>,
  next: Record<string, T>,
  fields: (a: T, b: T) => FieldChange[],
): EntryChange[] {
  const names = [...new Set([...Object.keys(old), ...Object.keys(next)])].sort();
  const out: EntryChange[] = [];
  for (const name of names) {
    const a = old[name];
    const b = next[name];
    if (a === undefined && b !== undefined) out.push({ kind, name, action: "add", fields: [] });
    else if (a !== undefined && b === undefined)
      out.push({ kind, name, action: "remove", fields: [] });
    else if (a !== undefined && b !== undefined) {
      const changed = fields(a, b);
      if (changed.length > 0) out.push({ kind, name, action: "change", fields: changed });
    }
  }
  return out;
}

function diffFunction(a: FunctionView, b: FunctionView): FieldChange[] {
  const out: FieldChange[] = [];
  if (a.spec.handler.ref !== b.spec.handler.ref)
    out.push({ field: "handler", old: a.spec.handler.ref, new: b.spec.handler.ref });
  const { handler: _ha, gpu: gpuA, secrets: secretsA, ...restA } = a.spec;
  const { handler: _hb, gpu: gpuB, secrets: secretsB, ...restB } = b.spec;
  if (gpuText(gpuA) !== gpuText(gpuB))
    out.push({ field: "gpu", old: gpuText(gpuA), new: gpuText(gpuB) });
  out.push(...diffValue("", restA, restB));
  // Secrets: names always; values only when both sides know them.
  for (const name of [...new Set([...Object.keys(secretsA), ...Object.keys(secretsB)])].sort()) {
    const inA = Object.hasOwn(secretsA, name);
    const inB = Object.hasOwn(secretsB, name);
    if (inA !== inB)
      out.push({
        field: `secrets.${name}`,
        old: inA ? SECRET : undefined,
        new: inB ? SECRET : undefined,
      });
    else if (a.secretValuesKnown && b.secretValuesKnown && secretsA[name] !== secretsB[name]) {
      out.push({ field: `secrets.${name}`, old: SECRET, new: `${SECRET} changed` });
    }
  }
  if (a.code !== null && b.code !== null) {
    if (a.code !== b.code)
      out.push({ field: "code", old: a.code.slice(0, 12), new: (b.code ?? "").slice(0, 12) });
  } else if (a.code === null && a.hidden === "code") {
    out.push({ field: "code", old: "(changed)", new: b.code?.slice(0, 12) ?? "(changed)" });
  } else if (a.code === null && a.hidden === "code-or-secrets") {
    out.push({
      field: "code or secret values",
      old: "(changed)",
      new: b.code?.slice(0, 12) ?? "(changed)",
    });
  }
  return out;
}

/** Field-by-field differences of two JSON values; plain objects are compared key by key (dotted paths). */
function diffValue(path: string, a: unknown, b: unknown): FieldChange[] {
  if (isPlainObject(a) && isPlainObject(b)) {
    const out: FieldChange[] = [];
    for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      out.push(...diffValue(path === "" ? key : `${path}.${key}`, a[key], b[key]));
    }
    return out;
  }
  if (same(a, b)) return [];
  return [{ field: path === "" ? "(value)" : path, old: a, new: b }];
}

function same(a: unknown, b: unknown): boolean {
  if (a === undefined || b === undefined) return a === b;
  return canonicalJson(a) === canonicalJson(b);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function gpuText(gpu: CompiledFunctionSpec["gpu"]): string | null {
  if (gpu === null) return null;
  return gpu.options.map((o) => (o.count === 1 ? o.type : `${o.type}:${o.count}`)).join(", ");
}

function stripSlash(url: string): string {
  return url.replace(/\/+$/, "");
}

// ---- text --------------------------------------------------------------------------------------

/** A value as a diff line shows it: absent "(none)", strings quoted, the rest as compact JSON. */
export function showValue(value: unknown): string {
  if (value === undefined) return "(none)";
  if (value === SECRET || value === `${SECRET} changed` || value === "(changed)")
    return String(value);
  if (typeof value === "string" && /^[0-9a-f]{12}$/.test(value)) return value;
  return canonicalJson(value);
}

const SYMBOL = { add: "+", remove: "-", change: "~" } as const;

/** The diff as lines: `  ~ function square`, then `      maxContainers: 2 -> 4` per field; a summary line last. */
export function formatAppDiff(
  diff: AppDiff,
  where: { endpoint?: string; version?: number | null } = {},
): string[] {
  const at = where.endpoint ? ` on ${where.endpoint}` : "";
  if (!diff.exists) {
    const lines = [`app ${diff.app}${at}: new app`];
    for (const entry of diff.entries) lines.push(`  + ${entry.kind} ${entry.name}`);
    lines.push(`  ${summary(diff)}`);
    return lines;
  }
  const version =
    where.version === undefined || where.version === null ? "" : ` (version ${where.version})`;
  if (!diff.changed) return [`app ${diff.app}${at}${version}: no changes`];
  const lines = [`app ${diff.app}${at}${version}:`];
  for (const replace of diff.replaces)
    lines.push(
      `  +- ${replace.field}: ${showValue(replace.old)} -> ${showValue(replace.new)} (replaces the app)`,
    );
  for (const entry of diff.entries) {
    lines.push(`  ${SYMBOL[entry.action]} ${entry.kind} ${entry.name}`);
    for (const field of entry.fields)
      lines.push(`      ${field.field}: ${showValue(field.old)} -> ${showValue(field.new)}`);
  }
  lines.push(`  ${summary(diff)}`);
  return lines;
}

function summary(diff: AppDiff): string {
  const { add, change, remove } = diff.counts;
  return `${add} to add, ${change} to change, ${remove} to remove`;
}
