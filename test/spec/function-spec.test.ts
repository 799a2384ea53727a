import { describe, expect, it } from "vitest";
import {
  compileAppSpec,
  compileFunctionSpec,
  type CompiledFunctionSpec,
} from "../../runtime/spec/index.js";
import { appWith, HANDLER, invalid, issuesOf, linesOf } from "./helpers.js";

const compileF = (fields: Record<string, unknown>): CompiledFunctionSpec => {
  const fn = compileAppSpec(appWith(fields)).functions.f;
  if (fn === undefined) throw new Error("function f missing");
  return fn;
};

describe("function fields out of range", () => {
  // [field, value, message] — each field below and above its range.
  const cases: [string, unknown, string][] = [
    ["cpu", 0, "request 0 must be above 0 cores (allowed >0..64)"],
    ["cpu", -1, "request -1 must be above 0 cores (allowed >0..64)"],
    ["cpu", 65, "request 65 is above the maximum 64 cores (allowed >0..64)"],
    ["memory", 0, "request 0 is below the minimum 1 MiB (allowed 1..1048576)"],
    ["memory", 1_048_577, "request 1048577 is above the maximum 1048576 MiB (allowed 1..1048576)"],
    ["memory", 128.5, "request 128.5 is not a whole number (allowed 1..1048576)"],
    ["ephemeralDisk", 0, "0 is below the minimum 1 MiB (allowed 1..3145728)"],
    ["ephemeralDisk", 3_145_729, "3145729 is above the maximum 3145728 MiB (allowed 1..3145728)"],
    ["minContainers", -1, "-1 is below the minimum 0 (allowed >= 0)"],
    ["minContainers", 1.5, "1.5 is not a whole number (allowed >= 0)"],
    ["maxContainers", 0, "0 is below the minimum 1 (allowed >= 1)"],
    ["bufferContainers", -1, "-1 is below the minimum 0 (allowed >= 0)"],
    ["scaledownWindow", 0, "0 is below the minimum 1 s (allowed 1..86400)"],
    ["scaledownWindow", 86_401, "86401 is above the maximum 86400 s (allowed 1..86400)"],
    ["maxInputs", 0, "0 is below the minimum 1 (allowed 1..1000)"],
    ["maxInputs", 1001, "1001 is above the maximum 1000 (allowed 1..1000)"],
    ["targetInputs", 0, "0 is below the minimum 1 (allowed 1..1000)"],
    ["targetInputs", 2, "2 is above maxInputs 1: it must be at most that"],
    ["retries", -1, "-1 is below the minimum 0 (allowed 0..10)"],
    ["retries", 11, "11 is above the maximum 10 (allowed 0..10)"],
    ["timeout", 0, "0 is below the minimum 1 s (allowed 1..86400)"],
    ["timeout", 86_401, "86401 is above the maximum 86400 s (allowed 1..86400)"],
    ["startupTimeout", 0, "0 is below the minimum 1 s (allowed 1..86400)"],
    ["startupTimeout", 86_401, "86401 is above the maximum 86400 s (allowed 1..86400)"],
  ];
  it.each(cases)("%s = %j", (field, value, message) => {
    expect(linesOf(appWith({ [field]: value }))).toEqual([`functions.f.${field}: ${message}`]);
  });

  const nested: [string, Record<string, unknown>, string, string][] = [
    ["retries", { maxRetries: -1 }, "maxRetries", "-1 is below the minimum 0 (allowed 0..10)"],
    ["retries", { maxRetries: 11 }, "maxRetries", "11 is above the maximum 10 (allowed 0..10)"],
    [
      "retries",
      { maxRetries: 1, backoffCoefficient: 0.5 },
      "backoffCoefficient",
      "0.5 is below the minimum 1 (allowed 1..10)",
    ],
    [
      "retries",
      { maxRetries: 1, backoffCoefficient: 11 },
      "backoffCoefficient",
      "11 is above the maximum 10 (allowed 1..10)",
    ],
    [
      "retries",
      { maxRetries: 1, initialDelayMs: -1 },
      "initialDelayMs",
      "-1 is below the minimum 0 ms (allowed 0..60000)",
    ],
    [
      "retries",
      { maxRetries: 1, initialDelayMs: 60_001 },
      "initialDelayMs",
      "60001 is above the maximum 60000 ms (allowed 0..60000)",
    ],
    [
      "retries",
      { maxRetries: 1, maxDelayMs: 0 },
      "maxDelayMs",
      "0 is below the minimum 1 ms (allowed 1..60000)",
    ],
    [
      "retries",
      { maxRetries: 1, maxDelayMs: 60_001 },
      "maxDelayMs",
      "60001 is above the maximum 60000 ms (allowed 1..60000)",
    ],
    [
      "batched",
      { maxBatchSize: 0, waitMs: 10 },
      "maxBatchSize",
      "0 is below the minimum 1 (allowed 1..1000)",
    ],
    [
      "batched",
      { maxBatchSize: 1001, waitMs: 10 },
      "maxBatchSize",
      "1001 is above the maximum 1000 (allowed 1..1000)",
    ],
    [
      "batched",
      { maxBatchSize: 8, waitMs: -1 },
      "waitMs",
      "-1 is below the minimum 0 ms (allowed 0..600000)",
    ],
    [
      "batched",
      { maxBatchSize: 8, waitMs: 600_001 },
      "waitMs",
      "600001 is above the maximum 600000 ms (allowed 0..600000)",
    ],
  ];
  it.each(nested)("%s = %j", (field, value, key, message) => {
    expect(linesOf(appWith({ [field]: value }))).toEqual([
      `functions.f.${field}.${key}: ${message}`,
    ]);
  });

  it("accepts the bounds themselves", () => {
    const fn = compileF({
      cpu: 64,
      memory: [1, 1_048_576],
      ephemeralDisk: 3_145_728,
      scaledownWindow: 86_400,
      maxInputs: 1000,
      targetInputs: 1000,
      retries: { maxRetries: 10, backoffCoefficient: 10, initialDelayMs: 0, maxDelayMs: 1 },
      batched: { maxBatchSize: 1000, waitMs: 600_000 },
      timeout: 1,
      startupTimeout: 86_400,
    });
    expect(fn.cpu).toEqual({ request: 64, limit: 64 });
    expect(fn.memory).toEqual({ request: 1, limit: 1_048_576 });
    expect(fn.retries).toEqual({
      maxRetries: 10,
      backoffCoefficient: 10,
      initialDelayMs: 0,
      maxDelayMs: 1,
    });
    expect(fn.batched).toEqual({ maxBatchSize: 1000, waitMs: 600_000 });
    expect(fn.startupTimeout).toBe(86_400);
  });

  it("rejects NaN, Infinity and strings for numbers", () => {
    expect(linesOf(appWith({ timeout: "300" }))).toEqual([
      "functions.f.timeout: expected number, got string",
    ]);
    expect(issuesOf(appWith({ timeout: Number.NaN }))[0]?.path).toBe("functions.f.timeout");
    expect(issuesOf(appWith({ maxInputs: Number.POSITIVE_INFINITY }))[0]?.path).toBe(
      "functions.f.maxInputs",
    );
  });
});

