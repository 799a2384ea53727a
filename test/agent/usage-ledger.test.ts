/**
 * The usage ledger over real stores: flushes add exactly what was metered since the last one, two
 * writers sum, filters, a reopened store keeps the totals, a lost answer is counted once, and
 * retention. Runs over the embedded store (durable, in a temp dir) and, where redis-server is
 * installed, over Redis.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { RETENTION_MS, UsageLedger, FLUSH_MS } from "../../runtime/agent/usage-ledger.js";
import { UsageAccumulator, type MeterSubject } from "../../runtime/containers/metering.js";
import { EmbeddedStore } from "../../runtime/store/embedded/index.js";
import { RedisStore } from "../../runtime/store/redis/index.js";
import type { Store } from "../../runtime/store/store.js";
import { FakeClock } from "../store/fake-clock.js";
import { redisPresent, startRedisServer, type RedisServer } from "../store/redis-server.js";
import { waitFor } from "../support/wait.js";

const MIB = 1024 * 1024;
const T0 = 1_700_000_040_000; // on a minute boundary

const subject = (over: Partial<MeterSubject> = {}): MeterSubject => ({
  containerId: "c1",
  app: "app",
  fn: "f",
  cpuRequest: 0.5,
  memoryRequestMiB: 256,
  gpus: 1,
  ...over,
});

/** Run a container from `fromS` to `toS` seconds after T0: 1 core busy, 512 MiB. */
function run(acc: UsageAccumulator, over: Partial<MeterSubject>, fromS: number, toS: number): void {
  const s = subject(over);
  acc.start(s, { atMs: T0 + fromS * 1000, cpuNs: 0, memoryBytes: 512 * MIB });
  for (let t = fromS + 1; t <= toS; t += 1)
    acc.record(s.containerId, {
      atMs: T0 + t * 1000,
      cpuNs: (t - fromS) * 1e9,
      memoryBytes: 512 * MIB,
    });
  acc.stop(s.containerId);
}

/** Usage of `seconds` seconds of one such container. */
const expected = (app: string, fn: string, seconds: number) => ({
  app,
  fn,
  containerSeconds: seconds,
  cpuSeconds: seconds,
  billedCpuSeconds: seconds,
  memoryMiBSeconds: 512 * seconds,
  billedMemoryMiBSeconds: 512 * seconds,
  gpuSeconds: seconds,
});

interface Opened {
  store: Store;
  /** The same data in a fresh store instance (a restart). */
  reopen(): Promise<Store>;
}

