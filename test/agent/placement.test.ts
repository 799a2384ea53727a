/** Deploy-time placement over a cluster: each function must fit, whole, on some live host. */
import { describe, expect, it } from "vitest";
import { compileForCluster, type HostMaxima } from "../../runtime/agent/placement.js";
import { InvalidError } from "../../runtime/errors.js";

const spec = (functions: Record<string, Record<string, unknown>>) => ({
  name: "app",
  functions: Object.fromEntries(Object.entries(functions).map(([name, fn]) => [name, { handler: "./h.ts#f", ...fn }])),
});

const small: HostMaxima = { host: "agent-small", maxima: { cpu: 2, memoryMiB: 4096, gpusPerContainer: 2 } };
const big: HostMaxima = { host: "agent-big", maxima: { cpu: 8, memoryMiB: 32768, gpusPerContainer: 0 } };

describe("compileForCluster", () => {
  it("a spec that fits this host compiles as it would alone", () => {
    const compiled = compileForCluster(spec({ f: { cpu: 1 } }), small, [big]);
    expect(compiled.functions["f"]?.cpu.request).toBe(1);
  });

  it("a function too big for this host is accepted when another host fits it", () => {
    const compiled = compileForCluster(spec({ f: { cpu: 6, memory: 16384 } }), small, [big]);
    expect(compiled.functions["f"]?.cpu.request).toBe(6);
  });

  it("functions may fit different hosts", () => {
    const compiled = compileForCluster(spec({ gpu: { cpu: 1, gpu: "A100:2" }, wide: { cpu: 6 } }), small, [big]);
    expect(Object.keys(compiled.functions).sort()).toEqual(["gpu", "wide"]);
  });

  it("a request no host can give is refused against the largest offer", () => {
    expect(() => compileForCluster(spec({ f: { cpu: 16 } }), small, [big])).toThrow(/functions\.f\.cpu[\s\S]*8/);
  });

  it("a function whose resources fit only on different hosts is refused, naming every host's offer", () => {
    let error: unknown;
    try {
      compileForCluster(spec({ f: { cpu: 6, gpu: "A100:2" } }), small, [big]);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(InvalidError);
    const message = (error as Error).message;
    expect(message).toContain("functions.f: no single host can run one container of it");
    expect(message).toContain("agent-small 2 cores, 4096 MiB, 2 GPUs");
    expect(message).toContain("agent-big 8 cores, 32768 MiB, 0 GPUs");
  });

  it("with no other host, this host's error stands unchanged", () => {
    expect(() => compileForCluster(spec({ f: { cpu: 6 } }), small, [])).toThrow(/functions\.f\.cpu[\s\S]*2/);
  });
});
