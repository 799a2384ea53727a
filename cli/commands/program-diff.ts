/**
 * The diff of a program's app against what the agent runs, for `kiln preview` and `kiln deploy
 * <program-dir>`. The agent shows its compiled spec (secret values redacted) and digest; where it
 * does not show a function's bundle hash, comparing container versions tells whether the code (or
 * a secret value) changed.
 */
import { createHash } from "node:crypto";
import { containerVersion } from "../../runtime/agent/apps.js";
import type { AgentHttp } from "../../runtime/client/http.js";
import type { AgentStatus } from "../../runtime/protocol.js";
import {
  canonicalJson,
  DEFAULT_CPU_HEADROOM,
  type CompiledAppSpec,
  type CompiledFunctionSpec,
} from "../../runtime/spec/index.js";
import {
  diffApps,
  viewOfInputs,
  type AppDiff,
  type AppView,
  type FunctionView,
} from "../../provider/diff.js";
import { usedBundles } from "../../provider/hash.js";
import { agentHttp } from "../../provider/ops.js";
import type { AppDeploymentInputs } from "../../provider/state.js";

/** What the agent says about a deployed app. */
export interface DeployedApp {
  name: string;
  version: number;
  digest: string;
  spec: CompiledAppSpec;
  /** Handler file → bundle sha256, when the agent says (newer agents). */
  bundles?: Record<string, string>;
}

export interface AgentDiff {
  diff: AppDiff;
  /** The app on the agent, or null when it is not deployed there. */
  current: DeployedApp | null;
}

/** Whether an agent answers `GET /healthz` at `endpoint` within `timeoutMs`. */
export async function agentAnswers(endpoint: string, timeoutMs = 2000): Promise<boolean> {
  try {
    const response = await fetch(
      new URL("healthz", endpoint.endsWith("/") ? endpoint : `${endpoint}/`),
      { signal: AbortSignal.timeout(timeoutMs) },
    );
    return response.ok;
  } catch {
    return false;
  }
}

