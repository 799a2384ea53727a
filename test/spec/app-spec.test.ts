import { describe, expect, it } from "vitest";
import { InvalidError } from "../../runtime/errors.js";
import {
  type AppSpecInput,
  type CompiledAppSpec,
  compileAppSpec,
} from "../../runtime/spec/index.js";
import { invalid, issuesOf, linesOf } from "./helpers.js";

describe("compileAppSpec", () => {
  it("compiles the minimal app with every default filled in", () => {
    const input: AppSpecInput = {
      name: "hello",
      functions: { square: { handler: "./functions.ts#square" } },
    };
    const expected: CompiledAppSpec = {
      name: "hello",
      functions: {
        square: {
          handler: {
            ref: "./functions.ts#square",
            file: "./functions.ts",
            exportName: "square",
            method: null,
          },
          cpu: { request: 0.125, limit: 4.125 },
          memory: { request: 128, limit: null },
          gpu: null,
          ephemeralDisk: null,
          minContainers: 0,
          maxContainers: null,
          bufferContainers: 0,
          scaledownWindow: 60,
          maxInputs: 1,
          targetInputs: 1,
          batched: null,
          retries: {
            maxRetries: 0,
            backoffCoefficient: 2,
            initialDelayMs: 1000,
            maxDelayMs: 60000,
          },
          timeout: 300,
          startupTimeout: 300,
          env: {},
          secrets: {},
          webEndpoint: null,
        },
      },
      dicts: {},
      queues: {},
      schedules: {},
    };
    expect(compileAppSpec(input)).toEqual(expected);
  });

  it("compiles an app with nothing but a name", () => {
    expect(compileAppSpec({ name: "empty" })).toEqual({
      name: "empty",
      functions: {},
      dicts: {},
      queues: {},
      schedules: {},
    });
  });

  it("does not share default objects between compilations", () => {
    const a = compileAppSpec({ name: "a", functions: { f: { handler: "./f.ts#f" } } });
    const b = compileAppSpec({ name: "b", functions: { f: { handler: "./f.ts#f" } } });
    expect(a.functions.f?.env).not.toBe(b.functions.f?.env);
    expect(compileAppSpec({ name: "c" }).functions).not.toBe(
      compileAppSpec({ name: "d" }).functions,
    );
  });

  it("does not modify its input", () => {
    const input = {
      name: "hello",
      functions: { square: { handler: "./functions.ts#square", cpu: [1, 2] } },
    };
    const copy = structuredClone(input);
    compileAppSpec(input);
    expect(input).toEqual(copy);
  });

  it("rejects a non-object input", () => {
    for (const input of [null, undefined, 42, "app", []]) {
      expect(invalid(() => compileAppSpec(input)).message).toMatch(
        /^\(root\): (expected object|required)/,
      );
    }
  });

  it("rejects unknown fields at the top level", () => {
    expect(linesOf({ name: "app", bogus: 1 })).toEqual(["bogus: unknown field"]);
  });

  it("requires a name", () => {
    expect(linesOf({})).toEqual(["name: required"]);
  });

  it.each(["hello", "a", "my-app-2", "0day", "a".repeat(63)])("accepts the app name %j", (name) => {
    expect(compileAppSpec({ name }).name).toBe(name);
  });

  it.each(["", "Hello", "-app", "my_app", "my app", "a".repeat(64)])(
    "rejects the app name %j",
    (name) => {
      const [issue] = issuesOf({ name });
      expect(issue?.path).toBe("name");
      expect(issue?.message).toMatch(
        /invalid app name .*1-63 lowercase letters, digits and dashes/,
      );
    },
  );

  it.each(["square", "_private", "Embed_v2", "with-dash", "a".repeat(64)])(
    "accepts the function name %j",
    (name) => {
      expect(
        Object.keys(
          compileAppSpec({ name: "app", functions: { [name]: { handler: "./f.ts#f" } } }).functions,
        ),
      ).toEqual([name]);
    },
  );

  it.each(["2fast", "-x", "has space", "dot.name", "a".repeat(65)])(
    "rejects the function name %j",
    (name) => {
      const [issue] = issuesOf({ name: "app", functions: { [name]: { handler: "./f.ts#f" } } });
      expect(issue?.path).toContain("functions");
      expect(issue?.path).toContain(name);
      expect(issue?.message).toMatch(/^invalid function name: /);
    },
  );

  it("checks dict, queue and schedule names too", () => {
    const issues = issuesOf({
      name: "app",
      functions: { f: { handler: "./f.ts#f" } },
      dicts: { "1d": {} },
      queues: { "q q": {} },
      schedules: { "s!": { function: "f", cron: "* * * * *" } },
    });
    expect(issues.map((issue) => issue.path)).toEqual([
      'dicts["1d"]',
      'queues["q q"]',
      'schedules["s!"]',
    ]);
    expect(issues.map((issue) => issue.message.split(":")[0])).toEqual([
      "invalid dict name",
      "invalid queue name",
      "invalid schedule name",
    ]);
  });

  it("reports every issue, one per line, path first, with details.issues", () => {
    const error = invalid(() =>
      compileAppSpec({
        name: "Bad",
        functions: {
          square: { handler: "./functions.ts#square", timeout: 0, bogus: true },
          embed: { handler: "./model.ts#Model.embed", memory: [128, 64] },
        },
      }),
    );
    expect(error).toBeInstanceOf(InvalidError);
    expect(error.code).toBe("INVALID");
    expect(error.status).toBe(400);
    const lines = error.message.split("\n");
    expect(lines).toHaveLength(4);
    expect(lines).toContain(
      "functions.square.timeout: 0 is below the minimum 1 s (allowed 1..86400)",
    );
    expect(lines).toContain("functions.square.bogus: unknown field");
    expect(lines).toContain("functions.embed.memory: limit 64 is below request 128");
    expect(lines.some((line) => line.startsWith("name: invalid app name"))).toBe(true);
    const issues = error.details.issues as { path: string; message: string }[];
    expect(issues.map((issue) => `${issue.path}: ${issue.message}`)).toEqual(lines);
  });

  it("reports a wrong type with what was expected", () => {
    expect(linesOf({ name: "app", functions: { f: { handler: 42 } } })).toEqual([
      "functions.f.handler: expected string, got number",
    ]);
    expect(linesOf({ name: "app", functions: [] })).toEqual([
      "functions: expected object, got array",
    ]);
    expect(linesOf({ name: "app", functions: { f: {} } })).toEqual([
      "functions.f.handler: required",
    ]);
  });
});
