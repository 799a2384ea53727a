/** The retry policy of a pool: every way a run comes out, and what becomes of the input's claim. */
import { describe, expect, it } from "vitest";
import { FunctionTimeoutError, OutOfMemoryError, RemoteError } from "../../runtime/errors.js";
import { WorkerExitedError, WorkerStartError } from "../../runtime/containers/worker-process.js";
import type { InputEnvelope } from "../../runtime/agent/inputs.js";
import {
  admit,
  decide,
  verdictOfFailure,
  verdictOfRun,
  verdictsOfBatch,
  withoutRetry,
  type Verdict,
} from "../../runtime/agent/retry-policy.js";
import { PLATFORM_RETRIES, type CompiledRetryPolicy } from "../../runtime/spec/index.js";

const input: InputEnvelope = {
  id: "c-1",
  kind: "call",
  app: "app",
  fn: "f",
  args: "[]",
  attempt: 0,
  platformAttempt: 0,
  createdAt: 0,
};

const retries = (maxRetries: number): CompiledRetryPolicy => ({
  maxRetries,
  backoffCoefficient: 2,
  initialDelayMs: 1_000,
  maxDelayMs: 60_000,
});

const failure = { cancelled: false, timedOut: false, fn: "app.f", timeoutS: 5 };
const userFailure: Verdict = {
  kind: "user-failure",
  error: new RemoteError({ name: "Error", message: "boom" }),
};
const crash: Verdict = { kind: "platform-failure", message: "worker exited unexpectedly" };

describe("verdicts", () => {
  it("a value is an outcome to deliver", () => {
    expect(verdictOfRun({ ok: true, value: "v" }, input)).toEqual({
      kind: "outcome",
      outcome: { ok: true, value: "v" },
    });
  });

  it("an invalid input is delivered as InvalidError, never retried", () => {
    const verdict = verdictOfRun(
      { ok: false, error: { name: "Error", message: "bad args", invalid: true } },
      input,
    );
    expect(verdict.kind).toBe("outcome");
    if (verdict.kind !== "outcome" || verdict.outcome.ok) throw new Error("expected an error");
    expect(verdict.outcome.error.code).toBe("INVALID");
    expect(verdict.outcome.error.message).toBe("f: bad args");
  });

  it("a handler's throw is a user failure (RemoteError)", () => {
    const verdict = verdictOfRun({ ok: false, error: { name: "TypeError", message: "x" } }, input);
    expect(verdict.kind).toBe("user-failure");
    if (verdict.kind !== "user-failure") return;
    expect(verdict.error).toBeInstanceOf(RemoteError);
    expect(verdict.noRetry).toBeUndefined();
  });

  it("a batch: one outcome per value, or the handler's error for each input", () => {
    expect(verdictsOfBatch({ ok: true, values: ["a", "b"] }, 2)).toEqual([
      { kind: "outcome", outcome: { ok: true, value: "a" } },
      { kind: "outcome", outcome: { ok: true, value: "b" } },
    ]);
    const failed = verdictsOfBatch({ ok: false, error: { name: "Error", message: "m" } }, 3);
    expect(failed.map((v) => v.kind)).toEqual(["user-failure", "user-failure", "user-failure"]);
  });

  it("cancel: delivered as CancelledError", () => {
    const verdict = verdictOfFailure({ ...failure, cancelled: true, error: new Error("killed") });
    expect(verdict.kind).toBe("outcome");
    if (verdict.kind !== "outcome" || verdict.outcome.ok) throw new Error("expected an error");
    expect(verdict.outcome.error.code).toBe("CANCELLED");
  });

  it("timeout: a user failure (FunctionTimeoutError, naming the limit)", () => {
    const verdict = verdictOfFailure({ ...failure, timedOut: true, error: new Error("killed") });
    expect(verdict.kind).toBe("user-failure");
    if (verdict.kind !== "user-failure") return;
    expect(verdict.error).toBeInstanceOf(FunctionTimeoutError);
    expect(verdict.error.message).toContain("app.f ran past its timeout of 5 s");
    expect(verdict.error.details).toEqual({ timeoutS: 5 });
  });

  it("a start failure with the handler's error is a user failure", () => {
    const error = new WorkerStartError("enter() threw", { name: "Error", message: "no config" });
    const verdict = verdictOfFailure({ ...failure, error });
    expect(verdict.kind).toBe("user-failure");
    if (verdict.kind !== "user-failure") return;
    expect(verdict.error.message).toBe("Error: while starting the container: no config");
  });

  it("a start failure without one, or a crash, is a platform failure", () => {
    expect(
      verdictOfFailure({ ...failure, error: new WorkerStartError("startup timeout", null) }),
    ).toEqual({ kind: "platform-failure", message: "startup timeout" });
    const exited = new WorkerExitedError({ code: 1, signal: null, killedFor: null });
    expect(verdictOfFailure({ ...failure, error: exited })).toEqual({
      kind: "platform-failure",
      message: "worker exited unexpectedly (code 1)",
    });
    expect(verdictOfFailure({ ...failure, error: "odd" })).toEqual({
      kind: "platform-failure",
      message: "odd",
    });
  });

  it("a crash while the worker ran other inputs too is a shared platform failure, naming them", () => {
    const exited = new WorkerExitedError({ code: 3, signal: null, killedFor: null }, 3);
    expect(verdictOfFailure({ ...failure, error: exited })).toEqual({
      kind: "platform-failure",
      message: "worker exited unexpectedly (code 3), while running 3 other input(s)",
      shared: true,
    });
    // An OOM kill counts the memory of every input the worker ran: shared too, the limit named.
    const oom = new OutOfMemoryError("over 128 MiB");
    expect(verdictOfFailure({ ...failure, error: exited, oom })).toEqual({
      kind: "platform-failure",
      message: "over 128 MiB, while running 3 other input(s)",
      shared: true,
    });
    // Alone, an OOM kill is the handler's failure.
    const alone = new WorkerExitedError({ code: null, signal: "SIGKILL", killedFor: null });
    expect(verdictOfFailure({ ...failure, error: alone, oom })).toEqual({
      kind: "user-failure",
      error: oom,
    });
  });

  it("not shared: a batch (one handler call), and the work the worker was killed for", () => {
    const exited = new WorkerExitedError({ code: 3, signal: null, killedFor: null }, 2);
    expect(verdictOfFailure({ ...failure, batch: true, error: exited })).toEqual({
      kind: "platform-failure",
      message: "worker exited unexpectedly (code 3)",
    });
    const killed = new WorkerExitedError({ code: null, signal: null, killedFor: "timeout" }, 2);
    expect(verdictOfFailure({ ...failure, timedOut: true, error: killed }).kind).toBe(
      "user-failure",
    );
    expect(verdictOfFailure({ ...failure, cancelled: true, error: killed }).kind).toBe("outcome");
    // Its neighbours, killed with it, are not at fault: shared.
    expect(verdictOfFailure({ ...failure, error: killed })).toMatchObject({ shared: true });
  });

  it("withoutRetry (a stream that yielded): user failures are final, crashes are WorkerExited", () => {
    expect(withoutRetry(userFailure)).toEqual({ ...userFailure, noRetry: true });
    const crashed = withoutRetry(crash);
    expect(crashed.kind).toBe("outcome");
    if (crashed.kind !== "outcome" || crashed.outcome.ok) throw new Error("expected an error");
    expect(crashed.outcome.error.remote).toEqual({
      name: "WorkerExited",
      message: "worker exited unexpectedly",
    });
    const value: Verdict = { kind: "outcome", outcome: { ok: true, value: "v" } };
    expect(withoutRetry(value)).toBe(value);
  });
});

