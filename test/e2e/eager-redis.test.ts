/**
 * `.remote()` on Redis with a free container on the agent the caller is connected to: the agent
 * starts the input while Redis records it (eager hand-over), so the round trip and the run overlap.
 * What must still hold: the result comes back and is stored under the call; when Redis does not
 * answer in time, the caller is told so (UnavailableError), and a run whose input Redis did record
 * is settled once it answers, not repeated; one whose input Redis never got is dropped.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UnavailableError } from "../../runtime/client/index.js";
import { keys } from "../../runtime/agent/inputs.js";
import { RedisStore } from "../../runtime/store/redis/index.js";
import { redisPresent, startRedisServer, type RedisServer } from "../store/redis-server.js";
import type * as h from "./fixtures/handlers.js";
import { deployFixture, startAgent, type Harness } from "./harness.js";
import { NOT_HUNG_MS, waitFor } from "../support/wait.js";

const suite = redisPresent() ? describe : describe.skip;

suite("eager hand-over on Redis", () => {
  let redis: RedisServer;
  let harness: Harness;
  let dir: string;
  /** The agent's store: says when a warm call would be handed over eagerly. */
  let agentStore: RedisStore;
  /** The eager hand-over applies only while the pool's claimer waits idle on known-empty queues. */
  const eagerReady = (queue: string) =>
    waitFor("the pool's claimer to wait idle, ready for an eager hand-over", () =>
      agentStore.eagerReady(queue),
    );

  beforeAll(async () => {
    redis = await startRedisServer();
    dir = await mkdtemp(join(tmpdir(), "kiln-eager-"));
    // A short command timeout and lease: a frozen Redis fails calls fast, a lapsed claim comes back soon.
    const store = await RedisStore.open({
      url: redis.url,
      prefix: "kiln-eager:",
      commandTimeoutMs: 500,
    });
    agentStore = store;
    harness = await startAgent({ store, leaseMs: 1_500 });
    await deployFixture(harness.kiln);
  });

  afterAll(async () => {
    redis?.resume();
    await harness?.close();
    await redis?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it("a warm .remote() is started before Redis records it; its result is stored under the call", async () => {
    const echo = harness.kiln.function<typeof h.echo>("e2e", "echo");
    expect(await echo.remote("warm")).toBe("warm");
    const spied = await RedisStore.open({ url: redis.url, prefix: "kiln-eager:" });
    try {
      const call = await echo.spawn("not eager: nobody waits");
      expect(await call.get({ timeoutMs: NOT_HUNG_MS })).toBe("not eager: nobody waits");
      for (let i = 0; i < 20; i++) expect(await echo.remote(i)).toBe(i);
      // Every call's record and result are in Redis, as for a queued call.
      const records = await spied.keys("call:");
      expect(records).toHaveLength(22);
      expect((await spied.keys("result:")).map((k) => k.slice("result:".length))).toEqual(
        records.map((k) => k.slice("call:".length)),
      );
    } finally {
      await spied.close();
    }
    const log = (await harness.agent.logs.tail("e2e", "echo", 1_000)).map((l) => l.text).join("");
    expect(log).not.toContain("its outcome is dropped");
  });

  it("Redis frozen mid-call: the caller gets UnavailableError; the run that happened is settled once Redis answers, and not repeated", async () => {
    const flaky = harness.kiln.function<typeof h.flaky>("e2e", "flaky");
    const counter = join(dir, "runs");
    const spied = await RedisStore.open({ url: redis.url, prefix: "kiln-eager:" });
    try {
      const queue = keys.queue("e2e", "flaky");
      expect(await flaky.remote(join(dir, "warm"), 0)).toBe(1);
      // The warm call's settle is sent after its reply: let it land before freezing Redis.
      await waitFor("the warm call to be settled", async () =>
        (await spied.stats(queue)).claimed === 0 ? true : undefined,
      );
      const resultsBefore = (await spied.keys("result:")).length;
      await eagerReady(queue);
      redis.pause();
      const started = Date.now();
      await expect(flaky.remote(counter, 0)).rejects.toBeInstanceOf(UnavailableError);
      expect(Date.now() - started).toBeLessThan(5_000);
      // It ran on the free container while the script waited on the frozen server.
      expect(await readFile(counter, "utf8")).toBe("1");
      redis.resume();
      // The script reached Redis before the freeze and ran after it: the agent finds its claim and
      // settles the run it has, so the input is acknowledged with its result and never runs again.
      await waitFor(
        "the run to be settled",
        async () => {
          const stats = await spied.stats(queue);
          const results = (await spied.keys("result:")).length;
          return stats.pending === 0 && stats.claimed === 0 && results === resultsBefore + 1
            ? true
            : undefined;
        },
        15_000,
      );
      expect(await readFile(counter, "utf8")).toBe("1");
      const log = (await harness.agent.logs.tail("e2e", "flaky", 1_000))
        .map((l) => l.text)
        .join("");
      expect(log).not.toContain("its outcome is dropped");
      expect(await flaky.remote(join(dir, "after"), 0)).toBe(1);
    } finally {
      await spied.close();
    }
  });
  it("Redis loses the step (its connection killed while Redis held writes): the caller gets UnavailableError, that run's outcome is dropped, and nothing is queued", async () => {
    const flaky = harness.kiln.function<typeof h.flaky>("e2e", "flaky");
    const counter = join(dir, "lost");
    const spied = await RedisStore.open({ url: redis.url, prefix: "kiln-eager:" });
    const admin = new Redis(redis.url);
    try {
      const queue = keys.queue("e2e", "flaky");
      expect(await flaky.remote(join(dir, "warm-lost"), 0)).toBe(1);
      await waitFor("the warm call to be settled", async () =>
        (await spied.stats(queue)).claimed === 0 ? true : undefined,
      );
      await eagerReady(queue);
      await admin.client("PAUSE", 10_000, "WRITE");
      const call = flaky.remote(counter, 0).catch((e: unknown) => e);
      // The agent's script waits in Redis (EVALSHA, or EVAL the first time); the run goes on.
      const held = await waitFor("the held script", async () => {
        const line = ((await admin.client("LIST")) as string)
          .split("\n")
          .find((l) => / cmd=eval(sha)? /.test(l));
        return line ? /id=(\d+)/.exec(line)?.[1] : undefined;
      });
      await waitFor("the run", async () =>
        (await readFile(counter, "utf8").catch(() => "")) === "1" ? true : undefined,
      );
      await admin.client("KILL", "ID", held);
      await admin.client("UNPAUSE");
      expect(await call).toBeInstanceOf(UnavailableError);
      const flakyLog = async () =>
        (await harness.agent.logs.tail("e2e", "flaky", 1_000)).map((l) => l.text).join("");
      await waitFor("the outcome to be dropped", async () =>
        (await flakyLog()).includes("its outcome is dropped"),
      ).catch(async (error: unknown) => {
        throw new Error(
          `${(error as Error).message}; the function's log:\n${await flakyLog()}\nqueue: ${JSON.stringify(await spied.stats(queue))}`,
        );
      });
      expect(await spied.stats(queue)).toEqual({ pending: 0, claimed: 0, delayed: 0 });
      expect(await flaky.remote(join(dir, "after-lost"), 0)).toBe(1);
    } finally {
      await admin.client("UNPAUSE").catch(() => undefined);
      admin.disconnect();
      await spied.close();
    }
  });
});
