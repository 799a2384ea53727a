/**
 * User retry policy: a number of retries, or the full policy. Always compiled to the object form.
 * Platform failures (a worker or host died) are retried apart from these (`PLATFORM_RETRIES`).
 */
import { z } from "zod";
import { bounded, boundedInt, rangeProblem } from "./checks.js";
import {
  DEFAULT_BACKOFF_COEFFICIENT,
  DEFAULT_INITIAL_DELAY_MS,
  DEFAULT_MAX_DELAY_MS,
  DEFAULT_RETRIES,
  MAX_BACKOFF_COEFFICIENT,
  MAX_INITIAL_DELAY_MS,
  MAX_MAX_DELAY_MS,
  MAX_RETRIES,
  MIN_BACKOFF_COEFFICIENT,
  MIN_MAX_DELAY_MS,
} from "./limits.js";

const retriesRange = { min: 0, max: MAX_RETRIES, integer: true } as const;

export const RetryPolicyObjectSchema = z.strictObject({
  /** Retries after the first attempt, 0..10. */
  maxRetries: boundedInt(retriesRange.min, retriesRange.max),
  /** Each delay is the previous one times this, 1..10. Default 2. */
  backoffCoefficient: bounded({
    min: MIN_BACKOFF_COEFFICIENT,
    max: MAX_BACKOFF_COEFFICIENT,
  }).default(DEFAULT_BACKOFF_COEFFICIENT),
  /** Delay before the first retry in ms, 0..60000. Default 1000. */
  initialDelayMs: boundedInt(0, MAX_INITIAL_DELAY_MS, " ms").default(DEFAULT_INITIAL_DELAY_MS),
  /** Upper bound of any delay in ms, 1..60000. Default 60000. */
  maxDelayMs: boundedInt(MIN_MAX_DELAY_MS, MAX_MAX_DELAY_MS, " ms").default(DEFAULT_MAX_DELAY_MS),
});

export const RetryPolicySchema = z
  .union([z.number(), RetryPolicyObjectSchema], {
    error: "expected a number of retries or a retry policy object",
  })
  .optional()
  .superRefine((value, ctx) => {
    if (typeof value !== "number") return;
    const problem = rangeProblem(value, retriesRange);
    if (problem !== null) ctx.addIssue({ code: "custom", input: value, message: problem });
  })
  .transform((value) =>
    typeof value === "object"
      ? value
      : {
          maxRetries: value ?? DEFAULT_RETRIES,
          backoffCoefficient: DEFAULT_BACKOFF_COEFFICIENT,
          initialDelayMs: DEFAULT_INITIAL_DELAY_MS,
          maxDelayMs: DEFAULT_MAX_DELAY_MS,
        },
  );

export type RetryPolicyInput = z.input<typeof RetryPolicySchema>;
export type CompiledRetryPolicy = z.output<typeof RetryPolicySchema>;

/** The delay before retry number `retry` (1-based): initial × coefficient^(retry-1), capped. */
export function retryDelayMs(policy: CompiledRetryPolicy, retry: number): number {
  const delay = policy.initialDelayMs * policy.backoffCoefficient ** Math.max(0, retry - 1);
  return Math.min(delay, policy.maxDelayMs);
}
