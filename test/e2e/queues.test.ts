/** Queues end to end: partitions, blocking gets, limits, named and ephemeral queues, exactly-once delivery across processes. */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  InvalidError,
  NotFoundError,
  PayloadTooLargeError,
  ResourceExhaustedError,
  type Kiln,
} from "../../runtime/client/index.js";
import { DATA_APP, deployData } from "./data-harness.js";
import { ensureBuilt, fixturesDir, startAgent, type Harness } from "./harness.js";

let h: Harness;
let kiln: Kiln;

beforeAll(async () => {
  h = await startAgent();
  kiln = h.kiln;
  await deployData(kiln);
});

afterAll(async () => {
  await h?.close();
});

describe("a declared queue", () => {
  it("FIFO per partition: put, putMany, get, getMany, len, total, clear, iterate, info", async () => {
    const q = kiln.queue<unknown>(DATA_APP, "jobs");
    await q.clear({ all: true });
    await q.put(1);
    await q.putMany([2, { three: 3 }, new Date(4)]);
    await q.putMany(["a", "b"], { partition: "letters" });
    expect(await q.len()).toBe(4);
    expect(await q.len({ partition: "letters" })).toBe(2);
    expect(await q.len({ total: true })).toBe(6);
    const peek: unknown[] = [];
    for await (const item of q.iterate()) peek.push(item);
    expect(peek).toEqual([1, 2, { three: 3 }, new Date(4)]);
    expect(await q.get()).toBe(1);
    expect(await q.getMany(2)).toEqual([2, { three: 3 }]);
    expect(await q.get({ partition: "letters" })).toBe("a");
    expect(await q.info()).toMatchObject({
      ref: "app:data-e2e:jobs",
      kind: "app",
      partitions: 2,
      items: 2,
      maxPartitionItems: 5000,
      maxPartitions: 100_000,
      partitionTtlS: 86_400,
    });
    expect(await q.clear({ partition: "letters" })).toBe(1);
    expect(await q.clear({ all: true })).toBe(1);
    expect(await q.get({ block: false })).toBeUndefined();
    expect(await q.getMany(5, { block: false })).toEqual([]);
    await expect(q.put(undefined)).rejects.toBeInstanceOf(InvalidError);
  });

  it("a blocked get returns as soon as an item arrives, and after timeoutMs when none does", async () => {
    const q = kiln.queue<string>(DATA_APP, "jobs");
    let started = Date.now();
    expect(await q.get({ timeoutMs: 300, partition: "empty" })).toBeUndefined();
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    started = Date.now();
    const waiting = q.get({ partition: "wake", timeoutMs: 20_000 });
    await new Promise((r) => setTimeout(r, 200));
    const putAt = Date.now();
    await kiln.queue<string>(DATA_APP, "jobs").put("now", { partition: "wake" });
    expect(await waiting).toBe("now");
    expect(Date.now() - putAt).toBeLessThan(500);
  });

  it("handlers put and get through connect()", async () => {
    expect(await kiln.function(DATA_APP, "queueProduce").remote([1, 2, 3], "from-handler")).toBe(3);
    expect(await kiln.queue(DATA_APP, "jobs").getMany(10, { partition: "from-handler" })).toEqual([
      1, 2, 3,
    ]);
    const consuming = kiln.function(DATA_APP, "queueConsume").remote(2, 10_000);
    await new Promise((r) => setTimeout(r, 200));
    await kiln.queue(DATA_APP, "jobs").putMany(["x", "y"]);
    expect(await consuming).toEqual(["x", "y"]);
  });

  it("limits: items per partition, partitions, partition keys, item size; putMany is all or nothing", async () => {
    const tiny = kiln.queue<number>(DATA_APP, "tiny");
    await tiny.clear({ all: true });
    await tiny.putMany([1, 2, 3]);
    const refused = await tiny.putMany([4, 5, 6]).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ResourceExhaustedError);
    expect((refused as Error).message).toMatch(
      /holds 3 items; 3 more would pass its limit of 5 \(maxPartitionItems\)/,
    );
    expect(await tiny.len()).toBe(3);
    await tiny.putMany([4, 5]);
    await expect(tiny.put(6)).rejects.toBeInstanceOf(ResourceExhaustedError);
    await tiny.put(1, { partition: "second" });
    await expect(tiny.put(1, { partition: "third" })).rejects.toThrow(
      /limit of 2 \(maxPartitions\)/,
    );
    await tiny.clear({ partition: "second" });
    await tiny.put(1, { partition: "third" });

    const q = kiln.queue(DATA_APP, "jobs");
    await expect(q.put(1, { partition: "p".repeat(65) })).rejects.toThrow(/1-64 characters/);
    await expect(q.put(1, { partition: "" })).rejects.toBeInstanceOf(InvalidError);
    await expect(q.put("x".repeat(1024 * 1024 + 10))).rejects.toBeInstanceOf(PayloadTooLargeError);
    await expect(
      kiln.http.request("POST", `/v1/queues/${encodeURIComponent("app:data-e2e:jobs")}/put`, {
        body: { items: [JSON.stringify("x".repeat(1024 * 1024 + 10))] },
      }),
    ).rejects.toThrow(/MAX_QUEUE_ITEM_BYTES/);
    // The default cap: 5,000 items in one partition.
    await q.clear({ partition: "full" });
    await q.putMany(
      Array.from({ length: 5000 }, (_, i) => i),
      { partition: "full" },
    );
    await expect(q.put(5000, { partition: "full" })).rejects.toThrow(
      /limit of 5000 \(maxPartitionItems\)/,
    );
    await expect(q.putMany(Array.from({ length: 5001 }, (_, i) => i))).rejects.toBeInstanceOf(
      InvalidError,
    );
    expect(await q.clear({ partition: "full" })).toBe(5000);
  });

  it("a missing queue is a NotFoundError", async () => {
    await expect(kiln.queue(DATA_APP, "nope").get({ block: false })).rejects.toThrow(
      /declares no queue 'nope'; its queues: jobs, pending-docs, ticks, tiny/,
    );
    await expect(kiln.queue("never-made").get({ block: false })).rejects.toBeInstanceOf(
      NotFoundError,
    );
  });
});

