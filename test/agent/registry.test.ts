/**
 * The agents' registries (apps, hosts, schedules, ephemeral objects kept in store hashes), against
 * the embedded store and a real redis-server: entries, overwrite, TTL expiry, the bounded listing,
 * the migration of the old layout (plain keys) at agent start, and, on Redis, that listing a
 * registry never scans the keyspace.
 */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { registries, scheduleField } from "../../runtime/agent/inputs.js";
import { LAYOUT_KEY, Registry, migrateLegacyKeys } from "../../runtime/agent/registry.js";
import { InternalError } from "../../runtime/errors.js";
import { EmbeddedStore } from "../../runtime/store/embedded/index.js";
import type { HashScanPage, Store } from "../../runtime/store/store.js";
import { DATA_APP, deployData } from "../e2e/data-harness.js";
import { startAgent, type Harness } from "../e2e/harness.js";
import { waitFor } from "../support/wait.js";
import { redisPresent, startRedisServer, type RedisServer } from "../store/redis-server.js";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Backend {
  name: string;
  open(): Promise<Store>;
}

let redis: RedisServer | null = null;
const backends: Backend[] = [{ name: "embedded", open: () => EmbeddedStore.open() }];
const withRedis = redisPresent("the registries are tested against the embedded store only");
if (withRedis) {
  backends.push({
    name: "redis",
    async open() {
      const { RedisStore } = await import("../../runtime/store/redis/index.js");
      return RedisStore.open({ url: redis!.url, prefix: `kiln-test-${randomUUID()}:` });
    },
  });
}

beforeAll(async () => {
  if (withRedis) redis = await startRedisServer();
});
afterAll(async () => {
  await redis?.dispose();
});