describe("decide", () => {
  it("an outcome is delivered", () => {
    const outcome = { ok: true as const, value: "v" };
    expect(decide(input, { kind: "outcome", outcome }, retries(3))).toEqual({
      kind: "deliver",
      outcome,
    });
  });

  it("a user failure with retries left: retried at the back after the backoff", () => {
    expect(decide(input, userFailure, retries(3))).toEqual({
      kind: "retry",
      delayMs: 1_000,
      next: { ...input, attempt: 1 },
    });
    expect(decide({ ...input, attempt: 2 }, userFailure, retries(3))).toEqual({
      kind: "retry",
      delayMs: 4_000,
      next: { ...input, attempt: 3 },
    });
  });

  it("a user failure with no retries left: its error is delivered", () => {
    for (const [attempt, max] of [
      [0, 0],
      [3, 3],
    ] as const) {
      const decision = decide({ ...input, attempt }, userFailure, retries(max));
      expect(decision.kind).toBe("deliver");
      if (decision.kind !== "deliver" || decision.outcome.ok) throw new Error("expected an error");
      expect(decision.outcome.error.code).toBe("REMOTE_ERROR");
      expect(decision.outcome.error.remote?.message).toBe("boom");
    }
  });

  it("noRetry (after a batch's or stream's failure) delivers at once, retries or not", () => {
    const decision = decide(input, withoutRetry(userFailure), retries(5));
    expect(decision.kind).toBe("deliver");
  });

  it("a timeout is a user failure: retried under `retries`", () => {
    const timeout = verdictOfFailure({ ...failure, timedOut: true, error: null });
    expect(decide(input, timeout, retries(1)).kind).toBe("retry");
    const last = decide({ ...input, attempt: 1 }, timeout, retries(1));
    if (last.kind !== "deliver" || last.outcome.ok) throw new Error("expected an error");
    expect(last.outcome.error.code).toBe("FUNCTION_TIMEOUT");
  });

  it("a cancel is delivered, never retried", () => {
    const cancelled = verdictOfFailure({ ...failure, cancelled: true, error: null });
    expect(decide(input, cancelled, retries(5)).kind).toBe("deliver");
  });

  it("platform failures: retried at the front up to PLATFORM_RETRIES, apart from user retries", () => {
    let current = { ...input, attempt: 2 };
    for (let n = 1; n <= PLATFORM_RETRIES; n++) {
      const decision = decide(current, crash, retries(0));
      expect(decision).toEqual({
        kind: "platform-retry",
        reason: crash.message,
        next: { ...current, platformAttempt: n, lastPlatformError: crash.message },
      });
      if (decision.kind !== "platform-retry") return;
      current = decision.next;
    }
    const last = decide(current, crash, retries(0));
    expect(last.kind).toBe("give-up");
    if (last.kind !== "give-up" || last.outcome.ok) throw new Error("expected an error");
    expect(last.next.platformAttempt).toBe(PLATFORM_RETRIES + 1);
    expect(last.outcome.error.remote?.name).toBe("WorkerCrashed");
    expect(last.outcome.error.remote?.message).toContain(
      `failed ${PLATFORM_RETRIES + 1} times for reasons outside the handler's control (last: ${crash.message})`,
    );
  });
});

