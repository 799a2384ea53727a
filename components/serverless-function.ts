/**
 * `ServerlessFunction`: one function of an App. Every FunctionSpec field is an input; the handler
 * path is relative to the App's `root` (the Pulumi program's directory). Its `specHash` is the
 * content hash of the handler's bundle and of the compiled spec: it changes exactly when the
 * code or a setting changes.
 */
import * as pulumi from "@pulumi/pulumi";
import {
  compileFunctionSpec,
  handlerProblem,
  ANY_GPU,
  type BatchingInput,
  type CompiledFunctionSpec,
  type Maxima,
  type RetryPolicyInput,
  type SpecIssue,
  type WebEndpointInput,
} from "../runtime/spec/index.js";
import { functionSpecHash } from "../provider/hash.js";
import { App } from "./app.js";
import {
  componentError,
  defined,
  isInvalidError,
  issuesOf,
  knownFields,
  labelOf,
  secretFields,
  specKeys,
  splitSecretEnv,
} from "./validate.js";

export interface ServerlessFunctionArgs {
  /** The App the function belongs to. */
  readonly app: App;
  /** The function's name in the app (a plain string: the app's spec is keyed by it). Default: the resource name. */
  readonly name?: string;
  /** `"./functions.ts#square"` or `"./model.ts#Model.embed"`, relative to the App's root (the program's directory). */
  readonly handler: pulumi.Input<string>;
  /** CPU cores, or `[request, limit]`. Default request 0.125, soft limit request + 4. */
  readonly cpu?: pulumi.Input<number | [number, number]>;
  /** Memory in MiB, or `[request, limit]` (the limit is hard: OOM kill). Default 128, no limit. */
  readonly memory?: pulumi.Input<number | [number, number | null]>;
  /** GPUs: `"A100:2"`, `"H100"`, `"any"`, or an ordered fallback list. Default none. */
  readonly gpu?: pulumi.Input<string | string[] | null>;
  /** Ephemeral disk in MiB, 1..3,145,728. Default: the host's default. */
  readonly ephemeralDisk?: pulumi.Input<number | null>;
  /** Containers kept warm. Default 0 (scale to zero). */
  readonly minContainers?: pulumi.Input<number>;
  /** Cap on containers. Default: no cap. */
  readonly maxContainers?: pulumi.Input<number | null>;
  /** Idle containers kept beyond current demand. Default 0. */
  readonly bufferContainers?: pulumi.Input<number>;
  /** Seconds a container may sit idle before it stops, 1..86,400. Default 60. */
  readonly scaledownWindow?: pulumi.Input<number>;
  /** Inputs one container runs at once, 1..1000. Default 1. */
  readonly maxInputs?: pulumi.Input<number>;
  /** Inputs per container the autoscaler aims for, 1..maxInputs. Default maxInputs. */
  readonly targetInputs?: pulumi.Input<number>;
  /** Dynamic batching: `{ maxBatchSize 1..1000, waitMs 0..600,000 }`. Default off. */
  readonly batched?: pulumi.Input<BatchingInput>;
  /** User retries: a count 0..10, or `{ maxRetries, backoffCoefficient, initialDelayMs, maxDelayMs }`. Default 0. */
  readonly retries?: pulumi.Input<RetryPolicyInput>;
  /** Seconds one attempt may run, 1..86,400. Default 300. */
  readonly timeout?: pulumi.Input<number>;
  /** Seconds a container may take to start, 1..86,400. Default: `timeout`. */
  readonly startupTimeout?: pulumi.Input<number>;
  /** Environment variables. Default none. */
  readonly env?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Secret environment variables: pass `pulumi.secret(...)` values; they stay secret in state and previews. Default none. */
  readonly secrets?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Serve over HTTP at `/web/<app>/<fn>`: `{ method: "GET" | "POST", public?: false }`. Default off. */
  readonly webEndpoint?: pulumi.Input<WebEndpointInput>;
}

/** The FunctionSpec fields a ServerlessFunction passes through. */
export const FUNCTION_SPEC_FIELDS = [
  "handler",
  "cpu",
  "memory",
  "gpu",
  "ephemeralDisk",
  "minContainers",
  "maxContainers",
  "bufferContainers",
  "scaledownWindow",
  "maxInputs",
  "targetInputs",
  "batched",
  "retries",
  "timeout",
  "startupTimeout",
  "env",
  "secrets",
  "webEndpoint",
] as const;

/** Spec fields whose compiled default comes from another field's value. */
const DERIVED_FIELDS: Record<string, string[]> = {
  timeout: ["startupTimeout"],
  maxInputs: ["targetInputs"],
};

export interface FunctionPoolLimits {
  maxima?: Maxima | undefined;
  /** The pool's GPU type (upper-cased); null or undefined when not declared. */
  gpuType?: string | null | undefined;
}

/**
 * Check a function's (known) arguments against the spec and the pool. Throws an InvalidError
 * naming each field: `ServerlessFunction "embed": memory: limit 64 is below request 128`.
 * Returns the compiled spec when every field was given.
 */