describe.each(backends)("Registry ($name store)", (backend) => {
  const opened: Store[] = [];
  const harnesses: Harness[] = [];

  async function open(): Promise<Store> {
    const store = await backend.open();
    opened.push(store);
    return store;
  }

  afterEach(async () => {
    for (const h of harnesses.splice(0)) await h.close().catch(() => undefined);
    for (const store of opened.splice(0)) await store.close();
  });

  it("get, put (a plain overwrite), add (only if absent), delete, entries", async () => {
    const store = await open();
    const apps = new Registry(store, registries.apps);
    expect(await apps.get("a")).toBeNull();
    expect(await apps.entries()).toEqual(new Map());
    await apps.put("a", "1");
    await apps.put("a", "2");
    expect(await apps.get("a")).toBe("2");
    expect(await apps.add("a", "3")).toBe(false);
    expect(await apps.add("b", "3")).toBe(true);
    expect(await apps.entries()).toEqual(
      new Map([
        ["a", "2"],
        ["b", "3"],
      ]),
    );
    // Registries are apart from each other and from plain keys of the same name.
    await store.set("a", "key");
    expect(await new Registry(store, registries.hosts).entries()).toEqual(new Map());
    expect(await apps.delete("a")).toBe(true);
    expect(await apps.delete("a")).toBe(false);
    expect(await apps.entries()).toEqual(new Map([["b", "3"]]));
    expect(await store.get("a")).toBe("key");
  });

  it("entries pages through a registry larger than one page", async () => {
    const store = await open();
    const big = new Registry(store, registries.ephemeral);
    const expected = new Map<string, string>();
    for (let i = 0; i < 1234; i++) expected.set(`id-${i}`, `record-${i}`);
    await store.hashSet(registries.ephemeral, [...expected]);
    expect(await big.entries()).toEqual(expected);
  });

  it("an entry put with ttlMs expires; a later put renews or clears its TTL", async () => {
    const store = await open();
    const hosts = new Registry(store, registries.hosts);
    await hosts.put("dead", "d", { ttlMs: 150 });
    await hosts.put("renewed", "r1", { ttlMs: 150 });
    await hosts.put("renewed", "r2", { ttlMs: 60_000 });
    await hosts.put("kept", "k", { ttlMs: 150 });
    await hosts.put("kept", "k2");
    expect([...(await hosts.entries()).keys()].sort()).toEqual(["dead", "kept", "renewed"]);
    await sleep(400);
    expect(await hosts.get("dead")).toBeNull();
    expect(await hosts.entries()).toEqual(
      new Map([
        ["kept", "k2"],
        ["renewed", "r2"],
      ]),
    );
  });

  it("migrateLegacyKeys moves old-layout keys into the registries, once, with two agents at once; newer entries win", async () => {
    const store = await open();
    const old: [string, string][] = [
      ["app:a", "app a"],
      ["app:b", "app b (old)"],
      ["schedule:a:every", "state of a.every"],
      ["ephemeral:e1", "record e1"],
      // Not registry records: left alone.
      ["ephemeral-live:e1", "1"],
      ["call:c1", "call"],
      ["apps", "x"],
    ];
    for (const [key, value] of old) await store.set(key, value);
    await new Registry(store, registries.apps).put("b", "app b (new)");
    const moved = await Promise.all([migrateLegacyKeys(store), migrateLegacyKeys(store)]);
    expect(moved[0] + moved[1]).toBe(4);
    expect(await migrateLegacyKeys(store)).toBe(0);
    expect(await new Registry(store, registries.apps).entries()).toEqual(
      new Map([
        ["a", "app a"],
        ["b", "app b (new)"],
      ]),
    );
    expect(await new Registry(store, registries.schedules).entries()).toEqual(
      new Map([[scheduleField("a", "every"), "state of a.every"]]),
    );
    expect(await new Registry(store, registries.ephemeral).entries()).toEqual(
      new Map([["e1", "record e1"]]),
    );
    expect(await store.keys("")).toEqual(["apps", "call:c1", "ephemeral-live:e1", LAYOUT_KEY]);
    // Later starts do not scan again, even if a stray old-layout key appears (unsupported).
    await store.set("app:late", "late");
    expect(await migrateLegacyKeys(store)).toBe(0);
    expect(await store.get("app:late")).toBe("late");
  });

  it("an agent started on a store of the old layout keeps its apps, schedule state and ephemeral objects", async () => {
    const store = await open();
    const first = await startAgent({ store });
    harnesses.push(first);
    await deployData(first.kiln, (spec) => {
      spec["schedules"] = {
        hourly: { function: "recordTick", period: { minutes: 60 }, args: ["x"] },
      };
    });
    const states = new Registry(store, registries.schedules);
    const state = await waitFor("the schedule's state", () =>
      states.get(scheduleField(DATA_APP, "hourly")).then((s) => s ?? undefined),
    );
    const dict = await first.kiln.ephemeralDict();
    const id = dict.ref.slice("ephemeral:".length);
    await dict.put("k", "v");
    await first.close();
    await dict.close().catch(() => undefined); // Stops its heartbeats (the agent it talks to is gone).

    // Back to the layout of older agents: one plain key per record.
    const layout: [string, string][] = [
      [registries.apps, "app:"],
      [registries.schedules, "schedule:"],
      [registries.ephemeral, "ephemeral:"],
    ];
    for (const [hash, prefix] of layout) {
      const entries = await new Registry(store, hash).entries();
      expect(entries.size).toBe(1);
      for (const [name, value] of entries) await store.set(`${prefix}${name}`, value);
      await store.hashDrop(hash);
    }
    await store.delete(LAYOUT_KEY); // as on a store only older agents used

    const second = await startAgent({ store });
    harnesses.push(second);
    expect((await second.kiln.apps()).map((app) => app.name)).toEqual([DATA_APP]);
    // The same state: not restarted from this agent's start.
    expect(await states.get(scheduleField(DATA_APP, "hourly"))).toBe(state);
    const [status] =
      (await second.kiln.status()).apps.find((app) => app.name === DATA_APP)?.schedules ?? [];
    expect(status?.nextTickAt).toBe(
      new Date((JSON.parse(state) as { anchor: number }).anchor + 3_600_000).toISOString(),
    );
    expect(await second.agent.ephemerals.get(id, "dict")).toMatchObject({ kind: "dict" });
    for (const prefix of ["app:", "schedule:", "ephemeral:"])
      expect(await store.keys(prefix)).toEqual([]);
    expect(await second.agent.ephemerals.delete(id)).toBe(true);
  });
});

