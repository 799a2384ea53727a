/**
 * `kiln/spec`: zod schemas, defaults and limits — the single source of truth for what an app is.
 * Components, provider, agent and CLI all validate with `compileAppSpec`.
 */
export * from "./limits.js";
export {
  AppSpecSchema,
  createAppSpecSchema,
  type AppSpecInput,
  type CompiledAppSpec,
} from "./app-spec.js";
export {
  FunctionSpecSchema,
  createFunctionSpecSchema,
  type FunctionSpecInput,
  type CompiledFunctionSpec,
  type CompiledCpu,
  type CompiledMemory,
  type CompiledGpu,
} from "./function-spec.js";
export { DictSpecSchema, type DictSpecInput, type CompiledDictSpec } from "./dict-spec.js";
export { QueueSpecSchema, type QueueSpecInput, type CompiledQueueSpec } from "./queue-spec.js";
export {
  ScheduleSpecSchema,
  PeriodSchema,
  cronProblem,
  timezoneProblem,
  periodSeconds,
  type ScheduleSpecInput,
  type CompiledScheduleSpec,
  type CompiledPeriod,
} from "./schedule-spec.js";
export {
  RetryPolicySchema,
  RetryPolicyObjectSchema,
  retryDelayMs,
  type RetryPolicyInput,
  type CompiledRetryPolicy,
} from "./retries.js";
export { BatchingSchema, type BatchingInput, type CompiledBatching } from "./batching.js";
export {
  WebEndpointSchema,
  type WebEndpointInput,
  type CompiledWebEndpoint,
} from "./web-endpoint.js";
export {
  EnvSchema,
  ENV_NAME_PATTERN,
  RESERVED_ENV_PREFIX,
  type EnvInput,
  type CompiledEnv,
} from "./env.js";
export { HandlerSchema, HANDLER_EXTENSIONS, handlerProblem, type HandlerRef } from "./handler.js";
export { gpuSchema, parseGpuOption, ANY_GPU, type GpuOption } from "./gpu.js";
export { cpuSchema, memorySchema, ephemeralDiskSchema } from "./resources.js";
export {
  MaximaSchema,
  resolveCeilings,
  type Maxima,
  type Ceiling,
  type Ceilings,
} from "./maxima.js";
export {
  AppNameSchema,
  resourceNameSchema,
  APP_NAME_PATTERN,
  RESOURCE_NAME_PATTERN,
} from "./names.js";
export { compileAppSpec, compileFunctionSpec, type CompileOptions } from "./compile.js";
export { redactSpec, REDACTED } from "./redact.js";
export { canonicalJson, specDigest } from "./digest.js";
export { billedMemoryMiB } from "./billing.js";
export { formatPath, invalidSpecError, type SpecIssue } from "./issues.js";
export type { Range } from "./checks.js";
