/**
 * Several agents on one real redis-server (the Redis store): an app deployed through one agent is
 * callable through every agent, placement by what each host has (cores, GPUs), and cluster-wide
 * caps, usage read through any agent. Failures (kill -9, SIGSTOP, a Redis restart) are in cluster-failover.test.ts.
 */
import { describe, expect, it } from "vitest";
import { InvalidError } from "../../runtime/client/index.js";
import { redisPresent } from "../store/redis-server.js";
import { waitFor } from "../support/wait.js";
import type * as h from "./fixtures/handlers.js";
import { useCluster } from "./cluster-harness.js";
import { deployFixture, type ChildAgent } from "./harness.js";

const suite = redisPresent() ? describe : describe.skip;

suite("three agents on one redis-server: routing and placement", () => {
  const { startAgent, client } = useCluster();

  it("an app deployed through one agent is callable through every agent", async () => {
    const [a, b, c] = [await startAgent(), await startAgent(), await startAgent()];
    await deployFixture(await client(a));
    for (const agent of [a, b, c]) {
      const kiln = await client(agent);
      await waitFor("the app to reach this agent", async () =>
        (await kiln.apps()).length === 1 ? true : undefined,
      );
      expect(await kiln.function<typeof h.add>("e2e", "add").remote(20, 22)).toBe(42);
    }
    const status = await (await client(b)).status();
    expect(status.hosts.map((host) => host.url).sort()).toEqual([a.url, b.url, c.url].sort());
  });

  it("a function too big for the agent that takes the deploy runs on a host it fits; one that fits no single host is refused", async () => {
    const small = await startAgent({ KILN_TEST_AGENT_CPU: "1", KILN_GPUS: "A100:2" });
    const big = await startAgent({ KILN_TEST_AGENT_CPU: "4", KILN_GPUS: "none" });
    const kiln = await client(small);
    await waitFor("both hosts advertised", async () =>
      (await kiln.status()).hosts.length === 2 ? true : undefined,
    );
    await deployFixture(kiln, (spec) => {
      (spec["functions"] as Record<string, Record<string, unknown>>)["where"]!["cpu"] = 3;
    });
    const where = kiln.function<typeof h.whereSlept>("e2e", "where");
    const ran = await where.remote(1, "big");
    expect(ran.tag).toBe("big");
    expect(ran.ppid).toBe(big.child.pid);
    // The small host says why it runs none of them.
    const smallWhere = (await kiln.status()).apps[0]?.functions.find((f) => f.name === "where");
    expect(smallWhere?.blocked).toMatch(/too big for this host \(needs 3 cores, it has 1\)/);
    // 3 cores and 2 GPUs: the big host has the cores, the small one the GPUs; neither has both.
    await expect(
      deployFixture(kiln, (spec) => {
        Object.assign((spec["functions"] as Record<string, Record<string, unknown>>)["where"]!, {
          cpu: 3,
          gpu: "A100:2",
        });
      }),
    ).rejects.toThrow(/functions\.where: no single host can run one container of it/);
  });

  it("usage metered on one host is answered by every agent (GET /v1/usage reads the store)", async () => {
    const small = await startAgent({ KILN_TEST_AGENT_CPU: "1" });
    const big = await startAgent({ KILN_TEST_AGENT_CPU: "4" });
    const kiln = await client(small);
    await waitFor("both hosts advertised", async () =>
      (await kiln.status()).hosts.length === 2 ? true : undefined,
    );
    await deployFixture(kiln, (spec) => {
      (spec["functions"] as Record<string, Record<string, unknown>>)["where"]!["cpu"] = 3;
    });
    const ran = await kiln.function<typeof h.whereSlept>("e2e", "where").remote(500, "big");
    expect(ran.ppid).toBe(big.child.pid); // only the big host fits it
    const usage = async (agent: ChildAgent) =>
      (
        await (
          await client(agent)
        ).http.request<{ usage: { fn: string; containerSeconds: number }[] }>("GET", "/v1/usage", {
          query: { app: "e2e", function: "where" },
        })
      ).usage;
    // Through the big host (its read flushes what it metered), then through the small one.
    expect((await usage(big))[0]?.containerSeconds).toBeGreaterThan(0);
    const seen = await usage(small);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.containerSeconds).toBeGreaterThan(0.4);
  });

  it("a GPU type no live host has is refused through any agent, listing each host's GPUs; a type another host has is accepted", async () => {
    const withGpus = await startAgent({ KILN_GPUS: "A100-80GB:2" });
    const without = await startAgent({ KILN_GPUS: "none" });
    const [kilnGpus, kilnPlain] = [await client(withGpus), await client(without)];
    const hosts = await waitFor("both hosts advertised", async () => {
      const seen = (await kilnPlain.status()).hosts;
      return seen.length === 2 ? seen : undefined;
    });
    const idOf = (agent: ChildAgent) => hosts.find((h) => h.url === agent.url)?.id ?? "?";
    const gpu = (value: string | string[]) => (spec: Record<string, unknown>) => {
      (spec["functions"] as Record<string, Record<string, unknown>>)["where"]!["gpu"] = value;
    };
    for (const kiln of [kilnGpus, kilnPlain]) {
      const error = await deployFixture(kiln, gpu("H100:2")).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidError);
      const message = (error as Error).message;
      expect(message).toContain(
        "functions.where.gpu: no live host can give one container 2 x H100",
      );
      expect(message).toContain(`${idOf(withGpus)} 2 x A100-80GB`);
      expect(message).toContain(`${idOf(without)} no GPUs`);
      expect(message).toContain("or add a host with 2 x H100");
    }
    // Through the agent without GPUs: the other host has the fallback's type.
    const accepted = await deployFixture(kilnPlain, gpu(["H100:2", "A100:2"]));
    expect(accepted.app.name).toBe("e2e");
    const where = kilnPlain.function<typeof h.whereSlept>("e2e", "where");
    expect((await where.remote(1, "on-a100")).ppid).toBe(withGpus.child.pid);
  });

  it("maxContainers is a cluster-wide cap under a burst", async () => {
    const [a, b, c] = [await startAgent(), await startAgent(), await startAgent()];
    const kiln = await client(a);
    await deployFixture(kiln);
    await waitFor("every agent to know the app", async () =>
      (await Promise.all([b, c].map(async (x) => (await (await client(x)).apps()).length))).every(
        (n) => n === 1,
      )
        ? true
        : undefined,
    );
    const capped = kiln.function<typeof h.whereSlept>("e2e", "capped");
    const calls = await Promise.all(
      Array.from({ length: 30 }, (_, i) => capped.spawn(100, `c${i}`)),
    );
    let peak = 0;
    const done = Promise.all(calls.map((call) => call.get({ timeoutMs: 60_000 })));
    let finished = false;
    void done.then(() => (finished = true));
    while (!finished) {
      const status = await kiln.status();
      const total = status.hosts.reduce(
        (n, host) => n + (host.functions["e2e.capped"]?.containers ?? 0),
        0,
      );
      peak = Math.max(peak, total);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const results = await done;
    expect(results.map((r) => r.tag).sort()).toEqual(calls.map((_, i) => `c${i}`).sort());
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(2);
    expect(new Set(results.map((r) => r.pid)).size).toBeLessThanOrEqual(2 * 3); // at most 2 live at once; replacements allowed
  });
});