describe("unknown fields", () => {
  it("in a function", () => {
    expect(linesOf(appWith({ bogus: 1 }))).toEqual(["functions.f.bogus: unknown field"]);
  });
  it("in retries", () => {
    expect(linesOf(appWith({ retries: { maxRetries: 1, jitter: true } }))).toEqual([
      "functions.f.retries.jitter: unknown field",
    ]);
  });
  it("in batched", () => {
    expect(linesOf(appWith({ batched: { maxBatchSize: 4, waitMs: 10, maxWait: 5 } }))).toEqual([
      "functions.f.batched.maxWait: unknown field",
    ]);
  });
  it("in webEndpoint", () => {
    expect(linesOf(appWith({ webEndpoint: { method: "GET", path: "/x" } }))).toEqual([
      "functions.f.webEndpoint.path: unknown field",
    ]);
  });
  it("quotes odd keys in the path", () => {
    expect(linesOf(appWith({ "a.b": 1 }))).toEqual(['functions.f["a.b"]: unknown field']);
  });
});

describe("cpu and memory", () => {
  it("fills the soft cpu limit as request + 4", () => {
    expect(compileF({ cpu: 2 }).cpu).toEqual({ request: 2, limit: 6 });
    expect(compileF({ cpu: 0.5 }).cpu).toEqual({ request: 0.5, limit: 4.5 });
  });
  it("caps the default cpu limit at the ceiling, never below the request", () => {
    expect(compileF({ cpu: 62 }).cpu).toEqual({ request: 62, limit: 64 });
    expect(compileF({ cpu: 64 }).cpu).toEqual({ request: 64, limit: 64 });
  });
  it("takes [request, limit] tuples", () => {
    expect(compileF({ cpu: [1, 2], memory: [512, 1024] })).toMatchObject({
      cpu: { request: 1, limit: 2 },
      memory: { request: 512, limit: 1024 },
    });
    expect(compileF({ cpu: [1, 1] }).cpu).toEqual({ request: 1, limit: 1 });
    expect(compileF({ memory: [256, null] }).memory).toEqual({ request: 256, limit: null });
    expect(compileF({ memory: 2048 }).memory).toEqual({ request: 2048, limit: null });
  });
  it("rejects a memory limit below the request with the exact message", () => {
    expect(
      linesOf({
        name: "app",
        functions: { embed: { handler: "./model.ts#Model.embed", memory: [128, 64] } },
      }),
    ).toEqual(["functions.embed.memory: limit 64 is below request 128"]);
  });
  it("rejects a cpu limit below the request and above the ceiling", () => {
    expect(linesOf(appWith({ cpu: [2, 1] }))).toEqual([
      "functions.f.cpu: limit 1 is below request 2",
    ]);
    expect(linesOf(appWith({ cpu: [2, 65] }))).toEqual([
      "functions.f.cpu: limit 65 is above the maximum 64 cores (allowed >0..64)",
    ]);
    expect(linesOf(appWith({ memory: [128, 2_000_000] }))).toEqual([
      "functions.f.memory: limit 2000000 is above the maximum 1048576 MiB (allowed 1..1048576)",
    ]);
  });
  it("rejects malformed tuples", () => {
    expect(linesOf(appWith({ cpu: [1, "2"] }))).toEqual([
      "functions.f.cpu[1]: expected number, got string",
    ]);
    expect(issuesOf(appWith({ cpu: [1, 2, 3] }))[0]?.path).toBe("functions.f.cpu");
    expect(linesOf(appWith({ memory: "1Gi" }))).toEqual([
      "functions.f.memory: expected a number of MiB or a [request, limit] pair, got string",
    ]);
  });
});

