import { spawn } from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { afterEach, describe, expect, it } from "vitest";
import { InvalidError, UnavailableError } from "../../runtime/errors.js";
import { EmbeddedStore, LOG_FILE } from "../../runtime/store/embedded/index.js";
import { openStore } from "../../runtime/store/index.js";
import { storeContract } from "./contract.js";
import { FakeClock } from "./fake-clock.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const lease = { owner: "agent-1", leaseMs: 30_000 };

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), "kiln-store-"));
}

storeContract("embedded, memory-only", async () => {
  const store = await EmbeddedStore.open();
  return { store, cleanup: () => store.close() };
});

storeContract("embedded, durable", async () => {
  const dir = await tempDir();
  const store = await EmbeddedStore.open({ dir });
  return {
    store,
    async cleanup() {
      await store.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
});

describe("EmbeddedStore (embedded only)", () => {
  const dirs: string[] = [];
  const stores: EmbeddedStore[] = [];

  async function newDir(): Promise<string> {
    const dir = await tempDir();
    dirs.push(dir);
    return dir;
  }

  async function open(
    options: Parameters<typeof EmbeddedStore.open>[0] = {},
  ): Promise<EmbeddedStore> {
    const store = await EmbeddedStore.open(options);
    stores.push(store);
    return store;
  }

  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    for (const dir of dirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
  });

  it("openStore opens the embedded store", async () => {
    const store = await openStore({ kind: "embedded" });
    expect(store.kind).toBe("embedded");
    await store.set("k", "v");
    expect(await store.get("k")).toBe("v");
    await store.close();
  });

  it("reopen restores keys, lists, queues, locks and the fence counter", async () => {
    const dir = await newDir();
    const a = await EmbeddedStore.open({ dir });
    await a.set("plain", "1");
    await a.set("ttl", "2", { ttlMs: 60_000 });
    await a.set("gone", "3");
    await a.delete("gone");
    await a.incr("counter", 7);
    await a.listPush("list", ["x", "y", "z"]);
    await a.listPop("list");
    for (const id of ["a", "b", "c", "d"]) await a.enqueue("q", { id, payload: `p-${id}` });
    await a.enqueue("q", { id: "later", payload: "" }, { delayMs: 60_000 });
    const [claimA] = await a.claim(["q"], lease);
    await a.complete({ queue: "q", id: "a", fence: claimA!.fence });
    const [claimB] = await a.claim(["q"], lease);
    await a.release(
      { queue: "q", id: "b", fence: claimB!.fence },
      { front: false, payload: "p-b2" },
    );
    const token = (await a.lock("leader", "agent-1", 60_000))!;
    await a.close();

    const b = await open({ dir });
    expect(await b.getMany(["plain", "ttl", "gone", "counter"])).toEqual(["1", "2", null, "7"]);
    expect(await b.ttl("ttl")).toBeGreaterThan(50_000);
    expect(await b.listPop("list", { max: 10 })).toEqual(["y", "z"]);
    expect(await b.stats("q")).toEqual({ pending: 4, claimed: 0, delayed: 1 });
    const claims = await b.claim(["q"], { ...lease, max: 10 });
    expect(claims.map((c) => [c.id, c.payload, c.deliveries])).toEqual([
      ["c", "p-c", 0],
      ["d", "p-d", 0],
      ["b", "p-b2", 1],
    ]);
    expect(claims[0]!.fence).toBeGreaterThan(claimB!.fence);
    expect(await b.lock("leader", "agent-2", 60_000)).toBeNull();
    expect(await b.lock("leader", "agent-1", 60_000)).toBe(token);
    expect(await b.unlock("leader", "agent-1")).toBe(true);
    const next = (await b.lock("leader", "agent-2", 60_000))!;
    expect(next).toBeGreaterThan(token);
    expect(next).toBeGreaterThan(claims[2]!.fence);
  });

  it("claimed items go back to the front on reopen, with the lost delivery counted", async () => {
    const dir = await newDir();
    const a = await EmbeddedStore.open({ dir });
    for (const id of ["a", "b", "c"]) await a.enqueue("q", { id, payload: id });
    const held = await a.claim(["q"], { ...lease, max: 2 });
    await a.enqueue("q", { id: "d", payload: "d" });
    await a.close();

    const b = await open({ dir });
    expect(await b.stats("q")).toEqual({ pending: 4, claimed: 0, delayed: 0 });
    const claims = await b.claim(["q"], { ...lease, max: 10 });
    expect(claims.map((c) => [c.id, c.deliveries])).toEqual([
      ["a", 1],
      ["b", 1],
      ["c", 0],
      ["d", 0],
    ]);
    for (const old of held)
      expect(await b.complete({ queue: "q", id: old.id, fence: old.fence })).toBe(false);
    await b.close();

    // Reopening twice does not count the same lost delivery twice.
    const c = await open({ dir });
    const again = await c.claim(["q"], { ...lease, max: 10 });
    expect(again.map((x) => [x.id, x.deliveries])).toEqual([
      ["a", 2],
      ["b", 2],
      ["c", 1],
      ["d", 1],
    ]);
  });

  it("tolerates a torn last line and appends cleanly after it", async () => {
    const dir = await newDir();
    const a = await EmbeddedStore.open({ dir });
    await a.set("k", "v");
    await a.enqueue("q", { id: "x", payload: "" });
    await a.close();
    await fs.appendFile(path.join(dir, LOG_FILE), '{"op":"set","k":"torn","v":"xy');

    const b = await EmbeddedStore.open({ dir });
    expect(await b.get("k")).toBe("v");
    expect(await b.get("torn")).toBeNull();
    expect((await b.stats("q")).pending).toBe(1);
    await b.set("after", "ok");
    await b.close();

    const c = await open({ dir });
    expect(await c.getMany(["k", "torn", "after"])).toEqual(["v", null, "ok"]);
  });

  it("refuses a log with a bad line in the middle", async () => {
    const dir = await newDir();
    const a = await EmbeddedStore.open({ dir });
    await a.set("k", "v");
    await a.close();
    await fs.appendFile(path.join(dir, LOG_FILE), 'garbage\n{"op":"set","k":"k2","v":"v2"}\n');
    await expect(EmbeddedStore.open({ dir })).rejects.toThrow(/corrupt/);
  });

  it("compaction keeps the same state and shrinks the log", async () => {
    const dir = await newDir();
    const compactBytes = 32 * 1024;
    const a = await EmbeddedStore.open({ dir, compactBytes });
    await a.enqueue("q", { id: "claimed", payload: "c" });
    await a.enqueue("q", { id: "delayed", payload: "d" }, { delayMs: 60_000 });
    const [held] = await a.claim(["q"], lease);
    for (let i = 0; i < 5; i++) await a.enqueue("q", { id: `p${i}`, payload: `pay${i}` });
    await a.listPush("list", ["1", "2", "3"], { ttlMs: 60_000 });
    const token = (await a.lock("leader", "me", 60_000))!;
    const filler = "f".repeat(200);
    for (let i = 0; i < 2000; i++) {
      await a.set(`hot${i % 10}`, `${i}:${filler}`);
      if (i % 100 === 0) await a.incr("n", 1);
    }
    const size = (await fs.stat(path.join(dir, LOG_FILE))).size;
    // 2000 x ~230 bytes were written; compaction keeps the file near the live size.
    expect(size).toBeLessThan(2 * compactBytes);
    const files = await fs.readdir(dir);
    expect(files.filter((f) => f.endsWith(".tmp"))).toEqual([]);
    await a.close();

    const b = await open({ dir });
    for (let i = 0; i < 10; i++) expect(await b.get(`hot${i}`)).toBe(`${1990 + i}:${filler}`);
    expect(await b.get("n")).toBe("20");
    expect(await b.listPop("list", { max: 10 })).toEqual(["1", "2", "3"]);
    expect(await b.stats("q")).toEqual({ pending: 7, claimed: 0, delayed: 1 });
    expect(await b.lock("leader", "other", 60_000)).toBeNull();
    const claims = await b.claim(["q"], { ...lease, max: 10 });
    expect(claims.map((c) => [c.id, c.deliveries])).toEqual([
      ["claimed", 1],
      ["p0", 0],
      ["p1", 0],
      ["p2", 0],
      ["p3", 0],
      ["p4", 0],
    ]);
    expect(claims[0]!.fence).toBeGreaterThan(Math.max(held!.fence, token));
  });

  it("a second open of the same directory is refused", async () => {
    const dir = await newDir();
    await open({ dir });
    await expect(EmbeddedStore.open({ dir })).rejects.toBeInstanceOf(UnavailableError);
  });

  it("works with fsync", async () => {
    const dir = await newDir();
    const a = await EmbeddedStore.open({ dir, fsync: true });
    await Promise.all(Array.from({ length: 100 }, (_, i) => a.set(`k${i}`, String(i))));
    await a.close();
    const b = await open({ dir });
    expect(await b.get("k99")).toBe("99");
  });

  it("keys and lists share one namespace: a wrong-type access is an InvalidError", async () => {
    const store = await open();
    await store.set("s", "v");
    await store.listPush("l", ["a"]);
    await expect(store.listPush("s", ["a"])).rejects.toBeInstanceOf(InvalidError);
    await expect(store.get("l")).rejects.toBeInstanceOf(InvalidError);
    await expect(store.incr("l", 1)).rejects.toBeInstanceOf(InvalidError);
    await store.set("n", "abc");
    await expect(store.incr("n", 1)).rejects.toBeInstanceOf(InvalidError);
    await expect(store.claim(["q"], { owner: "a", leaseMs: 0 })).rejects.toBeInstanceOf(
      InvalidError,
    );
  });

  describe("with a fake clock", () => {
    it("a lease lapses on time with nobody calling the store, waking a blocked claimer", async () => {
      const clock = new FakeClock();
      const store = await open({ clock });
      await store.enqueue("q", { id: "x", payload: "" });
      const [first] = await store.claim(["q"], { owner: "a", leaseMs: 1000 });
      let woken: unknown = null;
      void store
        .claim(["q"], { owner: "b", leaseMs: 1000, waitMs: 60_000 })
        .then((c) => (woken = c));
      clock.advance(999);
      await new Promise((resolve) => setImmediate(resolve));
      expect(woken).toBeNull();
      clock.advance(1);
      await new Promise((resolve) => setImmediate(resolve));
      expect(woken).toMatchObject([{ id: "x", deliveries: 1 }]);
      expect(await store.complete({ queue: "q", id: "x", fence: first!.fence })).toBe(false);
    });

    it("keys expire by the sweep without being read", async () => {
      const clock = new FakeClock();
      const dir = await newDir();
      const store = await open({ clock, dir });
      await store.set("k", "v", { ttlMs: 1000 });
      await store.listPush("l", ["a"], { ttlMs: 1000 });
      clock.advance(1000);
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      const log = await fs.readFile(path.join(dir, LOG_FILE), "utf8");
      expect(log).toContain('{"op":"del","k":"k"}');
      expect(log).toContain('{"op":"del","k":"l"}');
    });

    it("a list pushed again after it expired starts empty, after a reopen too", async () => {
      const clock = new FakeClock();
      const dir = await newDir();
      const a = await EmbeddedStore.open({ clock, dir });
      await a.listPush("l", ["old"], { ttlMs: 1000 });
      clock.advance(1000);
      expect(await a.listPush("l", ["new"])).toBe(1);
      expect(await a.ttl("l")).toBeNull();
      await a.close();
      const b = await open({ clock, dir });
      expect(await b.listPop("l", { max: 10 })).toEqual(["new"]);
    });

    it("ttl reports the remaining time", async () => {
      const clock = new FakeClock();
      const store = await open({ clock });
      await store.set("k", "v", { ttlMs: 1000 });
      clock.advance(400);
      expect(await store.ttl("k")).toBe(600);
      clock.advance(600);
      expect(await store.ttl("k")).toBeNull();
    });

    it("many delays ending at once are all handled, a bounded number per tick", async () => {
      const clock = new FakeClock();
      const store = await open({ clock });
      await Promise.all(
        Array.from({ length: 5000 }, (_, i) =>
          store.enqueue("q", { id: `i${i}`, payload: "" }, { delayMs: 1000 }),
        ),
      );
      expect(await store.stats("q")).toEqual({ pending: 5000, claimed: 0, delayed: 5000 });
      clock.advance(1000);
      expect(await store.stats("q")).toEqual({ pending: 5000, claimed: 0, delayed: 0 });
      const claims = await store.claim(["q"], { ...lease, max: 5000 });
      expect(claims.map((c) => c.id)).toEqual(Array.from({ length: 5000 }, (_, i) => `i${i}`));
    });

    it("dict entries: 7 days idle expire, a read refreshes, a fixed ttl wins; deadlines survive a reopen", async () => {
      const clock = new FakeClock();
      const dir = await newDir();
      const week = 7 * 24 * 3600 * 1000;
      const a = await EmbeddedStore.open({ clock, dir });
      await a.hashSet(
        "d",
        [
          ["read", "r"],
          ["idle", "i"],
        ],
        { idleMs: week },
      );
      await a.hashSet("d", [["fixed", "f"]], { idleMs: week, ttlMs: 3 * 24 * 3600 * 1000 });
      clock.advance(2 * 24 * 3600 * 1000);
      expect(await a.hashGet("d", "read", { idleMs: week })).toBe("r");
      expect(await a.hashGet("d", "fixed", { idleMs: week })).toBe("f");
      clock.advance(1 * 24 * 3600 * 1000);
      expect(await a.hashGet("d", "fixed")).toBeNull(); // its 3-day ttl, reads or not
      await a.close();
      const b = await open({ clock, dir });
      clock.advance(4 * 24 * 3600 * 1000 + 1); // 7 days after the write, 5 after the read
      expect(await b.hashLength("d")).toBe(1);
      expect(await b.hashGet("d", "idle")).toBeNull();
      expect(await b.hashGet("d", "read")).toBe("r");
      clock.advance(2 * 24 * 3600 * 1000);
      expect(await b.hashLength("d")).toBe(0);
    });

    it("dict reads log a refresh only when it moves the deadline by 1 % of idleMs", async () => {
      const clock = new FakeClock();
      const dir = await newDir();
      const store = await open({ clock, dir });
      await store.hashSet("d", [["k", "v"]], { idleMs: 1_000_000 });
      const size = async () => (await fs.stat(path.join(dir, LOG_FILE))).size;
      const before = await size();
      for (let i = 0; i < 50; i++) {
        clock.advance(100);
        await store.hashGet("d", "k", { idleMs: 1_000_000 });
      }
      expect(await size()).toBe(before); // 5 s of reads: under 1 % (10 s)
      clock.advance(10_000);
      await store.hashGet("d", "k", { idleMs: 1_000_000 });
      expect(await size()).toBeGreaterThan(before);
    });

    it("partitions expire by the clock with nobody calling; waiters on other partitions stay", async () => {
      const clock = new FakeClock();
      const store = await open({ clock });
      await store.partitionPush("g", "a", ["1"], { ttlMs: 1000 });
      await store.partitionPush("g", "b", ["2"], { ttlMs: 5000 });
      clock.advance(1000);
      expect(await store.partitionStats("g")).toEqual({ partitions: 1, items: 1 });
      expect(await store.partitionPush("g", "c", ["3"], { maxPartitions: 2 })).toEqual({
        ok: true,
        length: 1,
      });
    });

    it("reopen and compaction keep hashes (with deadlines) and partitions (with expiry, in order)", async () => {
      const clock = new FakeClock();
      const dir = await newDir();
      const a = await EmbeddedStore.open({ clock, dir, compactBytes: 16 * 1024 });
      await a.hashSet(
        "d",
        Array.from({ length: 1500 }, (_, i) => [`k${i}`, `v${i}`] as [string, string]),
        { idleMs: 60_000 },
      );
      await a.hashSet("d", [["fixed", "f"]], { ttlMs: 30_000 });
      for (let i = 0; i < 1000; i += 2) await a.hashDelete("d", `k${i}`);
      await a.partitionPush("g", "p", ["1", "2", "3"], { ttlMs: 60_000 });
      await a.partitionPop("g", "p");
      await a.partitionPush("g", "", ["x"]);
      for (let i = 0; i < 300; i++) await a.set("churn", "y".repeat(200));
      await a.close();
      expect((await fs.stat(path.join(dir, LOG_FILE))).size).toBeLessThan(200 * 1024);
      const b = await open({ clock, dir });
      expect(await b.hashLength("d")).toBe(1001);
      expect(await b.hashGet("d", "k999")).toBe("v999");
      expect(await b.hashGet("d", "k0")).toBeNull();
      expect(await b.partitionRange("g", "p", 0, 10)).toEqual(["2", "3"]);
      expect(await b.partitionPop("g", "")).toEqual(["x"]);
      clock.advance(30_000);
      expect(await b.hashGet("d", "fixed")).toBeNull();
      clock.advance(30_000);
      expect(await b.hashLength("d")).toBe(0);
      expect(await b.partitionLength("g", "p")).toBe(0);
      // The scan cursor goes on in insertion order after a reopen.
      await b.hashSet(
        "s",
        Array.from({ length: 30 }, (_, i) => [`f${i}`, "v"] as [string, string]),
      );
      const first = await b.hashScan("s", "0", 10);
      await b.close();
      const c = await open({ clock, dir });
      const rest: string[] = [];
      let cursor = first.cursor;
      while (cursor !== "0") {
        const page = await c.hashScan("s", cursor, 10);
        rest.push(...page.entries.map(([f]) => f));
        cursor = page.cursor;
      }
      expect([...first.entries.map(([f]) => f), ...rest]).toEqual(
        Array.from({ length: 30 }, (_, i) => `f${i}`),
      );
    });

    it("locks expire by the clock and re-locking by the owner keeps the token", async () => {
      const clock = new FakeClock();
      const store = await open({ clock });
      const a = (await store.lock("l", "a", 1000))!;
      clock.advance(900);
      expect(await store.lock("l", "a", 1000)).toBe(a);
      clock.advance(900);
      expect(await store.lock("l", "b", 1000)).toBeNull();
      clock.advance(100);
      const b = (await store.lock("l", "b", 1000))!;
      expect(b).toBeGreaterThan(a);
    });
  });

  it("25,000 enqueue + claim + complete cycles in memory take a few seconds at most", async () => {
    const store = await open();
    const started = performance.now();
    // Half interleaved one by one, half with a standing backlog of 12,500 items.
    for (let i = 0; i < 12_500; i++) {
      expect(
        await store.enqueue(
          "q",
          { id: `a${i}`, payload: "p" },
          { maxPending: 2000, maxTotal: 25_000 },
        ),
      ).toEqual({ ok: true });
      const [claim] = await store.claim(["q"], lease);
      expect(await store.complete(claim!)).toBe(true);
    }
    for (let i = 0; i < 12_500; i++)
      await store.enqueue("q", { id: `b${i}`, payload: "p" }, { maxTotal: 25_000 });
    for (;;) {
      const claims = await store.claim(["q"], { ...lease, max: 100 });
      if (claims.length === 0) break;
      for (const claim of claims) await store.complete(claim);
    }
    expect(await store.stats("q")).toEqual({ pending: 0, claimed: 0, delayed: 0 });
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it("survives kill -9 right after the calls resolved", async () => {
    const dir = await newDir();
    const storeDir = path.join(dir, "store");
    await build({
      entryPoints: [path.join(repoRoot, "runtime/store/embedded/index.ts")],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      outfile: path.join(dir, "store.mjs"),
      logLevel: "silent",
    });
    const n = 1000;
    await fs.writeFile(
      path.join(dir, "child.mjs"),
      `import { EmbeddedStore } from "./store.mjs";
const [dir, n] = [process.argv[2], Number(process.argv[3])];
const store = await EmbeddedStore.open({ dir });
for (let i = 0; i < n; i += 50) {
  const ops = [];
  for (let j = i; j < Math.min(n, i + 50); j++) {
    ops.push(store.set("k" + j, "v" + j), store.enqueue("q", { id: "i" + j, payload: "p" + j }));
  }
  await Promise.all(ops);
}
process.stdout.write("done\\n");
// Keep writing until killed, so the kill may land mid-write.
for (let j = 0; ; j++) await store.set("extra" + (j % 100), "x".repeat(1000));
`,
    );
    const child = spawn(process.execPath, [path.join(dir, "child.mjs"), storeDir, String(n)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`child did not finish: ${stderr}`)),
          20_000,
        );
        let out = "";
        child.stdout.on("data", (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes("done\n")) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.on("exit", (code) => {
          clearTimeout(timer);
          reject(new Error(`child exited with ${code}: ${stderr}`));
        });
      });
    } finally {
      child.kill("SIGKILL");
      await exited;
    }

    const store = await open({ dir: storeDir });
    const keys = Array.from({ length: n }, (_, i) => `k${i}`);
    expect(await store.getMany(keys)).toEqual(keys.map((_, i) => `v${i}`));
    expect(await store.stats("q")).toEqual({ pending: n, claimed: 0, delayed: 0 });
    const claims = await store.claim(["q"], { ...lease, max: n });
    expect(claims.map((c) => c.id)).toEqual(Array.from({ length: n }, (_, i) => `i${i}`));
  });
});
