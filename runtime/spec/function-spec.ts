/**
 * FunctionSpec: what one function of an app is (handler, resources, scaling, batching, retries,
 * timeouts, env). `createFunctionSpecSchema(maxima)` checks requests against a pool's maxima too.
 */
import { z } from "zod";
import { BatchingSchema } from "./batching.js";
import { always, bounded, boundedInt, numberAt } from "./checks.js";
import { EnvSchema } from "./env.js";
import { gpuSchema } from "./gpu.js";
import { HandlerSchema } from "./handler.js";
import {
  DEFAULT_BUFFER_CONTAINERS,
  DEFAULT_MAX_INPUTS,
  DEFAULT_MIN_CONTAINERS,
  DEFAULT_SCALEDOWN_WINDOW_S,
  DEFAULT_TIMEOUT_S,
  MAX_INPUTS_PER_CONTAINER,
  MAX_SCALEDOWN_WINDOW_S,
  MAX_TIMEOUT_S,
  MIN_SCALEDOWN_WINDOW_S,
  MIN_TIMEOUT_S,
} from "./limits.js";
import { type Maxima, resolveCeilings } from "./maxima.js";
import { cpuSchema, ephemeralDiskSchema, memorySchema } from "./resources.js";
import { RetryPolicySchema } from "./retries.js";
import { WebEndpointSchema } from "./web-endpoint.js";

const seconds = (min: number, max: number) => bounded({ min, max, integer: true, unit: " s" });

/** The FunctionSpec schema, checking resource requests against `maxima` (kiln's ceilings when absent). */
export function createFunctionSpecSchema(maxima?: Maxima) {
  const ceilings = resolveCeilings(maxima);
  return z
    .strictObject({
      /** `"./file.ts#export"` or `"./file.ts#Class.method"`. */
      handler: HandlerSchema,
      /** Cores, or `[request, limit]`. Default 0.125, soft limit request + 4. */
      cpu: cpuSchema(ceilings.cpu),
      /** MiB, or `[request, limit]` (hard limit). Default 128, no limit. */
      memory: memorySchema(ceilings.memoryMiB),
      /** `"A100:2"`, `"any"`, or a fallback list. Default none. */
      gpu: gpuSchema(ceilings.gpusPerContainer),
      /** MiB, 1..3145728. Default null (the host's default). */
      ephemeralDisk: ephemeralDiskSchema(ceilings.ephemeralDiskMiB),
      /** Containers kept warm. Default 0 (scale to zero). */
      minContainers: boundedInt(0, null).default(DEFAULT_MIN_CONTAINERS),
      /** Cap on containers, or null for none. Default null. */
      maxContainers: boundedInt(1, null)
        .nullish()
        .transform((value) => value ?? null),
      /** Idle containers kept beyond current demand. Default 0. */
      bufferContainers: boundedInt(0, null).default(DEFAULT_BUFFER_CONTAINERS),
      /** Seconds a container stays idle before it is stopped, 1..86400. Default 60. */
      scaledownWindow: seconds(MIN_SCALEDOWN_WINDOW_S, MAX_SCALEDOWN_WINDOW_S).default(
        DEFAULT_SCALEDOWN_WINDOW_S,
      ),
      /** Inputs one container runs at once, 1..1000. Default 1. */
      maxInputs: boundedInt(1, MAX_INPUTS_PER_CONTAINER).default(DEFAULT_MAX_INPUTS),
      /** Inputs per container the autoscaler aims for, 1..maxInputs. Default maxInputs. */
      targetInputs: boundedInt(1, MAX_INPUTS_PER_CONTAINER).optional(),
      /** Dynamic batching, or null. Default null. */
      batched: BatchingSchema,
      /** A number of retries or a policy. Default 0 retries. */
      retries: RetryPolicySchema,
      /** Seconds one attempt may run, 1..86400. Default 300. */
      timeout: seconds(MIN_TIMEOUT_S, MAX_TIMEOUT_S).default(DEFAULT_TIMEOUT_S),
      /** Seconds a container may take to start, 1..86400. Default `timeout`. */
      startupTimeout: seconds(MIN_TIMEOUT_S, MAX_TIMEOUT_S).optional(),
      /** Environment variables. Default {}. */
      env: EnvSchema,
      /** Secret environment variables (redacted by `redactSpec`). Default {}. */
      secrets: EnvSchema,
      /** Serve over HTTP, or null. Default null. */
      webEndpoint: WebEndpointSchema,
    })
    .superRefine(
      (spec, ctx) => {
        const add = (path: string, message: string) =>
          ctx.addIssue({ code: "custom", path: [path], message, input: spec });
        const min = numberAt(spec, "minContainers");
        const max = numberAt(spec, "maxContainers");
        // A maxContainers below 1 is its own error; comparing with it would only confuse.
        if (min !== undefined && max !== undefined && max >= 1 && min > max) {
          add("minContainers", `${min} is above maxContainers ${max}: it must be at most that`);
        }
        const maxInputs = numberAt(spec, "maxInputs") ?? DEFAULT_MAX_INPUTS;
        const target = numberAt(spec, "targetInputs");
        if (target !== undefined && target > maxInputs && maxInputs >= 1) {
          add("targetInputs", `${target} is above maxInputs ${maxInputs}: it must be at most that`);
        }
        const env = typeof spec === "object" && spec !== null ? spec.env : undefined;
        const secrets = typeof spec === "object" && spec !== null ? spec.secrets : undefined;
        if (
          typeof env === "object" &&
          env !== null &&
          typeof secrets === "object" &&
          secrets !== null
        ) {
          for (const name of Object.keys(secrets)) {
            if (Object.hasOwn(env, name))
              add("secrets", `${JSON.stringify(name)} is also set in env; set it in one of them`);
          }
        }
      },
      { when: always },
    )
    .transform(({ targetInputs, startupTimeout, ...spec }) => ({
      handler: spec.handler,
      cpu: spec.cpu,
      memory: spec.memory,
      gpu: spec.gpu,
      ephemeralDisk: spec.ephemeralDisk,
      minContainers: spec.minContainers,
      maxContainers: spec.maxContainers,
      bufferContainers: spec.bufferContainers,
      scaledownWindow: spec.scaledownWindow,
      maxInputs: spec.maxInputs,
      targetInputs: targetInputs ?? spec.maxInputs,
      batched: spec.batched,
      retries: spec.retries,
      timeout: spec.timeout,
      startupTimeout: startupTimeout ?? spec.timeout,
      env: spec.env,
      secrets: spec.secrets,
      webEndpoint: spec.webEndpoint,
    }));
}

/** The FunctionSpec schema with kiln's own ceilings (no pool maxima). */
export const FunctionSpecSchema = createFunctionSpecSchema();

/** What users write for one function. */
export type FunctionSpecInput = z.input<typeof FunctionSpecSchema>;
/** One function with every default filled in. */
export type CompiledFunctionSpec = z.output<typeof FunctionSpecSchema>;
export type CompiledCpu = CompiledFunctionSpec["cpu"];
export type CompiledMemory = CompiledFunctionSpec["memory"];
export type CompiledGpu = CompiledFunctionSpec["gpu"];
