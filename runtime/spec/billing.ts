/** What a function is billed for, beyond its reservation. */
import type { CompiledFunctionSpec } from "./function-spec.js";
import { EPHEMERAL_DISK_BILLING_RATIO } from "./limits.js";

/** Memory billed in MiB: max(memory request, ephemeral disk / 20). No disk → the request. */
export function billedMemoryMiB(
  fn: Pick<CompiledFunctionSpec, "memory" | "ephemeralDisk">,
): number {
  if (fn.ephemeralDisk === null) return fn.memory.request;
  return Math.max(fn.memory.request, fn.ephemeralDisk / EPHEMERAL_DISK_BILLING_RATIO);
}
