/** The components' pure validation functions (what runs at construction), without an engine. */
import { describe, expect, it } from "vitest";
import { validateAppArgs } from "../../components/app.js";
import { validateDictArgs } from "../../components/distributed-dict.js";
import { validateQueueArgs } from "../../components/distributed-queue.js";
import { validateGpuPoolArgs } from "../../components/gpu-pool.js";
import { validateScheduleArgs } from "../../components/schedule.js";
import { validateFunctionArgs } from "../../components/serverless-function.js";
import { targetKindProblem } from "../../components/targets.js";
import { known, knownFields, UNKNOWN } from "../../components/validate.js";
import * as pulumi from "@pulumi/pulumi";

const issues = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    return {
      message: (error as Error).message,
      issues: (error as { details?: { issues?: unknown } }).details?.issues,
      code: (error as { code?: string }).code,
    };
  }
  throw new Error("expected an error");
};

describe("validateFunctionArgs", () => {
  it("returns the compiled spec, compiled as the agent does (pool maxima only check)", () => {
    const spec = validateFunctionArgs(
      "sq",
      { handler: "./f.ts#sq", cpu: 1 },
      { maxima: { cpu: 2 } },
    );
    expect(spec.cpu).toEqual({ request: 1, limit: 5 });
  });

  it("reports every issue with the argument's path", () => {
    const result = issues(() =>
      validateFunctionArgs("sq", {
        handler: "./f.ts#sq",
        timeout: 0,
        memory: [256, 64],
        minContainers: 3,
        maxContainers: 2,
        bogus: 1,
      }),
    );
    expect(result.code).toBe("INVALID");
    expect(result.issues).toEqual(
      expect.arrayContaining([
        { path: "timeout", message: "0 is below the minimum 1 s (allowed 1..86400)" },
        { path: "memory", message: "limit 64 is below request 256" },
        { path: "minContainers", message: "3 is above maxContainers 2: it must be at most that" },
        { path: "bogus", message: "unknown field" },
      ]),
    );
    expect(result.message.split("\n")[0]).toMatch(/^ServerlessFunction "sq": /);
  });

  it("checks the pool: maxima and the GPU type", () => {
    expect(
      issues(() =>
        validateFunctionArgs(
          "g",
          { handler: "./f.ts#g", gpu: "A100:2" },
          { maxima: { gpusPerContainer: 1 } },
        ),
      ).message,
    ).toContain(
      `ServerlessFunction "g": gpu: "A100:2": count 2 exceeds the pool maximum of 1 GPUs`,
    );
    expect(
      issues(() =>
        validateFunctionArgs(
          "g",
          { handler: "./f.ts#g", gpu: ["A100", "A10G"] },
          { gpuType: "H100" },
        ),
      ).message,
    ).toContain(`does not match the pool's GPU type "H100"`);
    expect(
      validateFunctionArgs("g", { handler: "./f.ts#g", gpu: ["A100", "any"] }, { gpuType: "H100" })
        .gpu?.options,
    ).toHaveLength(2);
  });
});

describe("the other components", () => {
  it("GpuPool: target, GPU inventory and maxima", () => {
    expect(
      validateGpuPoolArgs("p", {
        target: { kind: "local" },
        maxCpu: 4,
        gpusPerHost: 2,
        gpuType: "h100",
      }),
    ).toEqual({ maxima: { cpu: 4, gpusPerContainer: 2 }, gpuType: "H100" });
    expect(
      validateGpuPoolArgs("p", { target: { kind: "local" }, maxCpu: pulumi.output(4) }).maxima,
    ).toBeUndefined();
    const bad = issues(() =>
      validateGpuPoolArgs("p", {
        target: { kind: "endpoint", url: "ftp://x", token: "t", extra: 1 } as never,
        maxMemory: -1,
        gpuType: "A 100",
      }),
    );
    expect(bad.issues).toEqual(
      expect.arrayContaining([
        { path: "target.url", message: `expected an http(s) URL, got "ftp://x"` },
        { path: "target.extra", message: "unknown field" },
        { path: "maxMemory", message: expect.stringContaining("") as string },
        { path: "gpuType", message: `expected a GPU type such as "A100" or "H100", got "A 100"` },
      ]),
    );
  });

  it("targets that provision hosts: the message depends on who evaluates", () => {
    expect(targetKindProblem("local", null)).toBeNull();
    expect(targetKindProblem("ec2", "kiln run")).toMatch(
      /needs the Pulumi engine: run 'pulumi up'.*with 'kiln run', use \{ kind: "endpoint"/,
    );
    expect(targetKindProblem("ec2", null)).toMatch(
      /provisioned by 'pulumi up' and are not implemented yet/,
    );
    expect(targetKindProblem("nomad", null)).toMatch(/unknown target kind "nomad"/);
  });

  it("App, dict, queue, schedule", () => {
    expect(
      issues(() => validateAppArgs("x", { pool: {} as never, name: "Not OK" })).issues,
    ).toEqual([
      { path: "pool", message: "required: a GpuPool" },
      { path: "name", message: expect.stringMatching(/^invalid app name "Not OK"/) as string },
    ]);
    expect(issues(() => validateDictArgs("d", { inactivityExpiryS: 1 })).message).toMatch(
      /DistributedDict "d": inactivityExpiryS: 1 is below the minimum 60 s/,
    );
    expect(issues(() => validateQueueArgs("q", { maxPartitionItems: 9000 })).message).toMatch(
      /DistributedQueue "q": maxPartitionItems: 9000 is above the maximum 5000/,
    );
    expect(
      issues(() => validateScheduleArgs("s", { function: "f", period: { seconds: 0 } })).message,
    ).toMatch(/Schedule "s": period: a period of 0 s is too short/);
    expect(
      issues(() =>
        validateScheduleArgs("s", { function: "f", cron: "0 3 * * *", timezone: "Mars/Olympus" }),
      ).message,
    ).toMatch(/Schedule "s": timezone: unknown time zone "Mars\/Olympus"/);
  });
});

describe("known values", () => {
  it("plain values are known; anything holding an Output or a Promise is not", () => {
    expect(known({ a: [1, { b: "x" }] })).toEqual({ a: [1, { b: "x" }] });
    expect(known({ a: [1, pulumi.output(2)] })).toBe(UNKNOWN);
    expect(known(Promise.resolve(1))).toBe(UNKNOWN);
    expect(
      knownFields(
        { timeout: pulumi.output(3), maxContainers: 2, secrets: { A: pulumi.secret("s"), B: "b" } },
        ["timeout", "maxContainers", "secrets"],
        ["secrets"],
      ),
    ).toEqual({
      maxContainers: 2,
      secrets: { A: "", B: "b" },
    });
  });
});
