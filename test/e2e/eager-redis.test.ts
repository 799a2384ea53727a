/**
 * `.remote()` on Redis with a free container on the agent the caller is connected to: the agent
 * starts the input while Redis records it (eager hand-over), so the round trip and the run overlap.
 * What must still hold: the result comes back and is stored under the call; when Redis cannot
 * record the input, the caller is told so (UnavailableError) and that run's outcome is dropped; an
 * input Redis did record is not lost.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UnavailableError } from "../../runtime/client/index.js";
import { RedisStore } from "../../runtime/store/redis/index.js";
import { redisServerBinary, startRedisServer, type RedisServer } from "../store/redis-server.js";
import type * as h from "./fixtures/handlers.js";
import { deployFixture, startAgent, waitFor, type Harness } from "./harness.js";

const suite = redisServerBinary() ? describe : describe.skip;

suite("eager hand-over on Redis", () => {
  let redis: RedisServer;
  let harness: Harness;
  let dir: string;

  beforeAll(async () => {
    redis = await startRedisServer();
    dir = await mkdtemp(join(tmpdir(), "kiln-eager-"));
    // A short command timeout and lease: a frozen Redis fails calls fast, a lapsed claim comes back soon.
    const store = await RedisStore.open({ url: redis.url, prefix: "kiln-eager:", commandTimeoutMs: 500 });
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
      expect(await call.get({ timeoutMs: 10_000 })).toBe("not eager: nobody waits");
      for (let i = 0; i < 20; i++) expect(await echo.remote(i)).toBe(i);
      // Every call's record and result are in Redis, as for a queued call.
      const records = await spied.keys("call:");
      expect(records).toHaveLength(22);
      expect((await spied.keys("result:")).map((k) => k.slice("result:".length))).toEqual(records.map((k) => k.slice("call:".length)));
    } finally {
      await spied.close();
    }
    const log = (await harness.agent.logs.tail("e2e", "echo", 1_000)).map((l) => l.text).join("");
    expect(log).not.toContain("its outcome is dropped");
  });

  it("Redis frozen mid-call: the caller gets UnavailableError, that run's outcome is dropped, and the input Redis recorded runs again", async () => {
    const flaky = harness.kiln.function<typeof h.flaky>("e2e", "flaky");
    const counter = join(dir, "runs");
    expect(await flaky.remote(join(dir, "warm"), 0)).toBe(1);
    redis.pause();
    const started = Date.now();
    await expect(flaky.remote(counter, 0)).rejects.toBeInstanceOf(UnavailableError);
    expect(Date.now() - started).toBeLessThan(5_000);
    // It ran on the free container while the script waited on the frozen server.
    expect(await readFile(counter, "utf8")).toBe("1");
    redis.resume();
    // The script reached Redis before the freeze and ran after it: the claim nobody renews lapses,
    // and the input runs again (at least once), with nobody waiting for it.
    await waitFor("the recorded input to run again", async () => ((await readFile(counter, "utf8")) === "2" ? true : undefined), 15_000);
    const log = (await harness.agent.logs.tail("e2e", "flaky", 1_000)).map((l) => l.text).join("");
    expect(log).toContain("the store could not");
    expect(log).toContain("its outcome is dropped");
    expect(await flaky.remote(join(dir, "after"), 0)).toBe(1);
  });
});
