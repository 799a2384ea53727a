import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { describeGpuOffers, gpuOffers } from "../../runtime/containers/gpu-offers.js";
import {
  discoverGpus,
  GpuAllocator,
  gpuMatches,
  matchingGpuCount,
  parseFakeGpus,
  parseNvidiaSmi,
  type GpuDevice,
  visibleGpus,
} from "../../runtime/containers/gpus.js";
import { InvalidError } from "../../runtime/errors.js";
import { parseGpuOption } from "../../runtime/spec/index.js";

const range = { min: 1, max: 8, integer: true } as const;
const request = (...texts: string[]) => ({
  options: texts.map((t) => parseGpuOption(t, range) as { type: string; count: number }),
});

const SMI = `0, GPU-0b3c6f1e-1111-2222-3333-444455556666, NVIDIA A100-SXM4-80GB, 81920 MiB, 00000000:07:00.0
1, GPU-1b3c6f1e-1111-2222-3333-444455556666, NVIDIA A100-SXM4-40GB, 40960 MiB, 00000000:0B:00.0

2, GPU-2b3c6f1e-1111-2222-3333-444455556666, NVIDIA H100 80GB HBM3, 81559 MiB, 00000000:48:00.0
`;

describe("inventory", () => {
  it("parses nvidia-smi csv (units or not), skipping blank lines", () => {
    const devices = parseNvidiaSmi(SMI);
    expect(devices.map((d) => [d.index, d.name, d.memoryMiB])).toEqual([
      [0, "NVIDIA A100-SXM4-80GB", 81920],
      [1, "NVIDIA A100-SXM4-40GB", 40960],
      [2, "NVIDIA H100 80GB HBM3", 81559],
    ]);
    expect(devices[0]?.uuid).toBe("GPU-0b3c6f1e-1111-2222-3333-444455556666");
    expect(parseNvidiaSmi("0, GPU-x, Tesla T4, 15360\n")[0]).toMatchObject({
      name: "Tesla T4",
      memoryMiB: 15360,
      pciBusId: null,
    });
    expect(parseNvidiaSmi("garbage\n")).toEqual([]);
  });

  it("KILN_GPUS: TYPE:COUNT list, JSON count map, JSON device list", () => {
    const listed = parseFakeGpus("A100-80GB:2, H100:1");
    expect(listed.map((d) => `${d.index}:${d.name}:${d.memoryMiB}`)).toEqual([
      "0:A100-80GB:81920",
      "1:A100-80GB:81920",
      "2:H100:0",
    ]);
    expect(new Set(listed.map((d) => d.uuid)).size).toBe(3);
    expect(parseFakeGpus('{"L4": 2}').map((d) => d.name)).toEqual(["L4", "L4"]);
    expect(
      parseFakeGpus('[{"name":"NVIDIA H100 80GB HBM3","memoryMiB":81559,"uuid":"GPU-a"}]')[0],
    ).toMatchObject({ uuid: "GPU-a", minor: 0 });
    expect(parseFakeGpus("")).toEqual([]);
    expect(parseFakeGpus("none")).toEqual([]);
    expect(() => parseFakeGpus("A100:x")).toThrow(InvalidError);
    expect(() => parseFakeGpus("[1]")).toThrow(/needs a "name"/);
  });

  it("discovery: KILN_GPUS wins; no nvidia-smi means no GPUs, with a note", async () => {
    expect((await discoverGpus({ env: { KILN_GPUS: "T4:1" } })).devices).toHaveLength(1);
    const missing = Object.assign(new Error("spawn nvidia-smi ENOENT"), { code: "ENOENT" });
    const none = await discoverGpus({ env: {}, runNvidiaSmi: () => Promise.reject(missing) });
    expect(none).toEqual({ devices: [], source: "none", note: "nvidia-smi not found: no GPUs" });
    const real = await discoverGpus({ env: {}, runNvidiaSmi: async () => SMI });
    expect(real.source).toBe("nvidia-smi");
    expect(real.devices.map((d) => d.minor)).toEqual([0, 1, 2]);
  });

  it("NVIDIA_VISIBLE_DEVICES: only the listed GPUs, by index or UUID; all/unset: all; none/void: none", async () => {
    const smi = (value: string | undefined) =>
      discoverGpus({
        env: value === undefined ? {} : { NVIDIA_VISIBLE_DEVICES: value },
        runNvidiaSmi: async () => SMI,
      });
    const indexes = async (value: string | undefined) =>
      (await smi(value)).devices.map((d) => d.index);
    expect(await indexes(undefined)).toEqual([0, 1, 2]);
    expect(await indexes("all")).toEqual([0, 1, 2]);
    expect(await indexes(" ALL ")).toEqual([0, 1, 2]);
    expect(await indexes("2,0")).toEqual([0, 2]);
    expect(await indexes("GPU-1B3C6F1E-1111-2222-3333-444455556666")).toEqual([1]);
    expect(await indexes("0, GPU-2b3c6f1e-1111-2222-3333-444455556666")).toEqual([0, 2]);
    for (const none of ["none", "void", ""]) {
      const inventory = await smi(none);
      expect(inventory.devices).toEqual([]);
      expect(inventory.source).toBe("none");
      expect(inventory.note).toMatch(/gives this agent none of the 3 GPUs nvidia-smi lists/);
    }
    // An entry that matches no device (a MIG slice, a typo) is named, not silently dropped.
    const partly = await smi("1,7,MIG-abc");
    expect(partly.devices.map((d) => d.index)).toEqual([1]);
    expect(partly.note).toBe(
      "NVIDIA_VISIBLE_DEVICES names 7, MIG-abc, which nvidia-smi does not list",
    );
    // The device plugin's volume-mounts strategy: a directory with one entry per device.
    const dir = await mkdtemp(join(tmpdir(), "kiln-nvidia-devices-"));
    try {
      await writeFile(join(dir, "GPU-2b3c6f1e-1111-2222-3333-444455556666"), "");
      expect(await indexes(dir)).toEqual([2]);
      expect(await indexes(join(dir, "missing"))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    // KILN_GPUS describes the devices outright: NVIDIA_VISIBLE_DEVICES does not narrow it.
    expect(
      (await discoverGpus({ env: { KILN_GPUS: "T4:2", NVIDIA_VISIBLE_DEVICES: "void" } })).devices,
    ).toHaveLength(2);
  });

  it("visibleGpus keeps inventory order and never invents a device", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 15 }), { maxLength: 8 }),
        fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 8 }),
        (have, listed) => {
          const devices = have.map((index) => ({ index, uuid: `GPU-${index}` }));
          const { devices: got, unmatched } = visibleGpus(devices, listed.join(","));
          expect(got).toEqual(devices.filter((d) => listed.includes(d.index)));
          expect(unmatched).toEqual(listed.map(String).filter((e) => !have.includes(Number(e))));
        },
      ),
    );
  });
});

