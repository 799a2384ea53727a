/**
 * What an `AppDeployment` holds: its inputs (the app spec as written, secret values kept apart,
 * the bundles' hashes, where the agent is) and its outputs (the inputs plus what the agent said).
 * Pure: shared by the provider methods, the components and the CLI.
 */
import { InvalidError } from "../runtime/errors.js";
import {
  compileAppSpec,
  formatPath,
  type AppSpecInput,
  type CompiledAppSpec,
  type Maxima,
  type SpecIssue,
} from "../runtime/spec/index.js";

/** The Pulumi type token of AppDeployment (a dynamic resource with module "kiln"). */
export const APP_DEPLOYMENT_MODULE = "kiln";
export const APP_DEPLOYMENT_TYPE_NAME = "AppDeployment";
export const APP_DEPLOYMENT_TYPE = `pulumi-nodejs:dynamic/${APP_DEPLOYMENT_MODULE}:${APP_DEPLOYMENT_TYPE_NAME}`;

/** Function name → secret name → value. Kept out of `spec` so that only this input is secret. */
export type SecretValues = Record<string, Record<string, string>>;

/** The resolved inputs of one AppDeployment. */
export interface AppDeploymentInputs {
  /** The app's name on the agent. Changing it replaces the deployment. */
  appName: string;
  /** The AppSpec as written (`name` = appName), without secret values. */
  spec: AppSpecInput;
  /** Secret values per function (a secret input). */
  secrets: SecretValues;
  /** Handler file (as written in the spec) → sha256 of its bundle, as evaluated. */
  bundles: Record<string, string>;
  /** Absolute directory the handler files are relative to. Not compared by diff: moving a checkout changes nothing. */
  root: string;
  /** The agent's URL. Changing it replaces the deployment (created there, deleted here). */
  endpoint: string;
  /** Bearer token of the agent (a secret input). */
  token: string;
  /** The pool's target kind ("local", "endpoint"). */
  target: string;
  /** Per-container maxima of the pool; requests above them fail `check`. */
  maxima: Maxima;
  /** Content hash of the bundles and the canonical spec. */
  specHash: string;
  /**
   * Spec paths (`schedules.nightly.args`, `functions.f.cpu`) whose values came from secret Outputs:
   * diffs and previews show them as [secret]. Names only, never values; absent from older programs.
   */
  secretPaths?: string[];
}

/** What the provider stores: every input the next diff needs, plus what the agent answered. */
export interface AppDeploymentOutputs extends AppDeploymentInputs {
  /** The agent's version number of the app. */
  version: number;
  /** The agent's digest of the deployed spec and bundles. */
  digest: string;
}

/** The spec the agent receives: `spec` with each function's secret values put back. */
export function agentSpec(inputs: Pick<AppDeploymentInputs, "spec" | "secrets">): AppSpecInput {
  const spec = structuredClone(inputs.spec) as AppSpecInput & {
    functions?: Record<string, Record<string, unknown>>;
  };
  for (const [fn, values] of Object.entries(inputs.secrets ?? {})) {
    const target = spec.functions?.[fn];
    if (target && Object.keys(values).length > 0) target["secrets"] = { ...values };
  }
  return spec;
}

/**
 * Every problem with a deployment's inputs, each with the input it concerns: the spec compiled
 * against the pool's maxima, the name, a bundle for each handler file, the endpoint.
 */
export function inputProblems(
  inputs: AppDeploymentInputs,
): { property: string; issue: SpecIssue }[] {
  const problems: { property: string; issue: SpecIssue }[] = [];
  const spec = inputs.spec as { name?: unknown } | undefined;
  if (typeof inputs.appName !== "string" || inputs.appName === "") {
    problems.push({ property: "appName", issue: { path: "appName", message: "required" } });
  } else if (spec?.name !== inputs.appName) {
    problems.push({
      property: "spec",
      issue: {
        path: "name",
        message: `the spec names app ${JSON.stringify(spec?.name)}, not ${JSON.stringify(inputs.appName)}`,
      },
    });
  }
  let compiled: CompiledAppSpec | null = null;
  try {
    compiled = compileAppSpec(agentSpec(inputs), { maxima: inputs.maxima ?? {} });
  } catch (error) {
    if (!isInvalid(error)) throw error;
    const issues = (error.details["issues"] as SpecIssue[] | undefined) ?? [
      { path: "(root)", message: error.message },
    ];
    for (const issue of issues) problems.push({ property: "spec", issue });
  }
  if (compiled) {
    for (const [name, fn] of Object.entries(compiled.functions)) {
      if (!inputs.bundles?.[fn.handler.file]) {
        problems.push({
          property: "bundles",
          issue: {
            path: formatPath(["functions", name, "handler"]),
            message: `no bundle for ${fn.handler.file}`,
          },
        });
      }
    }
  }
  if (
    typeof inputs.root !== "string" ||
    (!inputs.root.startsWith("/") && !/^[A-Za-z]:[\\/]/.test(inputs.root))
  ) {
    problems.push({
      property: "root",
      issue: {
        path: "root",
        message: `expected an absolute directory, got ${JSON.stringify(inputs.root)}`,
      },
    });
  }
  if (!isHttpUrl(inputs.endpoint)) {
    problems.push({
      property: "endpoint",
      issue: {
        path: "endpoint",
        message: `expected an http(s) URL, got ${JSON.stringify(inputs.endpoint)}`,
      },
    });
  }
  return problems;
}

/** Throw one InvalidError naming every problem (see {@link inputProblems}). */
export function validateInputs(inputs: AppDeploymentInputs): CompiledAppSpec {
  const problems = inputProblems(inputs);
  if (problems.length > 0) {
    const issues = problems.map((p) => p.issue);
    throw new InvalidError(
      `app ${JSON.stringify(inputs.appName)}: ${issues.map((i) => `${i.path}: ${i.message}`).join("\n")}`,
      { details: { issues } },
    );
  }
  return compileAppSpec(agentSpec(inputs));
}

export function isHttpUrl(value: unknown): value is string {
  if (typeof value !== "string") return false;
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}

/** The endpoint with one trailing slash, as AgentHttp wants it. */
export function baseUrl(endpoint: string): string {
  return endpoint.endsWith("/") ? endpoint : `${endpoint}/`;
}

/** An InvalidError, also one from another copy of kiln's modules (compared by code, not class). */
function isInvalid(error: unknown): error is InvalidError {
  return (
    error instanceof Error &&
    (error as { code?: unknown }).code === "INVALID" &&
    typeof (error as { details?: unknown }).details === "object"
  );
}
