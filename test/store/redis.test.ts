/**
 * The Redis store: the store contract against a real redis-server, plus what only Redis has:
 * several stores ("agents") on one server, and the server going away and coming back.
 */
import { execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { InvalidError, UnavailableError } from "../../runtime/errors.js";
import { openStore } from "../../runtime/store/index.js";
import { RedisStore, type RedisStoreOptions } from "../../runtime/store/redis/index.js";
import type { Claim } from "../../runtime/store/store.js";
import { waitFor } from "../support/wait.js";
import { storeContract } from "./contract.js";
import { freePort, redisPresent, startRedisServer, type RedisServer } from "./redis-server.js";

const available = redisPresent();
const suite = available ? describe : describe.skip;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The child processes import the built store: `npm run build` first. */
function ensureBuiltStore(): void {
  const built = resolve(
    dirname(fileURLToPath(import.meta.url)),
    "..",
    "..",
    "dist",
    "runtime",
    "store",
    "redis",
    "index.js",
  );
  execFileSync("test", ["-f", built]);
}

suite("RedisStore", () => {
  let server: RedisServer;

  beforeAll(async () => {
    server = await startRedisServer();
  });

  afterAll(async () => {
    await server?.dispose();
  });

  storeContract("redis", async () => {
    const store = await RedisStore.open({ url: server.url, prefix: `kiln-test-${randomUUID()}:` });
    return { store, cleanup: () => store.close() };
  });

  describe("Redis only", () => {
    const stores: RedisStore[] = [];
    const lease = { owner: "agent-a", leaseMs: 30_000 };

    async function open(
      options: Partial<RedisStoreOptions> & { prefix: string },
    ): Promise<RedisStore> {
      const store = await RedisStore.open({ url: server.url, ...options });
      stores.push(store);
      return store;
    }

    /** Two stores ("agents") sharing one namespace on the server. */
    async function agents(): Promise<[RedisStore, RedisStore]> {
      const prefix = `kiln-test-${randomUUID()}:`;
      return [await open({ prefix }), await open({ prefix })];
    }

    afterEach(async () => {
      for (const store of stores.splice(0)) await store.close();
    });

    it("openStore opens the Redis store", async () => {
      const store = await openStore({
        kind: "redis",
        url: server.url,
        prefix: `kiln-test-${randomUUID()}:`,
      });
      try {
        expect(store.kind).toBe("redis");
        await store.set("k", "v");
        expect(await store.get("k")).toBe("v");
      } finally {
        await store.close();
      }
    });

    it("namespaces by prefix: another prefix sees nothing", async () => {
      const a = await open({ prefix: `kiln-test-${randomUUID()}:` });
      const b = await open({ prefix: `kiln-test-${randomUUID()}:` });
      await a.set("k", "v");
      await a.enqueue("q", { id: "x", payload: "" });
      expect(await b.get("k")).toBeNull();
      expect(await b.keys("")).toEqual([]);
      expect(await b.stats("q")).toEqual({ pending: 0, claimed: 0, delayed: 0 });
      expect(await a.keys("")).toEqual(["k"]);
    });

    it("keys() treats glob characters in the prefix literally", async () => {
      const store = await open({ prefix: `kiln-test-${randomUUID()}:` });
      for (const key of ["a*b", "a*c", "axb", "[x]1", "x1", "q?", "qq"]) await store.set(key, "1");
      expect(await store.keys("a*")).toEqual(["a*b", "a*c"]);
      expect(await store.keys("[x]")).toEqual(["[x]1"]);
      expect(await store.keys("q?")).toEqual(["q?"]);
    });

    it("a wrong-type access is an InvalidError", async () => {
      const store = await open({ prefix: `kiln-test-${randomUUID()}:` });
      await store.set("s", "v");
      await store.listPush("l", ["a"]);
      await expect(store.listPush("s", ["a"])).rejects.toBeInstanceOf(InvalidError);
      await expect(store.listPop("s")).rejects.toBeInstanceOf(InvalidError);
      await expect(store.listPop("s", { waitMs: 1000 })).rejects.toBeInstanceOf(InvalidError);
      await expect(store.get("l")).rejects.toBeInstanceOf(InvalidError);
      await expect(store.getMany(["s", "l"])).rejects.toBeInstanceOf(InvalidError);
      await expect(store.incr("l", 1)).rejects.toBeInstanceOf(InvalidError);
      await store.set("n", "abc");
      await expect(store.incr("n", 1)).rejects.toBeInstanceOf(InvalidError);
      await expect(store.incr("n", 1.5)).rejects.toBeInstanceOf(InvalidError);
      await expect(store.claim(["q"], { owner: "a", leaseMs: 0 })).rejects.toBeInstanceOf(
        InvalidError,
      );
    });

    it("a claim by one agent is invisible to the other, and records its owner", async () => {
      const [a, b] = await agents();
      await a.enqueue("q", { id: "x", payload: "p" });
      const [claim] = await a.claim(["q"], lease);
      expect(claim).toMatchObject({ id: "x", payload: "p", deliveries: 0 });
      expect(await b.claim(["q"], { owner: "agent-b", leaseMs: 30_000 })).toEqual([]);
      expect(await b.stats("q")).toEqual({ pending: 0, claimed: 1, delayed: 0 });
      const held = await b.listClaims("q");
      expect(held).toHaveLength(1);
      expect(held[0]).toMatchObject({ id: "x", owner: "agent-a", fence: claim!.fence });
      expect(held[0]!.leaseLeftMs).toBeGreaterThan(25_000);
      // B can complete A's claim only with A's fence (the fence, not the agent, is the credential).
      expect(await b.complete({ queue: "q", id: "x", fence: claim!.fence + 1 })).toBe(false);
      expect(await a.complete({ queue: "q", id: "x", fence: claim!.fence })).toBe(true);
      expect(await b.listClaims("q")).toEqual([]);
    });

    it("a lapsed lease of A is claimed by B with a higher fence; A's late complete is rejected", async () => {
      const [a, b] = await agents();
      await a.enqueue("q", { id: "x", payload: "p" });
      const [first] = await a.claim(["q"], { owner: "agent-a", leaseMs: 100 });
      const started = Date.now();
      // B blocks: nobody touches the queue, B hears of the lapse by itself.
      const [second] = await b.claim(["q"], { owner: "agent-b", leaseMs: 30_000, waitMs: 5000 });
      expect(Date.now() - started).toBeLessThan(3000);
      expect(second).toMatchObject({ id: "x", payload: "p", deliveries: 1 });
      expect(second!.fence).toBeGreaterThan(first!.fence);
      expect((await a.listClaims("q")).map((c) => c.owner)).toEqual(["agent-b"]);
      expect(await a.renew([{ queue: "q", id: "x", fence: first!.fence }], 30_000)).toEqual([
        false,
      ]);
      expect(await a.complete({ queue: "q", id: "x", fence: first!.fence })).toBe(false);
      expect(await b.complete({ queue: "q", id: "x", fence: second!.fence })).toBe(true);
    });

    it("a lapsed lease is recovered by the sweep with nobody claiming (stats see it within ~1 s)", async () => {
      const prefix = `kiln-test-${randomUUID()}:`;
      const a = await open({ prefix });
      const watcher = await RedisStore.open({ url: server.url, prefix });
      stores.push(watcher);
      const woken: string[] = [];
      await a.enqueue("q", { id: "x", payload: "" });
      await a.claim(["q"], { owner: "agent-a", leaseMs: 100 });
      // A third agent blocked on another queue is not involved; the sweep of any agent moves x back.
      const pending = watcher
        .claim(["other"], { owner: "w", leaseMs: 1000, waitMs: 3000 })
        .then((c) => woken.push(...c.map((x) => x.id)));
      await a.close();
      await waitFor(
        "the sweep to recover the lapsed claim",
        async () => ((await watcher.listClaims("q")).length === 0 ? true : undefined),
        3000,
      );
      expect(await watcher.stats("q")).toEqual({ pending: 1, claimed: 0, delayed: 0 });
      await watcher.close();
      await pending;
      expect(woken).toEqual([]);
    });

    it("a blocking claim in B is woken by an enqueue from A within 50 ms", async () => {
      const [a, b] = await agents();
      const latencies: number[] = [];
      for (let i = 0; i < 5; i++) {
        const waiting = b.claim(["q"], { owner: "agent-b", leaseMs: 30_000, waitMs: 10_000 });
        await sleep(50); // let B's first (empty) attempt finish, so it is really blocked
        const started = performance.now();
        await a.enqueue("q", { id: `x${i}`, payload: String(i) });
        const claims = await waiting;
        latencies.push(performance.now() - started);
        expect(claims.map((c) => [c.id, c.payload])).toEqual([[`x${i}`, String(i)]]);
        await b.complete(claims[0]!);
      }
      latencies.sort((x, y) => x - y);
      expect(latencies[2]!).toBeLessThan(50);
      expect(latencies[4]!).toBeLessThan(500);
    });

    it("a claimer whose last attempt left its queues known empty waits without asking again, and still hears of every new item", async () => {
      const [a, b] = await agents();
      const stats = new Redis(server.url);
      try {
        /** Claim-script work on the server since the last reset (LLEN runs in every claim attempt, not in the sweep's index scan). */
        const claimWork = async (): Promise<number> =>
          Number(/cmdstat_llen:calls=(\d+)/.exec(await stats.info("commandstats"))?.[1] ?? 0);
        expect(await b.claim(["q", "q2"], { ...lease, waitMs: 0 })).toEqual([]);
        await stats.config("RESETSTAT");
        // Nothing was heard since that attempt found both queues empty: the waiter asks nothing.
        const first = b.claim(["q2", "q"], { ...lease, waitMs: 10_000 });
        await sleep(100);
        expect(await claimWork()).toBe(0);
        // An item from another agent reaches it through the wake-up.
        await a.enqueue("q", { id: "x", payload: "1" });
        expect((await first).map((c) => c.id)).toEqual(["x"]);
        // Enqueued before the claim is made, its wake-up possibly not heard yet: still claimed at once.
        await a.enqueue("q", { id: "y", payload: "2" });
        const started = performance.now();
        expect((await b.claim(["q", "q2"], { ...lease, waitMs: 5_000 })).map((c) => c.id)).toEqual([
          "y",
        ]);
        expect(performance.now() - started).toBeLessThan(500);
        // A delayed item publishes nothing when queued: it is claimed when its delay ends.
        const queuedAt = Date.now();
        await a.enqueue("q2", { id: "z", payload: "3" }, { delayMs: 200 });
        expect((await b.claim(["q", "q2"], { ...lease, waitMs: 5_000 })).map((c) => c.id)).toEqual([
          "z",
        ]);
        expect(Date.now() - queuedAt).toBeGreaterThanOrEqual(190);
        expect(Date.now() - queuedAt).toBeLessThan(1_500);
      } finally {
        stats.disconnect();
      }
    });

    it("a queue set known empty stays known empty whatever the order its claimer names the queues in", async () => {
      const [a, b] = await agents();
      const stats = new Redis(server.url);
      try {
        // A wake-up heard for q but not q2: the two queues' counts differ.
        const first = b.claim(["q", "q2"], { ...lease, waitMs: 5_000 });
        await sleep(20);
        await a.enqueue("q", { id: "x", payload: "1" });
        expect((await first).map((c) => c.id)).toEqual(["x"]);
        expect(await b.claim(["q", "q2"], { ...lease, waitMs: 0 })).toEqual([]);
        await stats.config("RESETSTAT");
        // The pool alternates the order; the set is the same and nothing was heard since.
        const second = b.claim(["q2", "q"], { ...lease, waitMs: 10_000 });
        await sleep(100);
        expect(
          Number(/cmdstat_llen:calls=(\d+)/.exec(await stats.info("commandstats"))?.[1] ?? 0),
        ).toBe(0);
        await a.enqueue("q", { id: "y", payload: "2" });
        expect((await second).map((c) => c.id)).toEqual(["y"]);
      } finally {
        stats.disconnect();
      }
    });

    it("an eager hand-over reaches the claimer before the server answers, is recorded as its claim past the caps, and yields to a queued copy", async () => {
      const [a, b] = await agents();
      const waiting = a.claim(["q", "q2"], { ...lease, waitMs: 5_000, eager: () => true });
      await sleep(20);
      const order: string[] = [];
      let unrecordedAtDelivery = false;
      const delivered = waiting.then((claims) => {
        unrecordedAtDelivery = claims[0]?.recorded !== undefined;
        order.push("claim");
        return claims;
      });
      const enqueued = a.enqueue("q", { id: "x", payload: "p" }, { eager: true }).then((result) => {
        order.push("enqueue");
        return result;
      });
      const [claim] = await delivered;
      expect(await enqueued).toEqual({ ok: true });
      expect(order).toEqual(["claim", "enqueue"]);
      expect(unrecordedAtDelivery).toBe(true);
      await claim!.recorded;
      const held = await b.listClaims("q");
      expect(held).toEqual([
        expect.objectContaining({ id: "x", owner: "agent-a", fence: claim!.fence }),
      ]);
      expect(held[0]!.leaseLeftMs).toBeGreaterThan(25_000);
      // It never waits in the queue, so the caps do not refuse it; a queued item is refused.
      const second = a.claim(["q"], { ...lease, waitMs: 5_000, eager: () => true });
      await sleep(20);
      expect(
        await a.enqueue(
          "q",
          { id: "y", payload: "p" },
          { eager: true, maxTotal: 1, maxPending: 1 },
        ),
      ).toEqual({ ok: true });
      const [taken] = await second;
      await taken!.recorded;
      expect(await b.stats("q")).toEqual({ pending: 0, claimed: 2, delayed: 0 });
      expect(await b.enqueue("q", { id: "z", payload: "p" }, { maxTotal: 2 })).toEqual({
        ok: false,
        reason: "total",
        count: 2,
      });
      // A claimer that cannot start an item at once now takes none: the item is queued.
      const busy = a.claim(["q"], { ...lease, waitMs: 5_000, eager: () => false });
      await sleep(20);
      expect(await a.enqueue("q", { id: "w", payload: "p" }, { eager: true })).toEqual({
        ok: true,
      });
      const [plain] = await busy;
      expect(plain).toMatchObject({ id: "w", deliveries: 0 });
      expect(plain!.recorded).toBeUndefined();
      // The same id again while its first copy is held: nothing is written, the hand-over is void.
      const third = a.claim(["q"], { ...lease, waitMs: 5_000, eager: () => true });
      await sleep(20);
      expect(
        await a.enqueue(
          "q",
          { id: "x", payload: "again" },
          { eager: true, records: [{ key: "call:x", value: "again" }] },
        ),
      ).toEqual({ ok: true });
      expect(await a.get("call:x")).toBe("again");
      const [duplicate] = await third;
      await expect(duplicate!.recorded).rejects.toThrow(/already queued/);
      expect((await b.listClaims("q")).find((c) => c.id === "x")?.fence).toBe(claim!.fence);
      expect(await b.stats("q")).toEqual({ pending: 0, claimed: 3, delayed: 0 });
    });

    it("blocked claimers in two agents share a burst: every item once", async () => {
      const [a, b] = await agents();
      const waiting: Promise<Claim[]>[] = [];
      for (let i = 0; i < 4; i++) {
        waiting.push(a.claim(["q"], { owner: "agent-a", leaseMs: 30_000, waitMs: 10_000 }));
        waiting.push(b.claim(["q"], { owner: "agent-b", leaseMs: 30_000, waitMs: 10_000 }));
      }
      await sleep(50);
      await Promise.all(
        Array.from({ length: 8 }, (_, i) => a.enqueue("q", { id: `i${i}`, payload: "" })),
      );
      const got = (await Promise.all(waiting)).flat();
      expect(got.map((c) => c.id).sort()).toEqual(Array.from({ length: 8 }, (_, i) => `i${i}`));
    });

    it("three agents with blocking claim loops: every item completed exactly once, stale completes rejected", async () => {
      const prefix = `kiln-test-${randomUUID()}:`;
      const three = [await open({ prefix }), await open({ prefix }), await open({ prefix })];
      const n = 600;
      const completed = new Map<string, number>();
      let stale = 0;
      let stop = false;
      const loop = async (store: RedisStore, owner: string, slow: boolean): Promise<void> => {
        while (!stop) {
          const claims = await store.claim(["q"], {
            owner,
            leaseMs: slow ? 60 : 5000,
            max: 3,
            waitMs: 200,
          });
          for (const claim of claims) {
            // The slow worker outlives its lease every time: its claims are taken over and fenced off.
            if (slow) await sleep(100);
            if (await store.complete(claim))
              completed.set(claim.id, (completed.get(claim.id) ?? 0) + 1);
            else stale++;
          }
        }
      };
      const loops = three.flatMap((store, i) =>
        [0, 1, 2].map((j) => loop(store, `agent-${i}-${j}`, i === 0 && j === 0)),
      );
      for (let i = 0; i < n; i += 50) {
        await Promise.all(
          Array.from({ length: 50 }, (_, j) =>
            three[(i + j) % 3]!.enqueue("q", { id: `i${i + j}`, payload: "" }),
          ),
        );
      }
      await waitFor(
        "every item to complete",
        async () => (completed.size === n ? true : undefined),
        20_000,
      );
      stop = true;
      await Promise.all(loops);
      expect([...completed.values()].every((times) => times === 1)).toBe(true);
      expect(await three[1]!.stats("q")).toEqual({ pending: 0, claimed: 0, delayed: 0 });
      expect(stale).toBeGreaterThan(0);
    });

    it("a delayed item enqueued by A is claimable on time by a blocked claimer in B", async () => {
      const [a, b] = await agents();
      const started = Date.now();
      await a.enqueue("q", { id: "later", payload: "" }, { delayMs: 200 });
      const claims = await b.claim(["q"], { owner: "agent-b", leaseMs: 30_000, waitMs: 5000 });
      const elapsed = Date.now() - started;
      expect(claims.map((c) => c.id)).toEqual(["later"]);
      expect(elapsed).toBeGreaterThanOrEqual(190);
      expect(elapsed).toBeLessThan(1500);
    });

    it("a blocking pop in B is woken by a push from A; lists, locks and messages are shared", async () => {
      const [a, b] = await agents();
      const popping = b.listPop("l", { waitMs: 10_000, max: 10 });
      await sleep(50);
      const started = performance.now();
      await a.listPush("l", ["x", "y"]);
      expect(await popping).toEqual(["x", "y"]);
      expect(performance.now() - started).toBeLessThan(1000);

      const token = await a.lock("leader", "agent-a", 30_000);
      expect(token).not.toBeNull();
      expect(await b.lock("leader", "agent-b", 30_000)).toBeNull();
      expect(await a.unlock("leader", "agent-a")).toBe(true);
      expect(await b.lock("leader", "agent-b", 30_000)).toBeGreaterThan(token!);

      const got: string[] = [];
      await b.subscribe("ch", (m) => got.push(m));
      await a.publish("ch", "hello");
      await waitFor("the message", async () => (got.length === 1 ? true : undefined), 3000);
      expect(got).toEqual(["hello"]);
    });

    it("many blocking pops at once each get a value, and an aborted one takes nothing", async () => {
      const store = await open({ prefix: `kiln-test-${randomUUID()}:` });
      const pops = Array.from({ length: 10 }, () => store.listPop("l", { waitMs: 10_000 }));
      const controller = new AbortController();
      const aborted = store.listPop("l", { waitMs: 10_000, signal: controller.signal });
      await sleep(50);
      controller.abort();
      expect(await aborted).toEqual([]);
      await store.listPush(
        "l",
        Array.from({ length: 10 }, (_, i) => `v${i}`),
      );
      const values = (await Promise.all(pops)).flat();
      expect(values.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `v${i}`).sort());
      expect(await store.listLength("l")).toBe(0);
    });

    it("dicts and queues are shared: a hash written by A is read by B; B's blocked partition pop is woken by A's push", async () => {
      const [a, b] = await agents();
      await a.hashSet("h", [["f", "v"]], { idleMs: 60_000 });
      expect(await b.hashGet("h", "f", { idleMs: 60_000 })).toBe("v");
      const waiting = b.partitionPop("g", "p", { waitMs: 10_000 });
      await sleep(50);
      const started = Date.now();
      await a.partitionPush("g", "p", ["x"], { maxLength: 10, maxPartitions: 10, ttlMs: 60_000 });
      expect(await waiting).toEqual(["x"]);
      expect(Date.now() - started).toBeLessThan(500);
    });

    it("a dict nobody touches again expires as a whole (the hash keys carry the latest field deadline)", async () => {
      const prefix = `kiln-test-${randomUUID()}:`;
      const store = await open({ prefix });
      await store.hashSet("h", [["a", "1"]], { idleMs: 60_000 });
      await store.hashSet("h", [["b", "2"]], { idleMs: 120_000 });
      const raw = new Redis(server.url);
      try {
        const ttl = await raw.pttl(`${prefix}h:h:v`);
        expect(ttl).toBeGreaterThan(110_000);
        expect(ttl).toBeLessThanOrEqual(120_001);
        // A field without a deadline: the hash persists.
        await store.hashSet("h", [["c", "3"]]);
        expect(await raw.pttl(`${prefix}h:h:v`)).toBe(-1);
      } finally {
        raw.disconnect();
      }
    });

    it("20 getters in separate processes (the built store) each take different items, all of them", async () => {
      ensureBuiltStore();
      const prefix = `kiln-test-${randomUUID()}:`;
      const store = await open({ prefix });
      const script = join(
        dirname(fileURLToPath(import.meta.url)),
        "fixtures",
        "partition-getter.mjs",
      );
      const getters = Array.from({ length: 20 }, () => {
        const child = spawn(process.execPath, [script, server.url, prefix, "g", "work"], {
          stdio: ["ignore", "pipe", "inherit"],
        });
        let out = "";
        child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
        const ready = (async () => {
          await waitFor("a getter to start", () => out.includes("ready\n"), { intervalMs: 10 });
        })();
        const done = new Promise<string[]>((resolve, reject) => {
          const timer = setTimeout(() => {
            child.kill("SIGKILL");
            reject(new Error("a getter did not finish within 60 s"));
          }, 60_000);
          child.once("exit", (code) => {
            clearTimeout(timer);
            if (code !== 0) reject(new Error(`a getter exited with ${code}`));
            else resolve(JSON.parse(out.split("\n")[1] ?? "[]") as string[]);
          });
        });
        return { ready, done };
      });
      await Promise.all(getters.map((g) => g.ready));
      await sleep(200);
      const items = Array.from({ length: 1000 }, (_, i) => `item-${i}`);
      for (let i = 0; i < items.length; i += 50)
        await store.partitionPush("g", "work", items.slice(i, i + 50));
      await store.partitionPush(
        "g",
        "work",
        Array.from({ length: 20 }, () => "STOP"),
      );
      const taken = (await Promise.all(getters.map((g) => g.done))).flat();
      expect(taken).toHaveLength(items.length);
      expect(new Set(taken)).toEqual(new Set(items));
      expect(await store.partitionLength("g", "work")).toBe(0);
    });

    it("an unreachable server fails open fast with UnavailableError naming the URL", async () => {
      const port = await freePort();
      const started = Date.now();
      const failure = await RedisStore.open({ url: `redis://127.0.0.1:${port}` }).catch(
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(UnavailableError);
      expect(String((failure as Error).message)).toContain(`127.0.0.1:${port}`);
      expect(Date.now() - started).toBeLessThan(2000);
    });

    it("the password is not in error messages", async () => {
      const port = await freePort();
      const failure = await RedisStore.open({ url: `redis://user:sekrit@127.0.0.1:${port}` }).catch(
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(UnavailableError);
      expect((failure as Error).message).not.toContain("sekrit");
    });
  });

  describe("server frozen (SIGSTOP)", () => {
    let frozen: RedisServer;

    beforeAll(async () => {
      frozen = await startRedisServer();
    });

    afterAll(async () => {
      await frozen?.dispose();
    });

    it("calls fail with UnavailableError after the command timeout, blocked pops too, and work resumes after SIGCONT", async () => {
      const store = await RedisStore.open({
        url: frozen.url,
        prefix: `kiln-test-${randomUUID()}:`,
        commandTimeoutMs: 300,
      });
      try {
        await store.set("k", "v");
        const pop = store.listPop("l", { waitMs: 200 }).catch((e: unknown) => e);
        await sleep(50);
        frozen.pause();
        const started = Date.now();
        await expect(store.get("k")).rejects.toBeInstanceOf(UnavailableError);
        expect(await pop).toBeInstanceOf(UnavailableError);
        expect(Date.now() - started).toBeLessThan(2000);
        frozen.resume();
        expect(
          await waitFor(
            "the server to answer again",
            () => store.get("k").then((v) => v ?? undefined),
            10_000,
          ),
        ).toBe("v");
      } finally {
        frozen.resume();
        await store.close();
      }
    });

    it("an eager hand-over whose reply is lost (server frozen past the command timeout): the enqueue fails, and the claim is found once the server answers", async () => {
      const store = await RedisStore.open({
        url: frozen.url,
        prefix: `kiln-test-${randomUUID()}:`,
        commandTimeoutMs: 300,
      });
      try {
        const waiting = store.claim(["q"], {
          owner: "agent-a",
          leaseMs: 10_000,
          waitMs: 5_000,
          eager: () => true,
        });
        await sleep(20);
        frozen.pause();
        const enqueued = store
          .enqueue("q", { id: "x", payload: "p" }, { eager: true })
          .catch((e: unknown) => e);
        const [claim] = await waiting;
        expect(claim).toMatchObject({ id: "x" });
        expect(await enqueued).toBeInstanceOf(UnavailableError);
        // The script reached the server before it froze and ran when it woke: the claim is this
        // claimer's, so the run that already happened is settled, not repeated after the lease.
        frozen.resume();
        await claim!.recorded;
        expect(claim!.fence).toBeGreaterThan(0);
        expect(await store.listClaims("q")).toEqual([
          expect.objectContaining({ id: "x", owner: "agent-a", fence: claim!.fence }),
        ]);
        expect(await store.settle(claim!, {})).toBe("applied");
        expect(await store.stats("q")).toEqual({ pending: 0, claimed: 0, delayed: 0 });
      } finally {
        frozen.resume();
        await store.close();
      }
    });

    it("an eager hand-over whose step never ran (its connection killed while the server held writes): the claim is void and nothing is queued", async () => {
      const store = await RedisStore.open({
        url: frozen.url,
        prefix: `kiln-test-${randomUUID()}:`,
        commandTimeoutMs: 2_000,
      });
      const admin = new Redis(frozen.url);
      try {
        const waiting = store.claim(["q"], {
          owner: "agent-a",
          leaseMs: 10_000,
          waitMs: 5_000,
          eager: () => true,
        });
        await sleep(20);
        await admin.client("PAUSE", 5_000, "WRITE");
        const enqueued = store
          .enqueue("q", { id: "x", payload: "p" }, { eager: true })
          .catch((e: unknown) => e);
        const [claim] = await waiting;
        const held = await waitFor("the held script", async () => {
          // EVALSHA, or EVAL on a server that has not seen the script yet.
          const line = ((await admin.client("LIST")) as string)
            .split("\n")
            .find((l) => / cmd=eval(sha)? /.test(l));
          return line ? /id=(\d+)/.exec(line)?.[1] : undefined;
        });
        await admin.client("KILL", "ID", held);
        await admin.client("UNPAUSE");
        expect(await enqueued).toBeInstanceOf(UnavailableError);
        await expect(claim!.recorded).rejects.toBeInstanceOf(UnavailableError);
        expect(await store.stats("q")).toEqual({ pending: 0, claimed: 0, delayed: 0 });
      } finally {
        await admin.client("UNPAUSE").catch(() => undefined);
        admin.disconnect();
        await store.close();
      }
    });
  });

  describe("server stopped and restarted (AOF)", () => {
    let aof: RedisServer;

    beforeAll(async () => {
      aof = await startRedisServer({ appendOnly: true });
    });

    afterAll(async () => {
      await aof?.dispose();
    });

    it("fails fast with UnavailableError while down, and carries on with the data after a restart", async () => {
      const prefix = `kiln-test-${randomUUID()}:`;
      const store = await RedisStore.open({ url: aof.url, prefix });
      try {
        await store.set("k", "v");
        await store.incr("n", 41);
        await store.listPush("l", ["a", "b"]);
        for (const id of ["x", "y", "z"]) await store.enqueue("q", { id, payload: `p-${id}` });
        const [held] = await store.claim(["q"], { owner: "agent-a", leaseMs: 60_000 });
        const token = await store.lock("leader", "agent-a", 60_000);
        const got: string[] = [];
        await store.subscribe("ch", (m) => got.push(m));
        // A blocked claim and a blocked pop are in flight when the server goes away.
        const blockedClaim = store
          .claim(["empty"], { owner: "agent-a", leaseMs: 1000, waitMs: 20_000 })
          .catch((e: unknown) => e);
        const blockedPop = store.listPop("empty-list", { waitMs: 20_000 }).catch((e: unknown) => e);
        await sleep(50);

        await aof.stop();
        let started = Date.now();
        await expect(store.get("k")).rejects.toBeInstanceOf(UnavailableError);
        await expect(store.enqueue("q", { id: "w", payload: "" })).rejects.toBeInstanceOf(
          UnavailableError,
        );
        await expect(
          store.claim(["q"], { owner: "agent-a", leaseMs: 1000 }),
        ).rejects.toBeInstanceOf(UnavailableError);
        const failure = await store.get("k").catch((e: unknown) => e);
        expect((failure as Error).message).toContain(aof.url.replace("redis://", ""));
        expect(Date.now() - started).toBeLessThan(2000);
        expect(await blockedPop).toBeInstanceOf(UnavailableError);
        expect(await blockedClaim).toBeInstanceOf(UnavailableError);
        expect(Date.now() - started).toBeLessThan(3000);

        await aof.start();
        started = Date.now();
        expect(
          await waitFor(
            "the store to reconnect",
            () => store.get("k").then((v) => v ?? undefined),
            10_000,
          ),
        ).toBe("v");
        expect(Date.now() - started).toBeLessThan(10_000);
        expect(await store.get("n")).toBe("41");
        expect(await store.listPop("l", { max: 10 })).toEqual(["a", "b"]);
        expect(await store.stats("q")).toEqual({ pending: 2, claimed: 1, delayed: 0 });
        expect(await store.lock("leader", "agent-b", 60_000)).toBeNull();
        expect(await store.lock("leader", "agent-a", 60_000)).toBe(token);
        const rest = await store.claim(["q"], { owner: "agent-a", leaseMs: 60_000, max: 10 });
        expect(rest.map((c) => c.id)).toEqual(["y", "z"]);
        expect(rest[0]!.fence).toBeGreaterThan(token!);
        expect(await store.complete(held!)).toBe(true);
        // The subscriber re-subscribed by itself.
        await waitFor(
          "the subscription to come back",
          async () => {
            await store.publish("ch", "again");
            return got.length > 0 ? true : undefined;
          },
          10_000,
        );
        // And blocking works again, woken as before.
        const waiting = store.claim(["q2"], { owner: "agent-a", leaseMs: 1000, waitMs: 10_000 });
        await sleep(20);
        await store.enqueue("q2", { id: "after", payload: "" });
        expect((await waiting).map((c) => c.id)).toEqual(["after"]);
      } finally {
        await store.close();
      }
    });
  });
});