describe("Registry.entries", () => {
  it("gives up with an InternalError naming the registry when the scan never ends", async () => {
    const store = await EmbeddedStore.open();
    let pages = 0;
    const endless = new Proxy(store, {
      get(target, property, receiver) {
        if (property === "hashScan") {
          return async (): Promise<HashScanPage> => {
            pages++;
            return { cursor: String(pages), entries: [] };
          };
        }
        return Reflect.get(target, property, receiver) as unknown;
      },
    });
    const error = await new Registry(endless, registries.hosts).entries().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InternalError);
    expect((error as InternalError).message).toContain(registries.hosts);
    expect(pages).toBe(10_000);
    await store.close();
  });
});

(withRedis ? describe : describe.skip)("Registry on Redis: no keyspace scans", () => {
  it("listing, reading and writing registries runs no SCAN, however many other keys Redis holds", async () => {
    const { RedisStore } = await import("../../runtime/store/redis/index.js");
    const store = await RedisStore.open({ url: redis!.url, prefix: `kiln-test-${randomUUID()}:` });
    const raw = new Redis(redis!.url);
    try {
      // 20,000 unrelated keys (results and call records of other apps, say).
      for (let batch = 0; batch < 20; batch++) {
        const pipeline = raw.pipeline();
        for (let i = 0; i < 1000; i++) pipeline.set(`unrelated:${batch}:${i}`, "x");
        await pipeline.exec();
      }
      const calls = async (command: string): Promise<number> =>
        Number(
          new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(await raw.info("commandstats"))?.[1] ??
            0,
        );

      const apps = new Registry(store, registries.apps);
      const hosts = new Registry(store, registries.hosts);
      await raw.config("RESETSTAT");
      for (let i = 0; i < 50; i++) await apps.put(`app-${i}`, `record ${i}`);
      await hosts.put("agent-a", "a", { ttlMs: 200 });
      await hosts.put("agent-b", "b", { ttlMs: 60_000 });
      expect((await apps.entries()).size).toBe(50);
      expect(await apps.get("app-7")).toBe("record 7");
      expect(await apps.delete("app-7")).toBe(true);
      expect((await apps.entries()).size).toBe(49);
      expect([...(await hosts.entries()).keys()].sort()).toEqual(["agent-a", "agent-b"]);
      await sleep(300);
      expect(await hosts.entries()).toEqual(new Map([["agent-b", "b"]]));
      expect(await calls("scan")).toBe(0);
      // The probe sees commands run inside the store's scripts, and would see a keyspace scan.
      expect(await calls("hscan")).toBeGreaterThan(0);
      await store.keys("app:");
      expect(await calls("scan")).toBeGreaterThan(0);
    } finally {
      raw.disconnect();
      await store.close();
    }
  });

  it("an idle agent (app reconcile, scheduler, host listing, ephemeral sweep) runs no SCAN", async () => {
    const raw = new Redis(redis!.url);
    let harness: Harness | null = null;
    try {
      for (let batch = 0; batch < 20; batch++) {
        const pipeline = raw.pipeline();
        for (let i = 0; i < 1000; i++) pipeline.set(`idle-unrelated:${batch}:${i}`, "x");
        await pipeline.exec();
      }
      harness = await startAgent({ redisUrl: redis!.url });
      const { agent, kiln } = harness;
      await deployData(kiln, (spec) => {
        spec["schedules"] = {
          hourly: { function: "recordTick", period: { minutes: 60 }, args: ["x"] },
        };
      });
      const dict = await kiln.ephemeralDict();
      await raw.config("RESETSTAT");
      await agent.apps.load();
      expect(await agent.ephemerals.sweep()).toBe(0);
      expect((await kiln.status()).hosts.map((host) => host.id)).toEqual([agent.id]);
      await sleep(2_500); // A scheduler pass and an advertisement.
      const stats = await raw.info("commandstats");
      expect(stats).not.toMatch(/cmdstat_scan:/);
      expect(stats).toMatch(/cmdstat_hscan:/);
      await dict.close();
    } finally {
      await harness?.close();
      raw.disconnect();
    }
  });
});
