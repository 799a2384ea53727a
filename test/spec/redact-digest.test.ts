import { describe, expect, it } from "vitest";
import {
  billedMemoryMiB,
  canonicalJson,
  compileAppSpec,
  compileFunctionSpec,
  redactSpec,
  specDigest,
} from "../../runtime/spec/index.js";
import { HANDLER, invalid } from "./helpers.js";

describe("redactSpec", () => {
  const spec = compileAppSpec({
    name: "app",
    functions: {
      f: {
        handler: HANDLER,
        env: { MODE: "prod" },
        secrets: { API_KEY: "s3cret", DB_PASSWORD: "hunter2" },
      },
    },
  });

  it("replaces secret values and keeps their names", () => {
    const redacted = redactSpec(spec);
    expect(redacted.functions.f?.secrets).toEqual({
      API_KEY: "<redacted>",
      DB_PASSWORD: "<redacted>",
    });
    expect(redacted.functions.f?.env).toEqual({ MODE: "prod" });
    expect(JSON.stringify(redacted)).not.toContain("s3cret");
  });

  it("returns a copy and leaves the original alone", () => {
    const redacted = redactSpec(spec);
    expect(redacted).not.toBe(spec);
    expect(spec.functions.f?.secrets.API_KEY).toBe("s3cret");
  });

  it("redacts a single function spec", () => {
    const fn = compileFunctionSpec("f", { handler: HANDLER, secrets: { TOKEN: "t" } });
    expect(redactSpec(fn).secrets).toEqual({ TOKEN: "<redacted>" });
    expect(fn.secrets.TOKEN).toBe("t");
  });
});

describe("canonicalJson and specDigest", () => {
  it("sorts keys at every level", () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}',
    );
  });

  it("follows JSON for undefined and toJSON", () => {
    expect(canonicalJson({ a: undefined, b: [undefined], c: new Date(0) })).toBe(
      '{"b":[null],"c":"1970-01-01T00:00:00.000Z"}',
    );
  });

  it("rejects values with no JSON form", () => {
    expect(invalid(() => canonicalJson({ a: Number.NaN })).message).toContain("(root).a");
    invalid(() => canonicalJson({ a: 1n }));
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    invalid(() => canonicalJson(cyclic));
  });

  it("is stable under key order", () => {
    const a = compileAppSpec({
      name: "app",
      functions: { f: { handler: HANDLER, cpu: 1, memory: 256 }, g: { handler: "./g.ts#g" } },
      dicts: { d: {} },
    });
    const b = compileAppSpec({
      dicts: { d: {} },
      functions: { g: { handler: "./g.ts#g" }, f: { memory: 256, cpu: 1, handler: HANDLER } },
      name: "app",
    });
    expect(specDigest(a)).toBe(specDigest(b));
    expect(specDigest(a)).toMatch(/^[0-9a-f]{64}$/);
  });

  it("changes when the spec changes", () => {
    const a = compileAppSpec({ name: "app", functions: { f: { handler: HANDLER } } });
    const b = compileAppSpec({ name: "app", functions: { f: { handler: HANDLER, maxInputs: 2 } } });
    expect(specDigest(a)).not.toBe(specDigest(b));
  });

  it("equals for an explicit default and an omitted one", () => {
    const a = compileAppSpec({ name: "app", functions: { f: { handler: HANDLER } } });
    const b = compileAppSpec({
      name: "app",
      functions: { f: { handler: HANDLER, timeout: 300, retries: 0, cpu: 0.125 } },
    });
    expect(specDigest(a)).toBe(specDigest(b));
  });
});

describe("billedMemoryMiB", () => {
  it("is the memory request without disk", () => {
    expect(billedMemoryMiB(compileFunctionSpec("f", { handler: HANDLER, memory: 512 }))).toBe(512);
  });
  it("is disk / 20 when that is larger", () => {
    expect(
      billedMemoryMiB(
        compileFunctionSpec("f", { handler: HANDLER, memory: 512, ephemeralDisk: 20_480 }),
      ),
    ).toBe(1024);
    expect(
      billedMemoryMiB(
        compileFunctionSpec("f", { handler: HANDLER, memory: 2048, ephemeralDisk: 20_480 }),
      ),
    ).toBe(2048);
  });
});