function ledgerCases(name: string, open: () => Promise<Opened>, close: () => Promise<void>) {
  describe(name, () => {
    afterEach(close);

    it("a flush writes what was metered; later flushes add only what is new; a reader sees it", async () => {
      const { store } = await open();
      const clock = new FakeClock(T0 + 10_000);
      const acc = new UsageAccumulator();
      const ledger = new UsageLedger(store, acc, { owner: "a1", clock });
      run(acc, { containerId: "c1" }, 0, 5);
      await ledger.flush();
      await ledger.flush(); // nothing new: nothing added
      run(acc, { containerId: "c2" }, 5, 8);
      await ledger.flush();
      const reader = new UsageLedger(store, new UsageAccumulator(), { owner: "r", clock });
      expect(await reader.totals()).toEqual([expected("app", "f", 8)]);
      expect(await ledger.totals()).toEqual(acc.totals());
    });

    it("two writers on one store sum; filters by app, function and since", async () => {
      const { store } = await open();
      const clock = new FakeClock(T0 + 200_000);
      const one = new UsageAccumulator();
      const two = new UsageAccumulator();
      const a = new UsageLedger(store, one, { owner: "a1", clock });
      const b = new UsageLedger(store, two, { owner: "a2", clock });
      run(one, { containerId: "x1" }, 0, 10);
      run(two, { containerId: "y1" }, 5, 15);
      run(two, { containerId: "y2", fn: "g" }, 60, 70); // second minute
      run(one, { containerId: "x2", app: "other" }, 120, 121); // third minute
      await Promise.all([a.flush(), b.flush()]);
      expect(await a.totals()).toEqual([
        expected("app", "f", 20),
        expected("app", "g", 10),
        expected("other", "f", 1),
      ]);
      expect(await b.totals({ app: "app", fn: "g" })).toEqual([expected("app", "g", 10)]);
      expect(await b.totals({ app: "app", sinceMs: T0 + 60_000 })).toEqual([
        expected("app", "g", 10),
      ]);
      expect(await b.totals({ sinceMs: T0 + 59_999 })).toHaveLength(3); // the first minute ends after it
      expect(await b.totals({ app: "nosuch" })).toEqual([]);
      expect((await b.metered()).map((m) => `${m.app}.${m.fn}`).sort()).toEqual([
        "app.f",
        "app.g",
        "other.f",
      ]);
    });

    it("a restart (the store reopened, a new ledger) finds the totals; they expire after 90 days", async () => {
      const opened = await open();
      const clock = new FakeClock(T0 + 10_000);
      const acc = new UsageAccumulator();
      const ledger = new UsageLedger(opened.store, acc, { owner: "a1", clock });
      run(acc, {}, 0, 4);
      await ledger.stop();
      const store = await opened.reopen();
      const again = new UsageLedger(store, new UsageAccumulator(), { owner: "a2", clock });
      expect(await again.totals({ app: "app" })).toEqual([expected("app", "f", 4)]);
      const ttl = await store.ttl(`usage:app:f:${T0}:containerSeconds`);
      expect(ttl).toBeGreaterThan(RETENTION_MS - 60_000);
      expect(ttl).toBeLessThanOrEqual(RETENTION_MS);
    });

    it("a flush whose answer was lost is retried once and counted once", async () => {
      const { store } = await open();
      const clock = new FakeClock(T0 + 10_000);
      let lose = 1;
      const lossy = new Proxy(store, {
        get(target, prop, receiver) {
          if (prop === "apply")
            return async (...args: Parameters<Store["apply"]>) => {
              const result = await target.apply(...args);
              if (lose-- > 0) throw new Error("connection lost after the write");
              return result;
            };
          const value: unknown = Reflect.get(target, prop, receiver);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
      const acc = new UsageAccumulator();
      const ledger = new UsageLedger(lossy, acc, { owner: "a1", clock });
      run(acc, {}, 0, 3);
      await expect(ledger.flush()).rejects.toThrow("connection lost");
      run(acc, { containerId: "c2" }, 3, 5);
      await ledger.flush();
      expect(await ledger.totals()).toEqual([expected("app", "f", 5)]);
    });

    it("flushes every FLUSH_MS on its clock; buckets the store holds leave memory once their minute is over", async () => {
      const { store } = await open();
      const clock = new FakeClock(T0 + 10_000);
      const acc = new UsageAccumulator();
      const ledger = new UsageLedger(store, acc, { owner: "a1", clock });
      const reader = new UsageLedger(store, new UsageAccumulator(), { owner: "r", clock });
      ledger.start();
      run(acc, {}, 0, 6);
      clock.advance(FLUSH_MS);
      await waitFor("the periodic flush", async () =>
        (await reader.totals()).length > 0 ? true : undefined,
      );
      expect(await reader.totals()).toEqual([expected("app", "f", 6)]);
      clock.advance(120_000);
      await ledger.flush();
      expect([...acc.buckets()]).toEqual([]);
      expect(await reader.totals()).toEqual([expected("app", "f", 6)]);
      await ledger.stop();
    });
  });
}

// ---- embedded, durable in a temp dir -----------------------------------------------------------
{
  const open: EmbeddedStore[] = [];
  const dirs: string[] = [];
  const openAt = async (dir: string) => {
    const store = await EmbeddedStore.open({ dir });
    open.push(store);
    return store;
  };
  ledgerCases(
    "UsageLedger over the embedded store",
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "kiln-usage-"));
      dirs.push(dir);
      const store = await openAt(dir);
      return {
        store,
        async reopen() {
          await store.close();
          return openAt(dir);
        },
      };
    },
    async () => {
      for (const s of open.splice(0)) await s.close().catch(() => undefined);
      for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
    },
  );
}

// ---- Redis (skipped where redis-server is not installed) ---------------------------------------
{
  const available = redisPresent("the Redis usage-ledger cases are skipped");
  let server: RedisServer | null = null;
  const open: RedisStore[] = [];
  const openRedis = async (prefix: string) => {
    if (!server) throw new Error("no redis-server");
    const store = await RedisStore.open({ url: server.url, prefix });
    open.push(store);
    return store;
  };
  (available ? describe : describe.skip)("Redis", () => {
    beforeAll(async () => {
      server = await startRedisServer();
    });
    afterAll(async () => {
      await server?.dispose();
    });
    ledgerCases(
      "UsageLedger over Redis",
      async () => {
        const prefix = `kiln-usage-${randomUUID()}:`;
        const store = await openRedis(prefix);
        return {
          store,
          async reopen() {
            await store.close();
            return openRedis(prefix);
          },
        };
      },
      async () => {
        for (const s of open.splice(0)) await s.close().catch(() => undefined);
      },
    );
  });
}
