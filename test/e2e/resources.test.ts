/**
 * Resource enforcement through a real agent: GPUs handed out exclusively (a fake inventory),
 * waiting for capacity, OOM at the hard memory limit, and the scratch-disk quota.
 * Skips with a printed reason where the kernel refuses cgroups or loop mounts.
 */
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidError, NotFoundError, OutOfMemoryError } from "../../runtime/client/index.js";
import type * as h from "./fixtures/handlers.js";
import { deployFixture, startAgent, type Harness } from "./harness.js";
import { NOT_HUNG_MS, waitFor } from "../support/wait.js";

let harness: Harness;

beforeAll(async () => {
  // Two fake A100s for this agent (read when the agent opens its sandbox host).
  process.env["KILN_GPUS"] = "A100-80GB:2";
  harness = await startAgent();
  delete process.env["KILN_GPUS"];
  await deployFixture(harness.kiln, (spec) => {
    const functions = spec["functions"] as Record<string, unknown>;
    functions["onGpu"] = { handler: "./handlers.ts#gpuHolder", gpu: "A100", maxContainers: 3 };
    functions["otherGpu"] = { handler: "./handlers.ts#gpuHolder", gpu: "A100:2" };
    functions["hog"] = { handler: "./handlers.ts#hog", memory: [64, 160] };
    functions["fill"] = {
      handler: "./handlers.ts#fill",
      memory: [64, 256],
      ephemeralDisk: 1024,
      timeout: 120,
    };
  });
});

afterAll(async () => harness?.close());

const enforced = async () => (await harness.kiln.status()).enforcement;

describe("GPUs", () => {
  it("each container gets its own devices; a third waits for capacity, then runs when one frees", async () => {
    const onGpu = harness.kiln.function<typeof h.gpuHolder>("e2e", "onGpu");
    const calls = await Promise.all([onGpu.spawn(1_500), onGpu.spawn(1_500), onGpu.spawn(10)]);
    const waiting = await waitFor("the third to wait for a GPU", async () => {
      const fn = (await harness.kiln.status()).apps[0]?.functions.find((f) => f.name === "onGpu");
      return fn?.blocked?.includes("waiting for capacity") ? fn.blocked : undefined;
    });
    expect(waiting).toContain("A100");
    const results = await Promise.all(calls.map((c) => c.get({ timeoutMs: NOT_HUNG_MS })));
    const first = results.slice(0, 2).map((r) => r.visible);
    expect(new Set(first).size).toBe(2); // never shared
    for (const r of results) {
      expect(r.visible).toMatch(/^GPU-/);
      expect(r.nvidia).toBe(r.visible);
    }
    // Each device held by at most one container (idle containers keep theirs until they stop).
    const holders = (await enforced()).gpus.devices.map((d) => d.holder).filter((x) => x !== null);
    expect(new Set(holders).size).toBe(holders.length);
  });

  it("idle containers holding GPUs are stopped when another function needs the devices", async () => {
    const onGpu = harness.kiln.function<typeof h.gpuHolder>("e2e", "onGpu");
    const other = harness.kiln.function<typeof h.gpuHolder>("e2e", "otherGpu");
    await onGpu.remote(10); // onGpu keeps idle containers (scaledownWindow 60 s) holding the GPUs
    const result = await other.remote(10);
    expect(result.visible).toMatch(/^GPU-/);
  });

  it("a GPU type this host lacks is refused at deploy (400) naming the field and the host's GPUs; a fallback to a type it has is accepted", async () => {
    const app = "e2e-gpu-types";
    const deploy = (gpu: string | string[]) =>
      deployFixture(harness.kiln, (spec) => {
        spec["name"] = app;
        spec["functions"] = { embed: { handler: "./handlers.ts#gpuHolder", gpu } };
      });
    try {
      const error = await deploy("H100:2").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidError);
      expect((error as InvalidError).status).toBe(400);
      const message = (error as Error).message;
      expect(message).toContain(
        "functions.embed.gpu: no live host can give one container 2 x H100",
      );
      expect(message).toContain(`${harness.agent.id} 2 x A100-80GB`);
      expect(message).toContain(
        'Ask for a GPU type a host has (e.g. "any:2"), or add a host with 2 x H100',
      );
      // Nothing was stored.
      await expect(harness.kiln.http.request("GET", `/v1/apps/${app}`)).rejects.toBeInstanceOf(
        NotFoundError,
      );
      const accepted = await deploy(["H100:2", "A100:2"]);
      expect(accepted.app.name).toBe(app);
      expect((await deploy("A100-80GB:2")).changed).toBe(true);
    } finally {
      await harness.kiln.http.request("DELETE", `/v1/apps/${app}`).catch(() => undefined);
    }
  });
});

describe("memory", () => {
  it("a worker past its hard limit fails with OutOfMemoryError naming the limit, and the next input succeeds", async (ctx) => {
    if ((await enforced()).enforcement === "fallback") ctx.skip();
    const hog = harness.kiln.function<typeof h.hog>("e2e", "hog");
    const error = await hog.remote(400).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutOfMemoryError);
    expect((error as Error).message).toContain("160 MiB");
    expect(await hog.remote(10)).toBe(10);
  });
});

describe("usage", () => {
  it("an app or function never deployed nor metered is a NotFoundError naming what exists", async () => {
    const usage = (query: Record<string, string>) =>
      harness.kiln.http.request<{ usage: unknown[] }>("GET", "/v1/usage", { query });
    await expect(usage({ app: "nosuch" })).rejects.toMatchObject({
      name: "NotFoundError",
      message: expect.stringMatching(/^no app 'nosuch' is deployed or has usage; apps: .*e2e/),
    });
    await expect(usage({ app: "e2e", function: "nosuch" })).rejects.toMatchObject({
      name: "NotFoundError",
      message: expect.stringContaining("its functions: "),
    });
    await expect(usage({ app: "e2e", function: "hog" })).resolves.toHaveProperty("usage");
  });
});

describe("scratch disk", () => {
  it("900 MiB fits in a 1024 MiB quota with a 256 MiB memory limit; writing past it fails with ENOSPC; the dir goes away", async (ctx) => {
    if ((await enforced()).disk.enforcement !== "loop-ext4") ctx.skip();
    const fill = harness.kiln.function<typeof h.fill>("e2e", "fill");
    const ok = await fill.remote(900);
    expect(ok).toMatchObject({ written: 900, error: null });
    const full = await fill.remote(1100);
    expect(full.error).toBe("ENOSPC");
    expect(full.written).toBeLessThan(1024);
    // Stop the app: its containers stop and their scratch dirs are removed.
    await harness.kiln.http.request("DELETE", "/v1/apps/e2e", { query: { graceMs: 1000 } });
    await waitFor("the scratch dir to be removed", () =>
      full.scratch && !existsSync(full.scratch) ? true : undefined,
    );
  });
});
