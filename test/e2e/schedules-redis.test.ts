/**
 * Three agents on one redis-server: a schedule fires once per tick whichever agent leads (and
 * after the leader stops), and dicts and queues are shared: a blocked get on one agent is woken by
 * a put on another.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Kiln } from "../../runtime/client/index.js";
import { RedisStore } from "../../runtime/store/redis/index.js";
import { redisPresent, startRedisServer, type RedisServer } from "../store/redis-server.js";
import { DATA_APP, deployData } from "./data-harness.js";
import { startAgent, type Harness } from "./harness.js";
import { waitFor } from "../support/wait.js";

const available = redisPresent();
const suite = available ? describe : describe.skip;

suite("three agents on Redis", () => {
  let server: RedisServer;
  let store: RedisStore;
  const agents: Harness[] = [];

  beforeAll(async () => {
    server = await startRedisServer();
    // Every agent uses the default prefix; one test server per suite keeps them apart from others.
    for (let i = 0; i < 3; i++) agents.push(await startAgent({ redisUrl: server.url }));
    store = await RedisStore.open({ url: server.url });
  });

  afterAll(async () => {
    await store?.close();
    for (const h of agents) await h.close().catch(() => undefined);
    await server?.dispose();
  });

  it("dicts and queues are shared across agents; a blocked get is woken by a put elsewhere", async () => {
    const [a, b, c] = agents.map((h) => h.kiln) as [Kiln, Kiln, Kiln];
    await deployData(a);
    await waitFor("every agent to know the app", async () => {
      for (const k of [b, c])
        if (!(await k.apps()).some((app) => app.name === DATA_APP)) return undefined;
      return true;
    });
    await a.dict(DATA_APP, "cache").put({ shared: true }, "from a");
    expect(await b.dict(DATA_APP, "cache").get({ shared: true })).toBe("from a");
    const partition = `p-${randomUUID()}`;
    const blocked = c.queue<string>(DATA_APP, "jobs").get({ timeoutMs: 10_000, partition });
    await new Promise((r) => setTimeout(r, 200));
    const putAt = Date.now();
    await a.queue<string>(DATA_APP, "jobs").put("hello", { partition });
    expect(await blocked).toBe("hello");
    expect(Date.now() - putAt).toBeLessThan(1000);
  });

  it("a 1 s schedule fires once per tick with three agents, and goes on when the leader stops", async () => {
    const [a] = agents.map((h) => h.kiln) as [Kiln];
    await deployData(a, (spec) => {
      spec["schedules"] = {
        pulse: { function: "recordTick", period: { seconds: 1 }, args: ["pulse"] },
      };
    });
    const prefix = `call:sched:${DATA_APP}:pulse:`;
    const ticks = async () =>
      (await store.keys(prefix)).map((k) => Number(k.slice(prefix.length))).sort((x, y) => x - y);
    await waitFor(
      "four ticks",
      async () => ((await ticks()).length >= 4 ? true : undefined),
      20_000,
    );
    const leaders = agents.filter((h) => h.agent.scheduler.leader);
    expect(leaders).toHaveLength(1);
    await leaders[0]!.close();
    agents.splice(agents.indexOf(leaders[0]!), 1);
    const stoppedAt = (await ticks()).at(-1)!;
    await waitFor(
      "four ticks under the next leader",
      async () => ((await ticks()).filter((t) => t > stoppedAt).length >= 4 ? true : undefined),
      20_000,
    );
    expect(agents.filter((h) => h.agent.scheduler.leader)).toHaveLength(1);
    const all = await ticks();
    expect(new Set(all).size).toBe(all.length);
    // One grid (one anchor), and no tick skipped: the hand-over was within the grace period.
    for (let i = 1; i < all.length; i++) expect(all[i]! - all[i - 1]!).toBe(1000);
    // Each fired tick ran once (no retries in play): one item per run on the ticks queue.
    await waitFor(
      "the runs to finish",
      async () =>
        (await agents[0]!.kiln.queue(DATA_APP, "ticks").len()) >= all.length ? true : undefined,
      20_000,
    );
  });
});
