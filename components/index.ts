/**
 * `kiln`: Pulumi components for declaring apps. Type tokens `kiln:index:<Name>`.
 *
 * ```ts
 * const pool = new GpuPool("local", { target: { kind: "local" } });
 * const app = new App("hello", { pool });
 * const square = new ServerlessFunction("square", { app, handler: "./functions.ts#square", maxContainers: 2 });
 * ```
 */
export {
  GpuPool,
  validateGpuPoolArgs,
  DEFAULT_LOCAL_URL,
  type GpuPoolArgs,
  type ValidatedGpuPool,
} from "./gpu-pool.js";
export {
  TARGET_KINDS,
  targetKindProblem,
  type GpuPoolTarget,
  type LocalTarget,
  type EndpointTarget,
  type TargetKind,
} from "./targets.js";
export { App, validateAppArgs, type AppArgs } from "./app.js";
export {
  ServerlessFunction,
  validateFunctionArgs,
  FUNCTION_SPEC_FIELDS,
  type ServerlessFunctionArgs,
  type FunctionPoolLimits,
} from "./serverless-function.js";
export { DistributedDict, validateDictArgs, type DistributedDictArgs } from "./distributed-dict.js";
export {
  DistributedQueue,
  validateQueueArgs,
  type DistributedQueueArgs,
} from "./distributed-queue.js";
export {
  Schedule,
  validateScheduleArgs,
  type ScheduleArgs,
  type SchedulePeriod,
} from "./schedule.js";
export { AppDeployment, type AppDeploymentArgs } from "../provider/app-deployment.js";
export { declaredApps, clearDeclaredApps } from "./registry.js";
export { defaultProgramRoot } from "./program-root.js";
export { setProgramContext, kilnEvaluator } from "./program-context.js";
export type { RunContext, RunEntry } from "./run-context.js";