describe("scaling and inputs", () => {
  it("defaults targetInputs to maxInputs", () => {
    expect(compileF({ maxInputs: 8 })).toMatchObject({ maxInputs: 8, targetInputs: 8 });
    expect(compileF({ maxInputs: 8, targetInputs: 4 })).toMatchObject({
      maxInputs: 8,
      targetInputs: 4,
    });
  });
  it("rejects targetInputs above maxInputs", () => {
    expect(linesOf(appWith({ maxInputs: 4, targetInputs: 5 }))).toEqual([
      "functions.f.targetInputs: 5 is above maxInputs 4: it must be at most that",
    ]);
  });
  it("takes min/max/buffer containers", () => {
    expect(compileF({ minContainers: 1, maxContainers: 3, bufferContainers: 2 })).toMatchObject({
      minContainers: 1,
      maxContainers: 3,
      bufferContainers: 2,
    });
    expect(compileF({ maxContainers: null }).maxContainers).toBeNull();
  });
  it("rejects minContainers above maxContainers", () => {
    expect(linesOf(appWith({ minContainers: 3, maxContainers: 2 }))).toEqual([
      "functions.f.minContainers: 3 is above maxContainers 2: it must be at most that",
    ]);
  });
  it("a negative maxContainers is one error about itself, not a range like 0..-3", () => {
    const lines = linesOf(appWith({ minContainers: 0, maxContainers: -3 }));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^functions\.f\.maxContainers: -3 is below the minimum 1/);
  });
  it("reports cross-field issues alongside type errors", () => {
    const lines = linesOf(appWith({ minContainers: 3, maxContainers: 2, timeout: "x" }));
    expect(lines).toContain("functions.f.timeout: expected number, got string");
    expect(lines).toContain(
      "functions.f.minContainers: 3 is above maxContainers 2: it must be at most that",
    );
  });
  it("defaults startupTimeout to timeout", () => {
    expect(compileF({ timeout: 60 })).toMatchObject({ timeout: 60, startupTimeout: 60 });
    expect(compileF({ timeout: 60, startupTimeout: 600 })).toMatchObject({
      timeout: 60,
      startupTimeout: 600,
    });
  });
});