describe("type matching: whole case-insensitive tokens, <N>GB also by memory", () => {
  const [a80, a40, h100] = parseNvidiaSmi(SMI) as GpuDevice[] as [GpuDevice, GpuDevice, GpuDevice];
  it.each([
    ["A100", a80, true],
    ["a100", a40, true],
    ["A100-80GB", a80, true],
    ["A100-80GB", a40, false],
    ["A100-40GB", a40, true],
    ["H100", h100, true],
    ["H100-80GB", h100, true],
    ["A10", a80, false],
    ["H100", a80, false],
    ["any", h100, true],
  ])("%s vs %s", (type, device, expected) => {
    expect(gpuMatches(type, device)).toBe(expected);
  });
});

describe("allocator", () => {
  const fake = (text: string) => new GpuAllocator(parseFakeGpus(text));

  it("grants exclusive devices and CUDA/NVIDIA_VISIBLE_DEVICES with their UUIDs", () => {
    const gpus = fake("A100-80GB:2,H100:1");
    const a = gpus.acquire("c1", request("A100:1"));
    const b = gpus.acquire("c2", request("A100"));
    if (!a.ok || !b.ok) throw new Error("expected grants");
    expect(a.devices[0]?.uuid).not.toBe(b.devices[0]?.uuid);
    expect(a.env).toEqual({
      CUDA_VISIBLE_DEVICES: a.devices[0]?.uuid,
      NVIDIA_VISIBLE_DEVICES: a.devices[0]?.uuid,
    });
    const c = gpus.acquire("c3", request("A100"));
    expect(c).toEqual({
      ok: false,
      reason: "capacity",
      message: "waiting for capacity: needs 1 x A100, 0 free",
    });
  });

  it("waits for capacity with the message kiln status shows", () => {
    const gpus = fake("A100:2");
    expect(gpus.acquire("c1", request("A100:1")).ok).toBe(true);
    expect(gpus.check(request("A100:2"))).toBe("waiting for capacity: needs 2 x A100, 1 free");
    expect(gpus.acquire("c2", request("A100:2"))).toMatchObject({ ok: false, reason: "capacity" });
    gpus.release("c1");
    expect(gpus.acquire("c2", request("A100:2")).ok).toBe(true);
  });

  it("the ordered fallback list takes the first option with capacity", () => {
    const gpus = fake("H100:1,A100:4");
    const first = gpus.acquire("c1", request("H100", "A100:2"));
    const second = gpus.acquire("c2", request("H100", "A100:2"));
    expect(first).toMatchObject({ ok: true, option: { type: "H100", count: 1 } });
    expect(second).toMatchObject({ ok: true, option: { type: "A100", count: 2 } });
    expect(gpus.check(request("H100", "A100:4"))).toBe(
      "waiting for capacity: needs 1 x H100, 0 free; or 4 x A100, 2 free",
    );
  });

  it("a request this host can never satisfy says so", () => {
    const gpus = fake("A100:1");
    expect(gpus.acquire("c1", request("A100:2"))).toMatchObject({
      ok: false,
      reason: "unsatisfiable",
      message: expect.stringContaining("host has 1 x A100"),
    });
    expect(new GpuAllocator([]).check(request("any"))).toMatch(
      /no GPUs on this host .* \(host has no GPUs\)/,
    );
  });

  it("releases on crash (release by holder, idempotent) and tells waiters", () => {
    const gpus = fake("T4:1");
    let told = 0;
    const off = gpus.onRelease(() => (told += 1));
    expect(gpus.acquire("crashed", request("T4")).ok).toBe(true);
    expect(gpus.release("crashed")).toHaveLength(1);
    expect(gpus.release("crashed")).toEqual([]);
    expect(told).toBe(1);
    off();
    expect(gpus.acquire("next", request("T4")).ok).toBe(true);
    expect(() => gpus.acquire("next", request("T4"))).toThrow(/already holds/);
  });

  it("'any:8' takes up to eight devices", () => {
    const gpus = fake("A100:4,H100:4");
    const grant = gpus.acquire("c", request("any:8"));
    expect(grant.ok && grant.devices.length).toBe(8);
    expect(gpus.free).toEqual([]);
  });

  it("property: random acquire/release sequences never share a device and keep counts exact", () => {
    const types = ["A100", "H100", "any", "A100-80GB", "L4"];
    const op = fc.oneof(
      fc.record({
        kind: fc.constant("acquire" as const),
        holder: fc.integer({ min: 0, max: 7 }),
        options: fc.array(fc.tuple(fc.constantFrom(...types), fc.integer({ min: 1, max: 4 })), {
          minLength: 1,
          maxLength: 3,
        }),
      }),
      fc.record({ kind: fc.constant("release" as const), holder: fc.integer({ min: 0, max: 7 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const gpus = fake("A100-80GB:3,H100:2,L4:2");
        const model = new Map<string, string[]>();
        for (const o of ops) {
          const holder = `c${o.holder}`;
          if (o.kind === "release") {
            gpus.release(holder);
            model.delete(holder);
            continue;
          }
          if (model.has(holder)) continue;
          const result = gpus.acquire(holder, {
            options: o.options.map(([type, count]) => ({ type, count })),
          });
          const freeBefore = gpus.all.filter((d) => ![...model.values()].flat().includes(d.uuid));
          if (result.ok) {
            expect(result.devices).toHaveLength(result.option.count);
            for (const d of result.devices) {
              expect(gpuMatches(result.option.type, d)).toBe(true);
              expect(freeBefore.map((f) => f.uuid)).toContain(d.uuid);
            }
            // no earlier option had capacity
            for (const [type, count] of o.options) {
              if (type === result.option.type && count === result.option.count) break;
              expect(freeBefore.filter((d) => gpuMatches(type, d)).length).toBeLessThan(count);
            }
            model.set(
              holder,
              result.devices.map((d) => d.uuid),
            );
          } else {
            for (const [type, count] of o.options)
              expect(freeBefore.filter((d) => gpuMatches(type, d)).length).toBeLessThan(count);
          }
          const held = [...model.values()].flat();
          expect(new Set(held).size).toBe(held.length); // never shared
          expect(gpus.free.length).toBe(gpus.all.length - held.length);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("offers (what a host advertises for deploy-time placement)", () => {
  it("groups devices by model and counts the ones of a type by the allocator's matching rule", () => {
    const offers = gpuOffers(parseNvidiaSmi(SMI));
    expect(offers).toEqual([
      { name: "NVIDIA A100-SXM4-80GB", memoryMiB: 81920, count: 1 },
      { name: "NVIDIA A100-SXM4-40GB", memoryMiB: 40960, count: 1 },
      { name: "NVIDIA H100 80GB HBM3", memoryMiB: 81559, count: 1 },
    ]);
    expect(matchingGpuCount("A100", offers)).toBe(2);
    expect(matchingGpuCount("A100-80GB", offers)).toBe(1);
    expect(matchingGpuCount("H100", offers)).toBe(1);
    expect(matchingGpuCount("A10", offers)).toBe(0);
    expect(matchingGpuCount("any", offers)).toBe(3);
    expect(describeGpuOffers(gpuOffers(parseFakeGpus("A100-80GB:2,H100:1")))).toBe(
      "2 x A100-80GB, 1 x H100",
    );
    expect(describeGpuOffers([])).toBe("no GPUs");
  });
});
