import { describe, expect, it } from "vitest";
import { compileAppSpec, compileFunctionSpec, type Maxima } from "../../runtime/spec/index.js";
import { appWith, HANDLER, invalid, linesOf } from "./helpers.js";

const maxima: Maxima = { cpu: 4, memoryMiB: 8192, gpusPerContainer: 2, ephemeralDiskMiB: 50_000 };

describe("pool maxima", () => {
  it("names the pool maximum when a request exceeds it", () => {
    expect(
      linesOf(
        { name: "app", functions: { embed: { handler: "./m.ts#embed", cpu: 8 } } },
        { maxima },
      ),
    ).toEqual(["functions.embed.cpu: request 8 exceeds the pool maximum of 4 cores"]);
    expect(linesOf(appWith({ memory: 9000 }), { maxima })).toEqual([
      "functions.f.memory: request 9000 exceeds the pool maximum of 8192 MiB",
    ]);
    expect(linesOf(appWith({ gpu: "A100:4" }), { maxima })).toEqual([
      'functions.f.gpu: "A100:4": count 4 exceeds the pool maximum of 2 GPUs',
    ]);
    expect(linesOf(appWith({ ephemeralDisk: 60_000 }), { maxima })).toEqual([
      "functions.f.ephemeralDisk: 60000 exceeds the pool maximum of 50000 MiB",
    ]);
  });

  it("rejects explicit limits above the pool maximum", () => {
    expect(linesOf(appWith({ cpu: [1, 8], memory: [1024, 16384] }), { maxima })).toEqual([
      "functions.f.cpu: limit 8 exceeds the pool maximum of 4 cores",
      "functions.f.memory: limit 16384 exceeds the pool maximum of 8192 MiB",
    ]);
  });

  it("accepts requests at the maximum and caps the default cpu limit", () => {
    const fn = compileAppSpec(
      appWith({ cpu: 1, memory: 8192, gpu: "H100:2", ephemeralDisk: 50_000 }),
      { maxima },
    ).functions.f;
    expect(fn?.cpu).toEqual({ request: 1, limit: 4 });
    expect(fn?.memory).toEqual({ request: 8192, limit: null });
    expect(fn?.gpu).toEqual({ options: [{ type: "H100", count: 2 }] });
    expect(compileAppSpec(appWith({}), { maxima }).functions.f?.cpu).toEqual({
      request: 0.125,
      limit: 4,
    });
  });

  it("may raise the cpu and memory ceilings but not the GPU and disk limits", () => {
    const big: Maxima = {
      cpu: 128,
      memoryMiB: 2_097_152,
      gpusPerContainer: 16,
      ephemeralDiskMiB: 10_000_000,
    };
    expect(
      compileAppSpec(appWith({ cpu: 96, memory: 2_000_000 }), { maxima: big }).functions.f?.cpu
        .request,
    ).toBe(96);
    expect(linesOf(appWith({ gpu: "H100:9" }), { maxima: big })).toEqual([
      'functions.f.gpu: "H100:9": count 9 is above the maximum 8 GPUs (allowed 1..8)',
    ]);
    expect(linesOf(appWith({ ephemeralDisk: 3_145_729 }), { maxima: big })[0]).toMatch(
      /above the maximum 3145728 MiB/,
    );
  });

  it("a CPU-only pool refuses any GPU", () => {
    expect(linesOf(appWith({ gpu: "any" }), { maxima: { gpusPerContainer: 0 } })).toEqual([
      'functions.f.gpu: "any": count 1 exceeds the pool maximum of 0 GPUs',
    ]);
  });

  it("applies to compileFunctionSpec", () => {
    expect(
      invalid(() => compileFunctionSpec("embed", { handler: HANDLER, cpu: 8 }, { maxima })).message,
    ).toBe("functions.embed.cpu: request 8 exceeds the pool maximum of 4 cores");
  });

  it("rejects invalid maxima", () => {
    expect(invalid(() => compileAppSpec({ name: "app" }, { maxima: { cpu: -1 } })).message).toMatch(
      /^maxima\.cpu: /,
    );
    expect(
      invalid(() => compileAppSpec({ name: "app" }, { maxima: { disk: 1 } as Maxima })).message,
    ).toBe("maxima.disk: unknown field");
  });
});