describe("retries, batching, web endpoint", () => {
  it("normalizes a number of retries to the object form", () => {
    expect(compileF({ retries: 3 }).retries).toEqual({
      maxRetries: 3,
      backoffCoefficient: 2,
      initialDelayMs: 1000,
      maxDelayMs: 60000,
    });
  });
  it("fills defaults of a partial retry policy", () => {
    expect(compileF({ retries: { maxRetries: 2, initialDelayMs: 10 } }).retries).toEqual({
      maxRetries: 2,
      backoffCoefficient: 2,
      initialDelayMs: 10,
      maxDelayMs: 60000,
    });
  });
  it("requires maxRetries in the object form", () => {
    expect(linesOf(appWith({ retries: {} }))).toEqual(["functions.f.retries.maxRetries: required"]);
  });
  it("rejects a retries value of the wrong type", () => {
    expect(linesOf(appWith({ retries: "3" }))).toEqual([
      "functions.f.retries: expected a number of retries or a retry policy object, got string",
    ]);
  });
  it("takes batched and requires both fields", () => {
    expect(compileF({ batched: { maxBatchSize: 32, waitMs: 50 } }).batched).toEqual({
      maxBatchSize: 32,
      waitMs: 50,
    });
    expect(compileF({ batched: null }).batched).toBeNull();
    expect(linesOf(appWith({ batched: { maxBatchSize: 32 } }))).toEqual([
      "functions.f.batched.waitMs: required",
    ]);
  });
  it("takes a web endpoint, private by default", () => {
    expect(compileF({ webEndpoint: { method: "POST" } }).webEndpoint).toEqual({
      method: "POST",
      public: false,
    });
    expect(compileF({ webEndpoint: { method: "GET", public: true } }).webEndpoint).toEqual({
      method: "GET",
      public: true,
    });
    expect(linesOf(appWith({ webEndpoint: { method: "PUT" } }))).toEqual([
      'functions.f.webEndpoint.method: expected one of "GET", "POST", got "PUT"',
    ]);
  });
});

describe("env and secrets", () => {
  it("takes env and secrets", () => {
    const fn = compileF({ env: { LOG_LEVEL: "debug", _X: "1" }, secrets: { API_KEY: "s3cret" } });
    expect(fn.env).toEqual({ LOG_LEVEL: "debug", _X: "1" });
    expect(fn.secrets).toEqual({ API_KEY: "s3cret" });
  });
  it("rejects bad names, KILN_ names and non-string values", () => {
    expect(linesOf(appWith({ env: { "1X": "a", KILN_TOKEN: "b", OK: 3 } }))).toEqual([
      'functions.f.env["1X"]: invalid variable name: use letters, digits and "_", not starting with a digit',
      "functions.f.env.KILN_TOKEN: names starting with KILN_ are reserved for kiln",
      "functions.f.env.OK: expected string, got number",
    ]);
    expect(linesOf(appWith({ secrets: { KILN_X: "s" } }))).toEqual([
      "functions.f.secrets.KILN_X: names starting with KILN_ are reserved for kiln",
    ]);
  });
  it("rejects a name set in both env and secrets", () => {
    expect(linesOf(appWith({ env: { TOKEN: "a" }, secrets: { TOKEN: "b" } }))).toEqual([
      'functions.f.secrets: "TOKEN" is also set in env; set it in one of them',
    ]);
  });
});

describe("compileFunctionSpec", () => {
  it("compiles one function with defaults", () => {
    const fn = compileFunctionSpec("square", { handler: HANDLER, cpu: 1 });
    expect(fn.cpu).toEqual({ request: 1, limit: 5 });
    expect(fn.handler.exportName).toBe("square");
  });
  it("prefixes paths with functions.<name>", () => {
    expect(
      invalid(() => compileFunctionSpec("square", { handler: HANDLER, timeout: 0 })).message,
    ).toBe("functions.square.timeout: 0 is below the minimum 1 s (allowed 1..86400)");
  });
  it("checks the name", () => {
    expect(invalid(() => compileFunctionSpec("not ok", { handler: HANDLER })).message).toMatch(
      /^functions\["not ok"\]: invalid function name/,
    );
  });
});
