/**
 * Several agents on one real redis-server (the Redis store): calls through any agent, work
 * pulled by whichever agent has room, nothing lost or duplicated when an agent dies or freezes,
 * Redis restarts with AOF, and cluster-wide caps.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { connect, InvalidError, UnavailableError, type Kiln } from "../../runtime/client/index.js";
import { reclaimStateDir } from "../../runtime/containers/reclaim.js";
import { registries } from "../../runtime/agent/inputs.js";
import { redisServerBinary, startRedisServer, type RedisServer } from "../store/redis-server.js";
import type * as h from "./fixtures/handlers.js";
import { deployFixture, startChildAgent, waitFor, type ChildAgent } from "./harness.js";

const suite = redisServerBinary() ? describe : describe.skip;
if (!redisServerBinary()) console.warn("cluster tests skipped: redis-server is not installed (apt-get install redis-server)");

const TOKEN = `cluster-test-${Math.random().toString(36).slice(2)}`;
type Where = Awaited<ReturnType<typeof h.whereSlept>>;

/** What a caller does while the store reconnects: retry UnavailableError, with a bound. */
async function retryUnavailable<T>(fn: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (!(error instanceof UnavailableError) || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

suite("three agents on one redis-server", () => {
  let redis: RedisServer;
  const agents: ChildAgent[] = [];
  const dirs: string[] = [];

  async function startAgent(env: Record<string, string> = {}): Promise<ChildAgent> {
    const dir = await mkdtemp(join(tmpdir(), "kiln-cluster-"));
    dirs.push(dir);
    const agent = await startChildAgent(dir, 0, { KILN_REDIS_URL: redis.url, KILN_TOKEN: TOKEN, ...env });
    agents.push(agent);
    return agent;
  }

  async function client(agent: ChildAgent): Promise<Kiln> {
    return connect({ url: agent.url, token: TOKEN });
  }

  beforeAll(async () => {
    redis = await startRedisServer({ appendOnly: true });
  });

  afterEach(async () => {
    for (const agent of agents.splice(0)) {
      agent.child.kill("SIGCONT");
      agent.child.kill("SIGKILL");
      await agent.exited;
    }
    for (const dir of dirs.splice(0)) {
      await reclaimStateDir(dir);
      await rm(dir, { recursive: true, force: true });
    }
    // A clean store for the next test.
    const { RedisStore } = await import("../../runtime/store/redis/index.js");
    const store = await RedisStore.open({ url: redis.url });
    for (const key of await store.keys("")) await store.delete(key);
    // The registries (apps, hosts, schedules, ephemeral objects) are hashes, which `keys` does not list.
    for (const hash of Object.values(registries)) await store.hashDrop(hash);
    await store.close();
  });

  afterAll(async () => redis?.dispose());

  it("an app deployed through one agent is callable through every agent", async () => {
    const [a, b, c] = [await startAgent(), await startAgent(), await startAgent()];
    await deployFixture(await client(a));
    for (const agent of [a, b, c]) {
      const kiln = await client(agent);
      await waitFor("the app to reach this agent", async () => ((await kiln.apps()).length === 1 ? true : undefined));
      expect(await kiln.function<typeof h.add>("e2e", "add").remote(20, 22)).toBe(42);
    }
    const status = await (await client(b)).status();
    expect(status.hosts.map((host) => host.url).sort()).toEqual([a.url, b.url, c.url].sort());
  });

  it("a map of 1,000 inputs survives kill -9 of an agent mid-way: every result, in order, once", async () => {
    // Each agent has room for 4 containers (0.5 cores; the fixture asks 0.125), so no agent can
    // take all 6 of the cluster's: b or c runs some of the map, and the one that does is killed.
    const small = { KILN_TEST_AGENT_CPU: "0.5" };
    const [a, b, c] = [await startAgent(small), await startAgent(small), await startAgent(small)];
    const kiln = await client(a);
    await deployFixture(kiln);
    await waitFor("b and c to know the app", async () =>
      (await Promise.all([b, c].map(async (x) => (await (await client(x)).apps()).length))).every((n) => n === 1) ? true : undefined,
    );
    const where = kiln.function<typeof h.whereSlept>("e2e", "where");
    const inputs = Array.from({ length: 1000 }, (_, i) => [20, `i${i}`] as [number, string]);
    const out: Where[] = [];
    let victim: ChildAgent | null = null;
    const started = Date.now();
    for await (const result of where.starmap(inputs)) {
      out.push(result);
      if (victim === null && out.length >= 150) {
        victim = [b, c].find((x) => out.some((r) => r.ppid === x.child.pid)) ?? null;
        victim?.child.kill("SIGKILL");
      }
    }
    const killed = victim as ChildAgent | null;
    if (killed === null) throw new Error("neither b nor c ran any of the first 150 inputs: nothing was killed mid-way");
    expect(out.map((r) => r.tag)).toEqual(inputs.map(([, tag]) => tag));
    expect(Date.now() - started).toBeLessThan(60_000);
    // The killed agent did part of the work, the others the rest.
    const ran = new Set(out.map((r) => r.ppid));
    expect(ran.has(killed.child.pid ?? -1)).toBe(true);
    expect(ran.size).toBeGreaterThan(1);
  });

  it("a function too big for the agent that takes the deploy runs on a host it fits; one that fits no single host is refused", async () => {
    const small = await startAgent({ KILN_TEST_AGENT_CPU: "1", KILN_GPUS: "A100:2" });
    const big = await startAgent({ KILN_TEST_AGENT_CPU: "4", KILN_GPUS: "none" });
    const kiln = await client(small);
    await waitFor("both hosts advertised", async () => ((await kiln.status()).hosts.length === 2 ? true : undefined));
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
        Object.assign((spec["functions"] as Record<string, Record<string, unknown>>)["where"]!, { cpu: 3, gpu: "A100:2" });
      }),
    ).rejects.toThrow(/functions\.where: no single host can run one container of it/);
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
      expect(message).toContain("functions.where.gpu: no live host can give one container 2 x H100");
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

  it("a spawned call whose agent died completes on another agent", async () => {
    const b = await startAgent();
    const kilnB = await client(b);
    await deployFixture(kilnB);
    const call = await kilnB.function<typeof h.whereSlept>("e2e", "where").spawn(1_500, "orphan");
    await waitFor("the call to run on b", async () => ((await call.status()) === "running" ? true : undefined));
    b.child.kill("SIGKILL");
    await b.exited;
    // The input waits in Redis until an agent with room recovers it.
    const c = await startAgent();
    const kilnC = await client(c);
    const result = await kilnC.functionCall<Where>(call.id).get({ timeoutMs: 30_000 });
    expect(result.tag).toBe("orphan");
    expect((await kilnC.functionCall(call.id).info()).attempts).toBe(2);
  });

  it("an agent frozen past its lease (SIGSTOP) loses the input; after SIGCONT its late result is rejected", async () => {
    const b = await startAgent();
    const kilnB = await client(b);
    await deployFixture(kilnB);
    // Long enough that b is frozen well before its worker finishes (even on a loaded machine).
    const call = await kilnB.function<typeof h.whereSlept>("e2e", "where").spawn(3_000, "fenced");
    await waitFor("the call to run on b", async () => ((await call.status()) === "running" ? true : undefined));
    b.child.kill("SIGSTOP");
    const c = await startAgent();
    const kilnC = await client(c);
    // b's lease (2 s) lapses; c recovers the input and runs it again.
    const first = await kilnC.functionCall<Where>(call.id).get({ timeoutMs: 30_000 });
    expect(first.ppid).toBe(c.child.pid);
    b.child.kill("SIGCONT");
    // b wakes with its own (late) result: it finds its claim gone, and the stored result stands.
    await waitFor(
      "b to notice it lost the input",
      async () => {
        const { lines } = await kilnB.http.request<{ lines: { text: string }[] }>("GET", "/v1/apps/e2e/logs", { query: { function: "where" } });
        return lines.some((l) => /lost the lease|lease lapsed/.test(l.text)) ? true : undefined;
      },
      15_000,
    ).catch(async (error: unknown) => {
      const { lines } = await kilnB.http.request<{ lines: { text: string }[] }>("GET", "/v1/apps/e2e/logs", { query: { function: "where" } });
      throw new Error(`${(error as Error).message}; b's log:\n${lines.map((l) => l.text.trimEnd()).join("\n")}`);
    });
    const again = await kilnC.functionCall<Where>(call.id).get({ timeoutMs: 5_000 });
    expect(again).toEqual(first);
  });

  it("a .remote() waiting on an agent frozen past its lease gets the result of the delivery that holds it, not the frozen agent's late one", async () => {
    const b = await startAgent();
    const kilnB = await client(b);
    await deployFixture(kilnB);
    const whereB = kilnB.function<typeof h.whereSlept>("e2e", "where");
    // The caller waits on b, and b runs the input: b hands outcomes to its own callers in process.
    const pending = whereB.remote(3_000, "remote-fenced");
    const fnOf = async (kiln: Kiln) => (await kiln.status()).apps[0]?.functions.find((f) => f.name === "where");
    // Running in b's (ready) container, so b's worker finishes it while b is frozen.
    await waitFor("the input to run on b", async () =>
      (await fnOf(kilnB))?.containers.some((ct) => ct.state === "ready" && ct.inFlight > 0) ? true : undefined,
    );
    b.child.kill("SIGSTOP");
    const frozenAt = Date.now();
    const c = await startAgent();
    const kilnC = await client(c);
    // b's lease (2 s) lapses and c runs the input again (3 s). b wakes once its own worker (not
    // frozen) has finished, while c still runs it, so b reads its worker's result before anything
    // from Redis: b must see that the claim is no longer surely its own, and neither store nor
    // hand over that result.
    await waitFor(
      "c to run the input, and b's worker to have finished",
      async () =>
        Date.now() - frozenAt > 3_500 && (await fnOf(kilnC))?.containers.some((ct) => ct.state === "ready" && ct.inFlight > 0) ? true : undefined,
      30_000,
    );
    b.child.kill("SIGCONT");
    const result = await pending;
    expect(result.tag).toBe("remote-fenced");
    expect(result.ppid).toBe(c.child.pid);
  });

  it("Redis restarted mid-run with AOF: calls fail fast while it is down, then resume; nothing acknowledged is lost", async () => {
    const [a, b] = [await startAgent(), await startAgent()];
    const kiln = await client(a);
    await deployFixture(kiln);
    const where = kiln.function<typeof h.whereSlept>("e2e", "where");
    const calls = await Promise.all(Array.from({ length: 20 }, (_, i) => where.spawn(300, `r${i}`)));
    await redis.stop();
    const started = Date.now();
    await expect(where.remote(1, "down")).rejects.toBeInstanceOf(UnavailableError);
    expect(Date.now() - started).toBeLessThan(6_000);
    await redis.start();
    const results = await Promise.all(
      calls.map((c) => retryUnavailable(() => kiln.functionCall<Where>(c.id).get({ timeoutMs: 60_000 }))),
    );
    expect(results.map((r) => r.tag)).toEqual(Array.from({ length: 20 }, (_, i) => `r${i}`));
    expect((await where.remote(1, "up")).tag).toBe("up");
    void b;
  });

  it("maxContainers is a cluster-wide cap under a burst", async () => {
    const [a, b, c] = [await startAgent(), await startAgent(), await startAgent()];
    const kiln = await client(a);
    await deployFixture(kiln);
    await waitFor("every agent to know the app", async () =>
      (await Promise.all([b, c].map(async (x) => (await (await client(x)).apps()).length))).every((n) => n === 1) ? true : undefined,
    );
    const capped = kiln.function<typeof h.whereSlept>("e2e", "capped");
    const calls = await Promise.all(Array.from({ length: 30 }, (_, i) => capped.spawn(100, `c${i}`)));
    let peak = 0;
    const done = Promise.all(calls.map((call) => call.get({ timeoutMs: 60_000 })));
    let finished = false;
    void done.then(() => (finished = true));
    while (!finished) {
      const status = await kiln.status();
      const total = status.hosts.reduce((n, host) => n + (host.functions["e2e.capped"]?.containers ?? 0), 0);
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
