/**
 * What becomes of a claimed input once a run of it ended: a pure policy, tested without a worker.
 * A run ends in a {@link Verdict} (an outcome, the handler's failure, or a platform failure);
 * {@link decide} turns it into a {@link RetryDecision} the pool carries out: deliver the outcome,
 * retry with backoff at the back of the queue (`retries`), retry at the front (PLATFORM_RETRIES),
 * isolate (a worker that died running several inputs: each goes back uncharged, to run alone), or
 * give up with WorkerCrashed.
 */
import {
  CancelledError,
  FunctionTimeoutError,
  InvalidError,
  RemoteError,
  toWire,
  type KilnError,
} from "../errors.js";
import {
  WorkerExitedError,
  WorkerStartError,
  type BatchOutcome,
  type RunOutcome,
} from "../containers/worker-process.js";
import type { Outcome } from "../protocol.js";
import { PLATFORM_RETRIES, retryDelayMs, type CompiledRetryPolicy } from "../spec/index.js";
import type { InputEnvelope } from "./inputs.js";

/** How one input of a finished run came out. */
export type Verdict =
  /** An outcome to deliver as is (a value, an invalid input, a cancel). */
  | { kind: "outcome"; outcome: Outcome }
  /** The handler's failure: retried under the function's `retries` unless `noRetry`. */
  | { kind: "user-failure"; error: KilnError; noRetry?: boolean }
  /**
   * Outside the handler's control (the worker died): retried up to PLATFORM_RETRIES. `shared`:
   * the worker ran other inputs too when it died, so this one may not be the cause.
   */
  | { kind: "platform-failure"; message: string; shared?: true };

/** What to do with the input's claim. */
export type RetryDecision =
  /** Store and announce the outcome. */
  | { kind: "deliver"; outcome: Outcome }
  /** Back to the end of the queue after `delayMs`, as `next` (one more user attempt). */
  | { kind: "retry"; delayMs: number; next: InputEnvelope }
  /** Back to the front of the queue at once, as `next` (one more platform attempt, for `reason`). */
  | { kind: "platform-retry"; next: InputEnvelope; reason: string }
  /**
   * Its worker died running other inputs too: back to the front at once, uncharged, as `next`
   * (marked `solo`: it runs alone from now on, so a crash it causes is told apart).
   */
  | { kind: "isolate"; next: InputEnvelope; reason: string }
  /** Platform retries ran out: deliver `outcome` (WorkerCrashed) for `next`. */
  | { kind: "give-up"; next: InputEnvelope; outcome: Outcome };

/** A fresh claim: run it, or give up at once when its platform retries are spent. */
export type Admission =
  | { kind: "run"; input: InputEnvelope }
  | { kind: "give-up"; input: InputEnvelope; outcome: Outcome };

/** The verdict of a single input's run. */
export function verdictOfRun(run: RunOutcome, input: InputEnvelope): Verdict {
  if (run.ok) return { kind: "outcome", outcome: { ok: true, value: run.value } };
  if (run.error.invalid)
    return {
      kind: "outcome",
      outcome: errorOutcome(new InvalidError(`${input.fn}: ${run.error.message}`)),
    };
  return { kind: "user-failure", error: new RemoteError(run.error) };
}

/** The verdicts of a batch's `n` inputs: one value each, or the handler's error for all. */
export function verdictsOfBatch(outcome: BatchOutcome, n: number): Verdict[] {
  if (outcome.ok)
    return outcome.values.map((value) => ({ kind: "outcome", outcome: { ok: true, value } }));
  const error = outcome.error;
  return Array.from({ length: n }, () => ({ kind: "user-failure", error: new RemoteError(error) }));
}

/** Why a run ended with no answer from the worker (an OOM kill is classified by the sandbox). */
export interface RunFailure {
  /** The run was cancelled (its worker killed for it). */
  cancelled: boolean;
  /** The run passed the function's timeout (its worker killed for it). */
  timedOut: boolean;
  /** What the run threw: WorkerExitedError, WorkerStartError, or another error. */
  error: unknown;
  /** `<app>.<fn>`, for the timeout's message. */
  fn: string;
  /** The function's `timeout`, in seconds. */
  timeoutS: number;
  /** The run was a batch (one handler call for all its inputs). */
  batch?: boolean;
  /** The sandbox classified the exit as an OOM kill: the error naming the limit. */
  oom?: KilnError;
}