export function validateFunctionArgs(
  name: string,
  fields: Record<string, unknown>,
  pool: FunctionPoolLimits = {},
): CompiledFunctionSpec {
  const label = labelOf("ServerlessFunction", name);
  const issues: SpecIssue[] = [];
  let compiled: CompiledFunctionSpec | undefined;
  // An unknown handler is checked later; a placeholder keeps the rest checkable.
  const input = { handler: "./unknown.ts#unknown", ...fields };
  try {
    compiled = compileFunctionSpec(name, input, { maxima: pool.maxima });
  } catch (error) {
    if (!isInvalidError(error)) throw error;
    issues.push(
      ...issuesOf(error, `functions.${name}`).map((i) =>
        i.path.startsWith("functions.")
          ? { ...i, path: i.path.replace(/^functions\.[^.]+\.?/, "") || "name" }
          : i,
      ),
    );
  }
  if (compiled && pool.gpuType && compiled.gpu) {
    const types = compiled.gpu.options.map((o) => o.type);
    if (!types.some((t) => t === ANY_GPU || t === pool.gpuType)) {
      issues.push({
        path: "gpu",
        message: `${types.map((t) => JSON.stringify(t)).join(", ")} does not match the pool's GPU type ${JSON.stringify(pool.gpuType)} (ask for "${pool.gpuType}" or "any")`,
      });
    }
  }
  if (issues.length > 0 || compiled === undefined) throw componentError(label, issues);
  // Pool maxima only check; the spec itself (the CPU limit's default) is compiled as the agent does.
  return pool.maxima === undefined ? compiled : compileFunctionSpec(name, input);
}

export class ServerlessFunction extends pulumi.ComponentResource {
  static readonly __pulumiType = "kiln:index:ServerlessFunction";

  /** True for a ServerlessFunction, also one made by another copy of kiln. */
  static override isInstance(obj: unknown): obj is ServerlessFunction {
    return (
      typeof obj === "object" &&
      obj !== null &&
      (obj as { __pulumiType?: unknown }).__pulumiType === ServerlessFunction.__pulumiType
    );
  }

  /** The function's name in the app. */
  readonly name: pulumi.Output<string>;
  /** The app's name on the agent. */
  readonly appName: pulumi.Output<string>;
  /** sha256 of the handler's bundle and the compiled spec (secret values left out). */
  readonly specHash: pulumi.Output<string>;
  /** The App it belongs to. */
  readonly app: App;
  /** The function's name in the app, as a plain string. */
  readonly functionName: string;

  constructor(name: string, args: ServerlessFunctionArgs, opts?: pulumi.ComponentResourceOptions) {
    super(
      ServerlessFunction.__pulumiType,
      name,
      {},
      pulumi.mergeOptions({ parent: App.isInstance(args?.app) ? args.app : undefined }, opts),
    );
    const fnName = args?.name ?? name;
    const label = labelOf("ServerlessFunction", fnName);
    if (!App.isInstance(args?.app))
      throw componentError(label, [{ path: "app", message: "required: an App" }]);
    if (args.handler === undefined)
      throw componentError(label, [
        { path: "handler", message: `required: "./file.ts#export" or "./file.ts#Class.method"` },
      ]);
    const app = args.app;
    this.app = app;
    this.functionName = fnName;

    // Check what is known now; Outputs are checked again once they resolve.
    const limits = app.pool.knownLimits;
    validateFunctionArgs(
      fnName,
      knownFields(args, specKeys(args, ["app", "name"]), ["env", "secrets"]),
      limits,
    );

    const {
      secrets: secretInput,
      env: envInput,
      ...plainInput
    } = Object.fromEntries(FUNCTION_SPEC_FIELDS.map((f) => [f, args[f]])) as Record<
      string,
      unknown
    >;
    // Secret env entries travel as secret values (same variables in the container): never in clear.
    const env = splitSecretEnv(envInput);
    const specFields = defined({ ...plainInput, env: env.plain });
    const specOut = pulumi.output(specFields) as unknown as pulumi.Output<Record<string, unknown>>;
    // A default computed from a secret field is secret too (startupTimeout defaults to timeout).
    const secretFieldsOut = secretFields(specFields).apply((fields) =>
      [...new Set(fields.flatMap((f) => [f, ...(DERIVED_FIELDS[f] ?? [])]))].sort(),
    );
    const secretsOut = pulumi.secret(
      pulumi
        .all([pulumi.output((secretInput ?? {}) as Record<string, string>), env.secret])
        .apply(([values, fromEnv]) => ({ ...fromEnv, ...values })),
    );
    const secretNames = pulumi.unsecret(secretsOut.apply((values) => Object.keys(values).sort()));

    const checked = pulumi
      .all([specOut, secretNames, app.pool.maxima, app.pool.gpuType])
      .apply(([spec, names, maxima, gpuType]) => {
        const handler = spec["handler"];
        const problem =
          typeof handler === "string"
            ? handlerProblem(handler)
            : `expected a string, got ${typeof handler}`;
        if (problem !== null) throw componentError(label, [{ path: "handler", message: problem }]);
        const withNames = { ...spec, secrets: Object.fromEntries(names.map((n) => [n, ""])) };
        return validateFunctionArgs(fnName, withNames, { maxima, gpuType });
      });
    const bundle = checked.apply(async (compiled) => {
      const artifact = await app.bundle(compiled.handler.file).catch((error: unknown) => {
        throw componentError(
          label,
          [{ path: "handler", message: (error as Error).message.split("\n").join("; ") }],
          error,
        );
      });
      if (!artifact.exports.includes(compiled.handler.exportName)) {
        throw componentError(label, [
          {
            path: "handler",
            message: `${compiled.handler.file} has no export '${compiled.handler.exportName}'; it exports: ${artifact.exports.join(", ") || "(nothing)"}`,
          },
        ]);
      }
      return { file: artifact.file, sha256: artifact.sha256 };
    });

    this.name = pulumi.output(fnName);
    this.appName = app.name;
    this.specHash = pulumi
      .all([checked, bundle])
      .apply(([compiled, b]) => functionSpecHash(compiled, b.sha256));
    app.addMember("function", fnName, {
      spec: specOut,
      secrets: secretsOut,
      secretNames,
      bundle,
      secretFields: secretFieldsOut,
    });
    this.registerOutputs({ name: this.name, appName: this.appName, specHash: this.specHash });
  }
}
