/** Deploy-time placement over a cluster: each function must fit, whole, on some live host. */
import { describe, expect, it } from "vitest";
import { compileForCluster, type HostMaxima } from "../../runtime/agent/placement.js";
import { InvalidError } from "../../runtime/errors.js";

const spec = (functions: Record<string, Record<string, unknown>>) => ({
  name: "app",
  functions: Object.fromEntries(
    Object.entries(functions).map(([name, fn]) => [name, { handler: "./h.ts#f", ...fn }]),
  ),
});

const small: HostMaxima = {
  host: "agent-small",
  maxima: { cpu: 2, memoryMiB: 4096, gpusPerContainer: 2 },
};
const big: HostMaxima = {
  host: "agent-big",
  maxima: { cpu: 8, memoryMiB: 32768, gpusPerContainer: 0 },
};

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
    const compiled = compileForCluster(
      spec({ gpu: { cpu: 1, gpu: "A100:2" }, wide: { cpu: 6 } }),
      small,
      [big],
    );
    expect(Object.keys(compiled.functions).sort()).toEqual(["gpu", "wide"]);
  });

  it("a request no host can give is refused against the largest offer", () => {
    expect(() => compileForCluster(spec({ f: { cpu: 16 } }), small, [big])).toThrow(
      /functions\.f\.cpu[\s\S]*8/,
    );
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
    expect(() => compileForCluster(spec({ f: { cpu: 6 } }), small, [])).toThrow(
      /functions\.f\.cpu[\s\S]*2/,
    );
  });

  describe("GPU types", () => {
    const a100: HostMaxima = {
      ...small,
      host: "agent-a100",
      gpus: [{ name: "A100-80GB", memoryMiB: 81920, count: 2 }],
    };
    const mixed: HostMaxima = {
      host: "agent-mixed",
      maxima: { cpu: 8, memoryMiB: 32768, gpusPerContainer: 4 },
      gpus: [
        { name: "NVIDIA H100 80GB HBM3", memoryMiB: 81559, count: 1 },
        { name: "NVIDIA L4", memoryMiB: 23034, count: 3 },
      ],
    };
    const cpuOnly: HostMaxima = { ...big, host: "agent-cpu", gpus: [] };

    const refusal = (run: () => unknown): InvalidError => {
      try {
        run();
      } catch (error) {
        if (error instanceof InvalidError) return error;
        throw error;
      }
      throw new Error("expected an InvalidError, the spec compiled");
    };

    it("a type no live host has is refused on a single host, naming the field, the ask, the host's GPUs and what to do", () => {
      const error = refusal(() => compileForCluster(spec({ embed: { gpu: "H100:2" } }), a100, []));
      expect(error.message).toContain(
        "functions.embed.gpu: no live host can give one container 2 x H100",
      );
      expect(error.message).toContain("agent-a100 2 x A100-80GB");
      expect(error.message).toContain(
        'Ask for a GPU type a host has (e.g. "any:2"), or add a host with 2 x H100',
      );
    });

    it("a type no live host has is refused across hosts, listing every host's GPUs", () => {
      const error = refusal(() =>
        compileForCluster(spec({ embed: { gpu: ["H200:2", "A10:1"] } }), a100, [mixed, cpuOnly]),
      );
      expect(error.message).toContain(
        "functions.embed.gpu: no live host can give one container 2 x H200 or 1 x A10",
      );
      expect(error.message).toContain(
        "agent-a100 2 x A100-80GB; agent-mixed 1 x NVIDIA H100 80GB HBM3, 3 x NVIDIA L4; agent-cpu no GPUs",
      );
      expect(error.message).toContain("add a host with one of them");
    });

    it("a type a host has, but too few of it for one container, is refused", () => {
      const error = refusal(() => compileForCluster(spec({ f: { gpu: "H100:2" } }), mixed, [a100]));
      expect(error.message).toContain(
        "functions.f.gpu: no live host can give one container 2 x H100",
      );
    });

    it("a type this host has compiles; names match by token and by memory, as the allocator does", () => {
      for (const gpu of ["A100:2", "A100-80GB", "a100"]) {
        expect(
          compileForCluster(spec({ f: { gpu } }), a100, []).functions["f"]?.gpu?.options[0]?.type,
        ).toBe(gpu.split(":")[0]!.toUpperCase());
      }
      expect(
        compileForCluster(spec({ f: { gpu: "H100-80GB" } }), mixed, []).functions["f"]?.gpu,
      ).not.toBeNull();
      expect(() => compileForCluster(spec({ f: { gpu: "A100-40GB" } }), a100, [])).toThrow(
        /functions\.f\.gpu: no live host/,
      );
      expect(() => compileForCluster(spec({ f: { gpu: "A10" } }), a100, [])).toThrow(
        /functions\.f\.gpu: no live host/,
      );
    });

    it("a fallback list is accepted when any entry fits some host", () => {
      const compiled = compileForCluster(spec({ f: { gpu: ["H100:2", "A100:2"] } }), mixed, [a100]);
      expect(compiled.functions["f"]?.gpu?.options.map((o) => o.type)).toEqual(["H100", "A100"]);
    });

    it('"any:N" is accepted when some host has N GPUs, refused when none has', () => {
      expect(
        compileForCluster(spec({ f: { gpu: "any:2" } }), a100, [cpuOnly]).functions["f"]?.gpu,
      ).not.toBeNull();
      expect(
        compileForCluster(spec({ f: { gpu: "any:3" } }), mixed, []).functions["f"]?.gpu,
      ).not.toBeNull();
      // Past every host's GPU count: the count check names the maximum, as before.
      expect(() => compileForCluster(spec({ f: { gpu: "any:3" } }), a100, [cpuOnly])).toThrow(
        /functions\.f\.gpu: "any:3": count 3 exceeds the pool maximum of 2 GPUs/,
      );
      // A host configured for more GPUs per container than it has: the inventory decides.
      const roomy: HostMaxima = {
        host: "agent-roomy",
        maxima: { gpusPerContainer: 4 },
        gpus: a100.gpus!,
      };
      const error = refusal(() =>
        compileForCluster(spec({ f: { gpu: "any:3" } }), roomy, [cpuOnly]),
      );
      expect(error.message).toContain(
        "functions.f.gpu: no live host can give one container 3 x any",
      );
      expect(error.message).toContain('(e.g. "any:2")');
    });

    it("a type on another host than this one is accepted (its work goes there)", () => {
      expect(
        compileForCluster(spec({ f: { gpu: "L4:3" } }), a100, [mixed]).functions["f"]?.gpu
          ?.options[0],
      ).toEqual({ type: "L4", count: 3 });
    });

    it("the type on one host and the cores on another is no single host", () => {
      const error = refusal(() =>
        compileForCluster(spec({ f: { cpu: 6, gpu: "A100:2" } }), a100, [mixed]),
      );
      expect(error.message).toContain("functions.f: no single host can run one container of it");
      expect(error.message).toContain("agent-a100 2 cores, 4096 MiB, 2 GPUs (2 x A100-80GB)");
    });

    it("a host that does not advertise its GPUs is not checked for types", () => {
      expect(
        compileForCluster(spec({ f: { gpu: "H100:2" } }), small, []).functions["f"]?.gpu,
      ).not.toBeNull();
    });

    it("a function without a GPU is not checked against GPU types", () => {
      expect(
        compileForCluster(spec({ f: { cpu: 1 } }), cpuOnly, [a100]).functions["f"]?.gpu,
      ).toBeNull();
    });
  });
});