describe("named and ephemeral queues", () => {
  it("named: createIfMissing, shared, deleteQueue", async () => {
    const a = kiln.queue<string>("work-e2e", { createIfMissing: true, maxPartitionItems: 10 });
    await a.put("hello");
    expect(await kiln.queue<string>("work-e2e").get()).toBe("hello");
    expect(await a.info()).toMatchObject({ kind: "named", maxPartitionItems: 10 });
    expect(await kiln.deleteQueue("work-e2e")).toBe(true);
    await expect(a.get({ block: false })).rejects.toBeInstanceOf(NotFoundError);
  });

  it("ephemeral: deleted on close", async () => {
    const q = await kiln.ephemeralQueue<number>();
    await q.putMany([1, 2]);
    expect(await q.len()).toBe(2);
    await q.close();
    await expect(q.len()).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe("exactly-once delivery", () => {
  it("20 getters in separate processes, blocked on one queue, each item goes to exactly one", async () => {
    ensureBuilt();
    const q = kiln.queue<string>(DATA_APP, "jobs");
    await q.clear({ all: true });
    const getters = Array.from({ length: 20 }, () => {
      const child = spawn(
        process.execPath,
        [join(fixturesDir, "queue-getter.mjs"), h.agent.url, h.agent.token, DATA_APP, "jobs"],
        {
          stdio: ["ignore", "pipe", "inherit"],
        },
      );
      let out = "";
      child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
      const ready = new Promise<void>((resolve) => {
        const check = (): void => {
          if (out.includes("ready\n")) resolve();
          else setTimeout(check, 10);
        };
        check();
      });
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
    await new Promise((r) => setTimeout(r, 300)); // let them block
    const items = Array.from({ length: 400 }, (_, i) => `item-${i}`);
    for (let i = 0; i < items.length; i += 40) await q.putMany(items.slice(i, i + 40));
    await q.putMany(Array.from({ length: 20 }, () => "STOP"));
    const taken = (await Promise.all(getters.map((g) => g.done))).flat();
    expect(taken).toHaveLength(400);
    expect(new Set(taken)).toEqual(new Set(items));
    expect(await q.len()).toBe(0);
  });
});