/** The verdict of a run that failed without an answer: cancel, timeout, start failure or crash. */
export function verdictOfFailure(failure: RunFailure): Verdict {
  const { error, timeoutS } = failure;
  if (failure.cancelled)
    return { kind: "outcome", outcome: errorOutcome(new CancelledError("the call was cancelled")) };
  if (failure.timedOut) {
    return {
      kind: "user-failure",
      error: new FunctionTimeoutError(
        `${failure.fn} ran past its timeout of ${timeoutS} s; the worker was killed. ` +
          "Raise 'timeout' in the function spec if it needs longer.",
        { details: { timeoutS } },
      ),
    };
  }
  if (error instanceof WorkerExitedError && error.beside > 0 && !failure.batch) {
    // The worker held other inputs too (maxInputs > 1): any of them may have brought it down (an
    // OOM kill counts the memory of all of them). Not counted against this one: it runs alone.
    const cause = failure.oom?.message ?? error.message;
    return {
      kind: "platform-failure",
      message: `${cause}, while running ${error.beside} other input(s)`,
      shared: true,
    };
  }
  if (failure.oom) return { kind: "user-failure", error: failure.oom };
  if (error instanceof WorkerStartError && error.remote) {
    return {
      kind: "user-failure",
      error: new RemoteError({
        ...error.remote,
        message: `while starting the container: ${error.remote.message}`,
      }),
    };
  }
  return {
    kind: "platform-failure",
    message: error instanceof Error ? error.message : String(error),
  };
}

/**
 * The verdict when the input may not run again (a stream that already yielded: its caller saw
 * part of it): a user failure is final, a platform failure is delivered as WorkerExited.
 */
export function withoutRetry(verdict: Verdict): Verdict {
  if (verdict.kind === "user-failure") return { ...verdict, noRetry: true };
  if (verdict.kind === "platform-failure") {
    return {
      kind: "outcome",
      outcome: errorOutcome(new RemoteError({ name: "WorkerExited", message: verdict.message })),
    };
  }
  return verdict;
}

/** What to do with `input`'s claim after a run that came out as `verdict`. */
export function decide(
  input: InputEnvelope,
  verdict: Verdict,
  retries: CompiledRetryPolicy,
): RetryDecision {
  if (verdict.kind === "outcome") return { kind: "deliver", outcome: verdict.outcome };
  if (verdict.kind === "user-failure") {
    if (!verdict.noRetry && input.attempt < retries.maxRetries) {
      return {
        kind: "retry",
        delayMs: retryDelayMs(retries, input.attempt + 1),
        next: { ...input, attempt: input.attempt + 1 },
      };
    }
    return { kind: "deliver", outcome: errorOutcome(verdict.error) };
  }
  // Once: a solo input runs alone, so a crash it shares again cannot happen; if it did, it counts.
  if (verdict.shared && !input.solo)
    return { kind: "isolate", next: { ...input, solo: true }, reason: verdict.message };
  const next: InputEnvelope = {
    ...input,
    platformAttempt: input.platformAttempt + 1,
    lastPlatformError: verdict.message,
  };
  if (next.platformAttempt > PLATFORM_RETRIES)
    return { kind: "give-up", next, outcome: platformExhausted(next) };
  return { kind: "platform-retry", next, reason: verdict.message };
}

/**
 * A claimed input before it runs. Deliveries that lapsed (the agent running it died) count as
 * platform attempts; deliveries handed back unrun (`returned`), user retries and the one shared
 * crash that made it `solo` do not. When the platform attempts are spent, it is not run again.
 */
export function admit(input: InputEnvelope, deliveries: number): Admission {
  const accountedFor =
    input.attempt + input.platformAttempt + (input.returned ?? 0) + (input.solo ? 1 : 0);
  const lapses = deliveries - accountedFor;
  const counted: InputEnvelope =
    lapses > 0
      ? {
          ...input,
          platformAttempt: input.platformAttempt + lapses,
          lastPlatformError: "the agent running it stopped",
        }
      : input;
  if (counted.platformAttempt > PLATFORM_RETRIES)
    return { kind: "give-up", input: counted, outcome: platformExhausted(counted) };
  return { kind: "run", input: counted };
}

function platformExhausted(input: InputEnvelope): Outcome {
  return errorOutcome(
    new RemoteError({
      name: "WorkerCrashed",
      message:
        `the input failed ${input.platformAttempt} times for reasons outside the handler's control ` +
        `(last: ${input.lastPlatformError ?? "unknown"}). If the handler exits the process or crashes natively, fix that; ` +
        "otherwise check the host.",
    }),
  );
}

function errorOutcome(error: KilnError): Outcome {
  return { ok: false, error: toWire(error) };
}
