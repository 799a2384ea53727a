/**
 * `GpuPool`: where an app's functions run, and the largest container they may ask for. Its
 * target says how to reach the agents (`local`, `endpoint`) or provisions them (`kubernetes`); its maxima
 * turn a function that asks for more than the hosts have into an `InvalidError` at creation.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { DEFAULT_AGENT_URL } from "../runtime/client/index.js";
import {
  MaximaSchema,
  type Maxima,
  type SpecIssue,
  MAX_GPUS_PER_CONTAINER,
} from "../runtime/spec/index.js";
import { isHttpUrl } from "../provider/state.js";
import { kilnEvaluator } from "./program-context.js";
import { kubernetesTargetIssues, provisionKubernetes } from "./kubernetes.js";
import { TARGET_KINDS, targetKindProblem, type GpuPoolTarget } from "./targets.js";
import { componentError, known, labelOf, UNKNOWN, unknownArgs, zodIssues } from "./validate.js";

/** The local agent's URL when nothing says otherwise (the client's default). */
export const DEFAULT_LOCAL_URL = DEFAULT_AGENT_URL;
const GPU_TYPE = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

export interface GpuPoolArgs {
  /**
   * Where the pool's functions run: `{ kind: "local" }` (the agent on this machine),
   * `{ kind: "endpoint", url, token }`, or `{ kind: "kubernetes", image, ... }` (agents the pool
   * provisions on a cluster). A plain object, not an Input: the kind decides which resources the
   * pool creates.
   */
  readonly target: GpuPoolTarget;
  /** The GPU type every host has ("A100", "H100"); a function asking for another type fails at creation. Default: not declared. */
  readonly gpuType?: pulumi.Input<string>;
  /** GPUs per host, 0..8; also the most one container may ask for (0: a CPU-only pool). Default: not declared (up to 8). */
  readonly gpusPerHost?: pulumi.Input<number>;
  /** Most cores one container may request. Default: kiln's ceiling, 64 cores. */
  readonly maxCpu?: pulumi.Input<number>;
  /** Most memory one container may request, in MiB. Default: kiln's ceiling, 1,048,576 MiB. */
  readonly maxMemory?: pulumi.Input<number>;
  /** Most ephemeral disk one container may request, in MiB. Default: 3,145,728 MiB. */
  readonly maxEphemeralDisk?: pulumi.Input<number>;
}

/** What validation learns from plain arguments; fields are undefined when they were Outputs. */
export interface ValidatedGpuPool {
  maxima: Maxima | undefined;
  /** The declared GPU type, upper-cased; null when none is declared. */
  gpuType: string | null | undefined;
}

/**
 * Check a pool's arguments (the known ones; Outputs are checked when they resolve). Throws an
 * InvalidError naming each field: `GpuPool "gpus": gpusPerHost: 9 is above the maximum 8`.
 */
export function validateGpuPoolArgs(
  name: string,
  args: GpuPoolArgs,
  evaluator: string | null = null,
): ValidatedGpuPool {
  const issues: SpecIssue[] = unknownArgs(args, [
    "target",
    "gpuType",
    "gpusPerHost",
    "maxCpu",
    "maxMemory",
    "maxEphemeralDisk",
  ]);
  const target = args?.target as Partial<GpuPoolTarget> | undefined;
  if (typeof target !== "object" || target === null) {
    issues.push({
      path: "target",
      message: `required: { kind: "local" } or { kind: "endpoint", url, token }`,
    });
  } else {
    const problem = targetKindProblem(target.kind, evaluator);
    if (problem !== null) issues.push({ path: "target.kind", message: problem });
    const fields =
      target.kind === "local"
        ? ["kind", "url", "stateDir", "token"]
        : target.kind === "endpoint"
          ? ["kind", "url", "token"]
          : null;
    if (fields)
      issues.push(...unknownArgs(target, fields).map((i) => ({ ...i, path: `target.${i.path}` })));
    const url = known(target.url);
    if (url !== UNKNOWN && url !== undefined && !isHttpUrl(url)) {
      issues.push({
        path: "target.url",
        message: `expected an http(s) URL, got ${JSON.stringify(url)}`,
      });
    }
    if (target.kind === "kubernetes" && problem === null) {
      issues.push(...kubernetesTargetIssues(target));
      if (args.gpusPerHost === undefined)
        issues.push({
          path: "gpusPerHost",
          message: `required for a kubernetes target: the GPUs each agent pod requests as ${JSON.stringify(target.gpuResource ?? "nvidia.com/gpu")} (0 for a CPU-only pool)`,
        });
    }
    if (target.kind === "endpoint") {
      if (target.url === undefined)
        issues.push({ path: "target.url", message: "required for an endpoint target" });
      if (target.token === undefined)
        issues.push({
          path: "target.token",
          message: "required for an endpoint target (pass a secret)",
        });
    }
  }
  const gpuType = known(args?.gpuType);
  if (
    gpuType !== UNKNOWN &&
    gpuType !== undefined &&
    (typeof gpuType !== "string" || !GPU_TYPE.test(gpuType))
  ) {
    issues.push({
      path: "gpuType",
      message: `expected a GPU type such as "A100" or "H100", got ${JSON.stringify(gpuType)}`,
    });
  }
  const gpusPerHost = known(args?.gpusPerHost);
  if (gpusPerHost !== UNKNOWN && gpusPerHost !== undefined) {
    if (
      typeof gpusPerHost !== "number" ||
      !Number.isInteger(gpusPerHost) ||
      gpusPerHost < 0 ||
      gpusPerHost > MAX_GPUS_PER_CONTAINER
    ) {
      issues.push({
        path: "gpusPerHost",
        message: `${JSON.stringify(gpusPerHost)} is not a whole number in 0..${MAX_GPUS_PER_CONTAINER}`,
      });
    }
  }
  const fields = {
    cpu: known(args?.maxCpu),
    memoryMiB: known(args?.maxMemory),
    gpusPerContainer: gpusPerHost,
    ephemeralDiskMiB: known(args?.maxEphemeralDisk),
  };
  const argName = {
    cpu: "maxCpu",
    memoryMiB: "maxMemory",
    gpusPerContainer: "gpusPerHost",
    ephemeralDiskMiB: "maxEphemeralDisk",
  } as const;
  const allKnown = Object.values(fields).every((v) => v !== UNKNOWN);
  const plain = Object.fromEntries(
    Object.entries(fields).filter(([, v]) => v !== UNKNOWN && v !== undefined),
  );
  const parsed = MaximaSchema.safeParse(plain);
  if (!parsed.success) {
    for (const issue of zodIssues(parsed.error)) {
      const [head, ...rest] = issue.path.split(".");
      const arg = argName[head as keyof typeof argName] ?? head;
      if (arg === "gpusPerHost" && issues.some((i) => i.path === "gpusPerHost")) continue;
      issues.push({ path: [arg, ...rest].join("."), message: issue.message });
    }
  }
  if (issues.length > 0) throw componentError(labelOf("GpuPool", name), issues);
  return {
    maxima: allKnown && parsed.success ? parsed.data : undefined,
    gpuType: gpuType === UNKNOWN ? undefined : gpuType === undefined ? null : gpuType.toUpperCase(),
  };
}

