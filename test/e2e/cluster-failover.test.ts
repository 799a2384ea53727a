/**
 * Several agents on one real redis-server: nothing lost or duplicated when an agent dies
 * (kill -9) or freezes past its lease (SIGSTOP), and Redis restarted with AOF.
 */
import { describe, expect, it } from "vitest";
import { UnavailableError, type Kiln } from "../../runtime/client/index.js";
import { redisPresent } from "../store/redis-server.js";
import { waitFor } from "../support/wait.js";
import type * as h from "./fixtures/handlers.js";
import { useCluster } from "./cluster-harness.js";
import { deployFixture, type ChildAgent } from "./harness.js";

const suite = redisPresent() ? describe : describe.skip;
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

suite("agents on one redis-server: failures", () => {
  const cluster = useCluster();
  const { startAgent, client } = cluster;

  it("a map of 1,000 inputs survives kill -9 of an agent mid-way: every result, in order, once", async () => {
    // Each agent has room for 4 containers (0.5 cores; the fixture asks 0.125), so no agent can
    // take all 6 of the cluster's: b or c runs some of the map, and the one that does is killed.
    const small = { KILN_TEST_AGENT_CPU: "0.5" };
    const [a, b, c] = [await startAgent(small), await startAgent(small), await startAgent(small)];
    const kiln = await client(a);
    await deployFixture(kiln);
    await waitFor("b and c to know the app", async () =>
      (await Promise.all([b, c].map(async (x) => (await (await client(x)).apps()).length))).every(
        (n) => n === 1,
      )
        ? true
        : undefined,
    );
    const where = kiln.function<typeof h.whereSlept>("e2e", "where");
    const inputs = Array.from({ length: 1000 }, (_, i) => [5, `i${i}`] as [number, string]);
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
    if (killed === null)
      throw new Error(
        "neither b nor c ran any of the first 150 inputs: nothing was killed mid-way",
      );
    expect(out.map((r) => r.tag)).toEqual(inputs.map(([, tag]) => tag));
    // Not hung: a lapsed claim comes back after the 2 s lease; in a full run on 2 cores this map takes up to 45 s.
    expect(Date.now() - started).toBeLessThan(120_000);
    // The killed agent did part of the work, the others the rest.
    const ran = new Set(out.map((r) => r.ppid));
    expect(ran.has(killed.child.pid ?? -1)).toBe(true);
    expect(ran.size).toBeGreaterThan(1);
  });

  it("a spawned call whose agent died completes on another agent", async () => {
    const b = await startAgent();
    const kilnB = await client(b);
    await deployFixture(kilnB);
    const call = await kilnB.function<typeof h.whereSlept>("e2e", "where").spawn(1_500, "orphan");
    await waitFor("the call to run on b", async () =>
      (await call.status()) === "running" ? true : undefined,
    );
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
    await waitFor("the call to run on b", async () =>
      (await call.status()) === "running" ? true : undefined,
    );
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
        const { lines } = await kilnB.http.request<{ lines: { text: string }[] }>(
          "GET",
          "/v1/apps/e2e/logs",
          { query: { function: "where" } },
        );
        return lines.some((l) => /lost the lease|lease lapsed/.test(l.text)) ? true : undefined;
      },
      15_000,
    ).catch(async (error: unknown) => {
      const { lines } = await kilnB.http.request<{ lines: { text: string }[] }>(
        "GET",
        "/v1/apps/e2e/logs",
        { query: { function: "where" } },
      );
      throw new Error(
        `${(error as Error).message}; b's log:\n${lines.map((l) => l.text.trimEnd()).join("\n")}`,
      );
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
    const fnOf = async (kiln: Kiln) =>
      (await kiln.status()).apps[0]?.functions.find((f) => f.name === "where");
    // Running in b's (ready) container, so b's worker finishes it while b is frozen.
    await waitFor("the input to run on b", async () =>
      (await fnOf(kilnB))?.containers.some((ct) => ct.state === "ready" && ct.inFlight > 0)
        ? true
        : undefined,
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
        Date.now() - frozenAt > 3_500 &&
        (await fnOf(kilnC))?.containers.some((ct) => ct.state === "ready" && ct.inFlight > 0)
          ? true
          : undefined,
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
    const calls = await Promise.all(
      Array.from({ length: 20 }, (_, i) => where.spawn(300, `r${i}`)),
    );
    await cluster.redis.stop();
    const started = Date.now();
    await expect(where.remote(1, "down")).rejects.toBeInstanceOf(UnavailableError);
    expect(Date.now() - started).toBeLessThan(6_000);
    await cluster.redis.start();
    const results = await Promise.all(
      calls.map((c) =>
        retryUnavailable(() => kiln.functionCall<Where>(c.id).get({ timeoutMs: 60_000 })),
      ),
    );
    expect(results.map((r) => r.tag)).toEqual(Array.from({ length: 20 }, (_, i) => `r${i}`));
    expect((await where.remote(1, "up")).tag).toBe("up");
    void b;
  });
});