describe("decide: isolating the culprit of a shared crash", () => {
  const shared: Verdict = {
    kind: "platform-failure",
    message: "worker exited unexpectedly (code 3), while running 3 other input(s)",
    shared: true,
  };

  it("a shared crash is not charged: the input goes back to the front marked solo", () => {
    const seen = { ...input, attempt: 1, platformAttempt: 1 };
    expect(decide(seen, shared, retries(0))).toEqual({
      kind: "isolate",
      reason: shared.message,
      next: { ...seen, solo: true },
    });
  });

  it("only once: a solo input's crashes are charged, shared or not, up to PLATFORM_RETRIES", () => {
    // The crasher: one shared crash, then every crash alone counts; it gives up as before.
    const first = decide(input, shared, retries(0));
    if (first.kind !== "isolate") throw new Error("expected isolate");
    let current = first.next;
    for (let n = 1; n <= PLATFORM_RETRIES; n++) {
      const decision = decide(current, n % 2 === 0 ? shared : crash, retries(0));
      if (decision.kind !== "platform-retry") throw new Error(`expected a platform retry (${n})`);
      expect(decision.next.platformAttempt).toBe(n);
      expect(decision.next.solo).toBe(true);
      current = decision.next;
    }
    const last = decide(current, crash, retries(0));
    expect(last.kind).toBe("give-up");
    if (last.kind !== "give-up" || last.outcome.ok) throw new Error("expected an error");
    expect(last.outcome.error.remote?.message).toContain(`failed ${PLATFORM_RETRIES + 1} times`);
  });

  it("a solo input that succeeds or fails in its handler is delivered or retried as any other", () => {
    const solo = { ...input, solo: true as const };
    const value: Verdict = { kind: "outcome", outcome: { ok: true, value: "v" } };
    expect(decide(solo, value, retries(0))).toEqual({ kind: "deliver", outcome: value.outcome });
    const retried = decide(solo, userFailure, retries(1));
    expect(retried).toMatchObject({ kind: "retry", next: { solo: true, attempt: 1 } });
  });
});

describe("admit", () => {
  it("a first delivery runs as is", () => {
    expect(admit(input, 0)).toEqual({ kind: "run", input });
  });

  it("deliveries accounted for (user retries, platform retries, hand-backs) are no lapses", () => {
    const seen = { ...input, attempt: 1, platformAttempt: 1, returned: 2 };
    expect(admit(seen, 4)).toEqual({ kind: "run", input: seen });
  });

  it("lapsed deliveries count as platform attempts", () => {
    const admission = admit({ ...input, attempt: 1, returned: 1 }, 4);
    expect(admission).toEqual({
      kind: "run",
      input: {
        ...input,
        attempt: 1,
        returned: 1,
        platformAttempt: 2,
        lastPlatformError: "the agent running it stopped",
      },
    });
  });

  it("the shared crash that made an input solo is no lapse; any further uncounted delivery is", () => {
    const solo = { ...input, attempt: 1, platformAttempt: 1, solo: true as const };
    expect(admit(solo, 3)).toEqual({ kind: "run", input: solo });
    const admission = admit(solo, 4);
    expect(admission).toMatchObject({ kind: "run", input: { platformAttempt: 2 } });
  });

  it("past PLATFORM_RETRIES it is not run: it gives up with WorkerCrashed", () => {
    const admission = admit(input, PLATFORM_RETRIES + 1);
    expect(admission.kind).toBe("give-up");
    if (admission.kind !== "give-up" || admission.outcome.ok) throw new Error("expected an error");
    expect(admission.input.platformAttempt).toBe(PLATFORM_RETRIES + 1);
    expect(admission.outcome.error.remote?.name).toBe("WorkerCrashed");
    expect(admission.outcome.error.remote?.message).toContain("the agent running it stopped");
    expect(admit({ ...input, platformAttempt: PLATFORM_RETRIES }, PLATFORM_RETRIES).kind).toBe(
      "run",
    );
  });
});