export class GpuPool extends pulumi.ComponentResource {
  static readonly __pulumiType = "kiln:index:GpuPool";

  /** True for a GpuPool, also one made by another copy of kiln. */
  static override isInstance(obj: unknown): obj is GpuPool {
    return (
      typeof obj === "object" &&
      obj !== null &&
      (obj as { __pulumiType?: unknown }).__pulumiType === GpuPool.__pulumiType
    );
  }

  /** The agent's URL. */
  readonly endpoint: pulumi.Output<string>;
  /** The agent's bearer token (a secret). */
  readonly token: pulumi.Output<string>;
  /** Per-container maxima functions are checked against. */
  readonly maxima: pulumi.Output<Maxima>;
  /** The declared GPU type, upper-cased, or undefined. */
  readonly gpuType: pulumi.Output<string | undefined>;
  /** The target's kind ("local", "endpoint", "kubernetes"). */
  readonly targetKind: GpuPoolTarget["kind"];
  /** For local targets: the state dir the token was looked for in. */
  readonly stateDir: string | undefined;
  /** Maxima and GPU type when every argument was plain at construction (checked at once against functions). */
  readonly knownLimits: ValidatedGpuPool;

  constructor(name: string, args: GpuPoolArgs, opts?: pulumi.ComponentResourceOptions) {
    super(GpuPool.__pulumiType, name, {}, opts);
    this.knownLimits = validateGpuPoolArgs(name, args, kilnEvaluator());
    const target = args.target;
    this.targetKind = target.kind;
    const config = new pulumi.Config("kiln");
    if (target.kind === "local") {
      const stateDir = resolve(
        target.stateDir ??
          config.get("stateDir") ??
          process.env["KILN_STATE_DIR"] ??
          join(homedir(), ".kiln"),
      );
      this.stateDir = stateDir;
      this.endpoint = pulumi.output(
        target.url ?? config.get("url") ?? process.env["KILN_URL"] ?? DEFAULT_LOCAL_URL,
      );
      const token =
        target.token ??
        config.getSecret("token") ??
        process.env["KILN_TOKEN"] ??
        readTokenFile(stateDir);
      this.token = pulumi.secret(token);
    } else if (target.kind === "kubernetes") {
      this.stateDir = undefined;
      const provisioned = provisionKubernetes(this, name, target, args.gpusPerHost ?? 0);
      this.endpoint = provisioned.endpoint;
      this.token = provisioned.token;
    } else {
      this.stateDir = undefined;
      this.endpoint = pulumi.output(target.url);
      this.token = pulumi.secret(target.token);
    }
    const label = labelOf("GpuPool", name);
    const limits = pulumi
      .all([
        args.gpuType,
        args.gpusPerHost,
        args.maxCpu,
        args.maxMemory,
        args.maxEphemeralDisk,
        this.endpoint,
      ])
      .apply(([gpuType, gpusPerHost, maxCpu, maxMemory, maxEphemeralDisk, endpoint]) => {
        // Everything resolved: check again what was unknown at construction.
        const checked = validateGpuPoolArgs(
          name,
          {
            target: { ...target, url: endpoint } as GpuPoolTarget,
            gpuType,
            gpusPerHost,
            maxCpu,
            maxMemory,
            maxEphemeralDisk,
          },
          kilnEvaluator(),
        );
        if (checked.maxima === undefined)
          throw componentError(label, [{ path: "(root)", message: "maxima did not resolve" }]);
        return { maxima: checked.maxima, gpuType: checked.gpuType ?? undefined };
      });
    this.maxima = limits.apply((l) => l.maxima);
    this.gpuType = limits.apply((l) => l.gpuType);
    this.registerOutputs({
      endpoint: this.endpoint,
      token: this.token,
      maxima: this.maxima,
      gpuType: this.gpuType,
    });
  }
}

/** The local agent's token file, or "" when there is none yet (deploying then says how to get one). */
function readTokenFile(stateDir: string): string {
  const path = join(stateDir, "token");
  return existsSync(path) ? readFileSync(path, "utf8").trim() : "";
}

export { TARGET_KINDS };