/** The app as the agent runs it, or null when it is not deployed there. */
async function fetchDeployed(http: AgentHttp, appName: string): Promise<DeployedApp | null> {
  try {
    return await http.request<DeployedApp>("GET", `/v1/apps/${encodeURIComponent(appName)}`, {
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    if ((error as { code?: string }).code === "NOT_FOUND") return null;
    throw error;
  }
}

/** The agent's digest formula (AppRegistry.deploy): sha256 of `{ spec, bundles }`, the compiled spec with secrets. */
function localDigest(spec: CompiledAppSpec, bundles: Record<string, string>): string {
  return createHash("sha256")
    .update(canonicalJson({ spec, bundles: usedBundles(spec, bundles) }))
    .digest("hex");
}

/**
 * The agent compiles specs against its own ceilings: a CPU limit the program left to its default
 * (request + 4 cores) is capped at the agent's CPU ceiling (its cores, unless configured; a capped
 * default on the agent shows it). Compile the program's defaults the same way, so the preview shows
 * what the program changes, not the agent's defaults.
 */
function adoptAgentDefaults(
  next: AppView,
  remote: CompiledAppSpec,
  inputs: AppDeploymentInputs,
  agentCores: number | undefined,
): void {
  const written = (name: string) =>
    (inputs.spec.functions as Record<string, { cpu?: unknown }> | undefined)?.[name]?.cpu;
  let ceiling = agentCores;
  for (const [name, theirs] of Object.entries(remote.functions)) {
    // A default limit below request + 4 on the agent is its ceiling.
    if (
      !Array.isArray(written(name)) &&
      theirs.cpu.limit < theirs.cpu.request + DEFAULT_CPU_HEADROOM &&
      theirs.cpu.limit > theirs.cpu.request
    ) {
      ceiling = theirs.cpu.limit;
      break;
    }
  }
  if (ceiling === undefined) return;
  for (const [name, fn] of Object.entries(next.functions)) {
    if (Array.isArray(written(name))) continue;
    const { request, limit } = fn.spec.cpu;
    const theirs = Math.max(request, Math.min(request + DEFAULT_CPU_HEADROOM, ceiling));
    if (theirs !== limit) fn.spec = { ...fn.spec, cpu: { request, limit: theirs } };
  }
}

function compiledOf(view: AppView): CompiledAppSpec {
  const functions = Object.fromEntries(
    Object.entries(view.functions).map(([name, fn]) => [name, fn.spec]),
  );
  return {
    name: view.name,
    functions,
    dicts: view.dicts,
    queues: view.queues,
    schedules: view.schedules,
  };
}

/** Diff the program's app (`inputs`) against the agent. */
export async function diffAgainstAgent(inputs: AppDeploymentInputs): Promise<AgentDiff> {
  const http = agentHttp(inputs);
  const next = viewOfInputs(inputs);
  const current = await fetchDeployed(http, inputs.appName);
  const options = { secretPaths: inputs.secretPaths };
  if (current === null) return { diff: diffApps(null, next, options), current };
  const old = remoteView(current, inputs.endpoint);
  const status = await http.request<AgentStatus>("GET", "/v1/status", {
    signal: AbortSignal.timeout(30_000),
  });
  adoptAgentDefaults(next, current.spec, inputs, status.agent.capacity?.cpu);
  if (current.digest === localDigest(compiledOf(next), inputs.bundles))
    return { diff: diffApps(old, { ...next, functions: sameAs(old, next) }, options), current };
  const versions = new Map(
    (status.apps.find((a) => a.name === current.name)?.functions ?? []).map((f) => [
      f.name,
      f.version,
    ]),
  );
  for (const [name, fn] of Object.entries(old.functions)) {
    const local = next.functions[name];
    const remoteVersion = versions.get(name);
    if (!local || remoteVersion === undefined || local.code === null) continue;
    fn.hidden = current.bundles
      ? secretsChange(fn, local, remoteVersion)
      : hiddenChange(fn.spec, local, remoteVersion);
  }
  return { diff: diffApps(old, next, options), current };
}

/**
 * With the agent's code known: whether the secret values differ. The agent's container version
 * hashes its code, spec and secret values; recomputed with the program's secret values in place
 * of the agent's (which it does not show), a different version means a secret value changed.
 */
function secretsChange(
  remote: FunctionView,
  local: FunctionView,
  remoteVersion: string,
): FunctionView["hidden"] {
  const names = (s: Record<string, string>) => Object.keys(s).sort().join(",");
  if (remote.code === null || names(remote.spec.secrets) !== names(local.spec.secrets))
    return undefined;
  if (names(local.spec.secrets) === "") return undefined;
  const version = containerVersion(remote.code, { ...remote.spec, secrets: local.spec.secrets });
  return version === remoteVersion ? "same" : "secrets";
}

/** The program's functions marked as the agent's (same digest: nothing changed, code included). */
function sameAs(old: AppView, next: AppView): AppView["functions"] {
  const functions: AppView["functions"] = {};
  for (const [name, fn] of Object.entries(next.functions))
    functions[name] = { ...fn, code: old.functions[name]?.code ?? fn.code };
  for (const fn of Object.values(old.functions)) fn.hidden = "same";
  return functions;
}

/** The view of a deployed app: its (redacted) spec; bundles only when the agent says. */
function remoteView(current: DeployedApp, endpoint: string): AppView {
  const functions: Record<string, FunctionView> = {};
  for (const [name, spec] of Object.entries(current.spec.functions)) {
    functions[name] = {
      spec,
      code: current.bundles?.[spec.handler.file] ?? null,
      secretValuesKnown: false,
    };
  }
  return {
    name: current.name,
    endpoint,
    functions,
    dicts: current.spec.dicts,
    queues: current.spec.queues,
    schedules: current.spec.schedules,
  };
}

/**
 * What the container version says that the redacted spec cannot: the agent's version hashes the
 * bundle, handler, resources, env and secret values. Recomputed with the agent's visible spec and
 * the program's code and secret values: equal means neither changed.
 */
function hiddenChange(
  remote: CompiledFunctionSpec,
  local: FunctionView,
  remoteVersion: string,
): FunctionView["hidden"] {
  const localCode = local.code ?? "";
  if (containerVersion(localCode, local.spec) === remoteVersion) return "same";
  const remoteNames = Object.keys(remote.secrets).sort().join(",");
  const localNames = Object.keys(local.spec.secrets).sort().join(",");
  if (remoteNames !== localNames) return undefined;
  if (containerVersion(localCode, { ...remote, secrets: local.spec.secrets }) === remoteVersion)
    return "same";
  return remoteNames === "" ? "code" : "code-or-secrets";
}
