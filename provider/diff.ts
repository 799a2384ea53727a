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
  hidden?: "same" | "code" | "code-or-secrets" | "secrets";
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

/**
 * One changed field. `undefined` means absent on that side. A secret value (a function's `secrets`,
 * or a spec value that came from a secret Output) reads "[secret]" on both sides, with `secret`.
 */
export interface FieldChange {
  field: string;
  old: unknown;
  new: unknown;
  /** The value is secret: old and new are "[secret]" (or absent), never the values. */
  secret?: true;
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
export const SECRET = "[secret]";
/** How a changed secret value reads: no old or new value. */
export const SECRET_CHANGED = "(secret) changed";

export interface DiffOptions {
  /**
   * Spec paths whose values are secret (`schedules.nightly.args`, `functions.f.cpu`; "" for all):
   * a change under one (or holding one) shows as "(secret) changed".
   */
  secretPaths?: readonly string[] | undefined;
}

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
export function diffApps(old: AppView | null, next: AppView, options: DiffOptions = {}): AppDiff {
  const secret = secretPathTest(options.secretPaths ?? []);
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
  const plain = <T>(a: T, b: T) => diffValue("", a, b);
  entries.push(
    ...diffRecords("function", old?.functions ?? {}, next.functions, diffFunction, secret),
  );
  entries.push(...diffRecords("dict", old?.dicts ?? {}, next.dicts, plain, secret));
  entries.push(...diffRecords("queue", old?.queues ?? {}, next.queues, plain, secret));
  entries.push(...diffRecords("schedule", old?.schedules ?? {}, next.schedules, plain, secret));
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
  secret: (path: string) => boolean,
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
      const changed = fields(a, b).map((change) => {
        const path = `${kind}s.${name}${change.field === "(value)" ? "" : `.${change.field}`}`;
        return change.secret || !secret(path) ? change : masked(change);
      });
      if (changed.length > 0) out.push({ kind, name, action: "change", fields: changed });
    }
  }
  return out;
}

/** Whether a spec path is secret, under a secret path, or holds one. */
function secretPathTest(paths: readonly string[]): (path: string) => boolean {
  return (path) =>
    paths.some(
      (p) => p === "" || p === path || path.startsWith(`${p}.`) || p.startsWith(`${path}.`),
    );
}

/** A change with its values replaced by the secret marker. */
function masked(change: FieldChange): FieldChange {
  return {
    field: change.field,
    old: change.old === undefined ? undefined : SECRET,
    new: change.new === undefined ? undefined : SECRET,
    secret: true,
  };
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
        secret: true,
      });
    else if (a.secretValuesKnown && b.secretValuesKnown && secretsA[name] !== secretsB[name]) {
      out.push({ field: `secrets.${name}`, old: SECRET, new: SECRET, secret: true });
    }
  }
  // The agent's container version says a secret value changed (which one, when there is one).
  const hiddenSecrets = [a.hidden, b.hidden].includes("secrets");
  if (hiddenSecrets && !out.some((c) => c.field.startsWith("secrets."))) {
    const names = Object.keys(secretsB).filter((n) => Object.hasOwn(secretsA, n));
    out.push({
      field: names.length === 1 ? `secrets.${names[0]}` : "secrets",
      old: SECRET,
      new: SECRET,
      secret: true,
    });
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
  if (value === SECRET || value === "(changed)") return String(value);
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
    for (const field of entry.fields) lines.push(`      ${formatField(field)}`);
  }
  lines.push(`  ${summary(diff)}`);
  return lines;
}

/** `field: old -> new`; a secret that changed on both sides: `field: (secret) changed`. */
export function formatField(field: FieldChange): string {
  if (field.secret && field.old !== undefined && field.new !== undefined)
    return `${field.field}: ${SECRET_CHANGED}`;
  return `${field.field}: ${showValue(field.old)} -> ${showValue(field.new)}`;
}

function summary(diff: AppDiff): string {
  const { add, change, remove } = diff.counts;
  return `${add} to add, ${change} to change, ${remove} to remove`;
}
