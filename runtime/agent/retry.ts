/** Backoff between user retries: initialDelayMs x backoffCoefficient^attempt, capped at maxDelayMs. */
export interface RetryPolicy {
  maxRetries: number;
  backoffCoefficient: number;
  initialDelayMs: number;
  maxDelayMs: number;
}

export function backoffDelayMs(policy: RetryPolicy, attempt: number): number {
  return Math.min(policy.maxDelayMs, Math.round(policy.initialDelayMs * policy.backoffCoefficient ** attempt));
}
