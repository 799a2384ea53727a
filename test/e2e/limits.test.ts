/**
 * Every submission limit, enforced by the agent over raw HTTP (so whatever the client), from two
 * processes at once: 429 with ResourceExhaustedError naming the limit, nothing half-accepted.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encode } from "../../runtime/serde.js";
import { deployFixture, fixturesDir, startAgent, type Harness } from "./harness.js";

const run = promisify(execFile);

interface FloodResult {
  statuses: Record<string, number>;
  codes: Record<string, number>;
  messages: string[];
}

async function flood(h: Harness, path: string, count: number, body: unknown): Promise<FloodResult> {
  const { stdout } = await run(
    process.execPath,
    [
      join(fixturesDir, "flood.mjs"),
      h.agent.url,
      h.agent.token,
      path,
      String(count),
      JSON.stringify(body),
    ],
    {
      timeout: 60_000,
    },
  );
  return JSON.parse(stdout) as FloodResult;
}

/** Two processes flood at once; their answers added up. */
async function floodFromTwo(
  h: Harness,
  path: string,
  each: number,
  body: unknown,
): Promise<FloodResult> {
  const [a, b] = await Promise.all([flood(h, path, each, body), flood(h, path, each, body)]);
  const sum = (x: Record<string, number>, y: Record<string, number>) => {
    const out = { ...x };
    for (const [k, v] of Object.entries(y)) out[k] = (out[k] ?? 0) + v;
    return out;
  };
  return {
    statuses: sum(a.statuses, b.statuses),
    codes: sum(a.codes, b.codes),
    messages: [...a.messages, ...b.messages],
  };
}

/** A function whose one container holds one input for a long time: everything else stays pending. */
function holdSpec(spec: Record<string, unknown>): void {
  spec["name"] = "limits";
  (spec["functions"] as Record<string, unknown>)["hold"] = {
    handler: "./handlers.ts#sleep",
    maxContainers: 1,
  };
}

const longSleep = { args: encode([60_000]), waitMs: 0 };

describe("default limits", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startAgent();
    await deployFixture(h.kiln, holdSpec);
  });
  afterAll(async () => h?.close());

  it("2,000 pending inputs per function for .remote/.map: the rest get 429 ResourceExhaustedError", async () => {
    const result = await floodFromTwo(h, "/v1/apps/limits/functions/hold/calls", 1_100, longSleep);
    const status = await h.kiln.status();
    const hold = status.apps[0]?.functions.find((f) => f.name === "hold");
    expect(hold?.queue.pending).toBe(2_000);
    const accepted = result.statuses["200"] ?? 0;
    expect(accepted).toBe(2_000 + (hold?.queue.running ?? 0));
    expect(result.statuses["429"]).toBe(2_200 - accepted);
    expect(result.codes["RESOURCE_EXHAUSTED"]).toBe(2_200 - accepted);
    expect(result.messages[0]).toContain("the limit of 2000");
  });

  it("at most 1,000 inputs in flight per map invocation", async () => {
    const { mapId } = await h.kiln.http.request<{ mapId: string }>(
      "POST",
      "/v1/apps/limits/functions/sleep/maps",
    );
    const items = Array.from({ length: 1000 }, (_, idx) => ({ idx, args: encode([60_000]) }));
    // A different function, so the 2,000-pending cap of `hold` above does not interfere.
    const first = await h.kiln.http.request<{ accepted: number }>(
      "POST",
      `/v1/maps/${mapId}/inputs`,
      { body: { items } },
    );
    expect(first.accepted).toBe(1000);
    const response = await fetch(new URL(`/v1/maps/${mapId}/inputs`, h.agent.url), {
      method: "POST",
      headers: { authorization: `Bearer ${h.agent.token}`, "content-type": "application/json" },
      body: JSON.stringify({ items: [{ idx: 1000, args: encode([1]) }] }),
    });
    expect(response.status).toBe(429);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("RESOURCE_EXHAUSTED");
    expect(body.error.message).toContain("1000 inputs in flight");
  });

  it("malformed arguments over raw HTTP are a 400 naming the field, before anything is queued", async () => {
    const post = (path: string, body: unknown) =>
      fetch(new URL(path, h.agent.url), {
        method: "POST",
        headers: { authorization: `Bearer ${h.agent.token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const before = await h.kiln.status();
    const { mapId } = await h.kiln.http.request<{ mapId: string }>(
      "POST",
      "/v1/apps/limits/functions/echo/maps",
    );
    for (const args of ["[[1],2,3", "{}", encode("not a list")]) {
      for (const [path, body, field] of [
        ["/v1/apps/limits/functions/echo/calls", { args }, "body.args"],
        [`/v1/maps/${mapId}/inputs`, { items: [{ idx: 0, args }] }, "body.items.0.args"],
      ] as const) {
        const response = await post(path, body);
        expect(response.status, `${path} ${args}`).toBe(400);
        const json = (await response.json()) as { error: { code: string; message: string } };
        expect(json.error.code).toBe("INVALID");
        expect(json.error.message.startsWith(`${field}: `), json.error.message).toBe(true);
        expect(json.error.message).toMatch(/is not kiln-encoded arguments|must encode an array/);
      }
    }
    const echo = (s: typeof before) =>
      s.apps.find((a) => a.name === "limits")?.functions.find((f) => f.name === "echo");
    expect(echo(await h.kiln.status())?.queue).toEqual(echo(before)?.queue);
  });

  it("arguments over the 2 MiB inline limit are refused with 413 before anything runs", async () => {
    const big = { args: encode(["x".repeat(2 * 1024 * 1024 + 1)]) };
    const response = await fetch(new URL("/v1/apps/limits/functions/echo/calls", h.agent.url), {
      method: "POST",
      headers: { authorization: `Bearer ${h.agent.token}`, "content-type": "application/json" },
      body: JSON.stringify(big),
    });
    expect(response.status).toBe(413);
    const body = (await response.json()) as { error: { type: string; message: string } };
    expect(body.error.type).toBe("PayloadTooLargeError");
    expect(body.error.message).toContain("2.0 MiB inline limit");
    // The client refuses the same before sending.
    await expect(
      h.kiln.function("limits", "echo").remote("x".repeat(2 * 1024 * 1024 + 1)),
    ).rejects.toMatchObject({
      name: "PayloadTooLargeError",
    });
  });
});

describe("configured limits (same code paths, smaller numbers)", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startAgent({ limits: { maxPending: 1_000, maxTotal: 40, maxSpawnPending: 30 } });
    await deployFixture(h.kiln, holdSpec);
  });
  afterAll(async () => h?.close());

  it("total inputs (pending + running) per function", async () => {
    const result = await floodFromTwo(h, "/v1/apps/limits/functions/hold/calls", 30, longSleep);
    expect(result.statuses["200"]).toBe(40);
    expect(result.statuses["429"]).toBe(20);
    expect(result.messages[0]).toContain("pending or running, the limit of 40");
  });

  it("spawned inputs have their own pending cap", async () => {
    const result = await floodFromTwo(h, "/v1/apps/limits/functions/hold/calls", 25, {
      ...longSleep,
      spawn: true,
    });
    const status = await h.kiln.status();
    const hold = status.apps[0]?.functions.find((f) => f.name === "hold");
    expect(hold?.queue.spawnPending).toBe(30);
    expect(result.statuses["429"]).toBe(50 - (result.statuses["200"] ?? 0));
    expect(result.statuses["200"]).toBeGreaterThanOrEqual(30);
    expect(result.messages[0]).toContain("pending spawned inputs, the limit of 30");
  });
});
