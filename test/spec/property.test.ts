import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileFunctionSpec, MAX_CPU, MAX_MEMORY_MIB } from "../../runtime/spec/index.js";
import { HANDLER } from "./helpers.js";

describe("resource tuples (property)", () => {
  it("any valid cpu/memory tuple compiles, with limit >= request", () => {
    const cores = fc.double({ min: 0.001, max: MAX_CPU, noNaN: true, noDefaultInfinity: true });
    const cpu = fc
      .tuple(cores, cores)
      .map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as [number, number]);
    const mib = fc.integer({ min: 1, max: MAX_MEMORY_MIB });
    const memory = fc
      .tuple(mib, mib)
      .map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as [number, number]);
    fc.assert(
      fc.property(cpu, memory, (cpuPair, memoryPair) => {
        const fn = compileFunctionSpec("f", { handler: HANDLER, cpu: cpuPair, memory: memoryPair });
        expect(fn.cpu).toEqual({ request: cpuPair[0], limit: cpuPair[1] });
        expect(fn.memory).toEqual({ request: memoryPair[0], limit: memoryPair[1] });
        expect(fn.cpu.limit).toBeGreaterThanOrEqual(fn.cpu.request);
        expect(fn.memory.limit).toBeGreaterThanOrEqual(fn.memory.request);
      }),
      { numRuns: 300 },
    );
  });

  it("any valid single cpu request gets a limit >= request", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.001, max: MAX_CPU, noNaN: true, noDefaultInfinity: true }),
        (request) => {
          const { cpu } = compileFunctionSpec("f", { handler: HANDLER, cpu: request });
          expect(cpu.request).toBe(request);
          expect(cpu.limit).toBeGreaterThanOrEqual(request);
          expect(cpu.limit).toBeLessThanOrEqual(Math.max(request, MAX_CPU));
        },
      ),
      { numRuns: 300 },
    );
  });
});
