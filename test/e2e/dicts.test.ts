/** Dicts end to end: declared, named and ephemeral dicts through the public client, from handlers too; limits. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Dict,
  InvalidError,
  NotFoundError,
  PayloadTooLargeError,
  ResourceExhaustedError,
  canonicalKey,
  type Kiln,
} from "../../runtime/client/index.js";
import { keys } from "../../runtime/agent/inputs.js";
import { DATA_APP, deployData } from "./data-harness.js";
import { startAgent, type Harness } from "./harness.js";
import { waitFor } from "../support/wait.js";

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

describe("a declared dict", () => {
  it("put, get, contains, len, pop, update, items, clear, info", async () => {
    const d = kiln.dict<string, number>(DATA_APP, "cache");
    await d.clear();
    expect(await d.get("a")).toBeUndefined();
    expect(await d.get("a", -1)).toBe(-1);
    expect(await d.put("a", 1)).toBe(true);
    expect(await d.put("a", 2, { skipIfExists: true })).toBe(false);
    expect(await d.get("a")).toBe(1);
    expect(await d.contains("a")).toBe(true);
    expect(await d.contains("b")).toBe(false);
    await d.update(
      new Map([
        ["b", 2],
        ["c", 3],
      ]),
    );
    await d.update({ d: 4 });
    await d.update([["e", 5]]);
    expect(await d.len()).toBe(5);
    expect(await d.pop("e")).toBe(5);
    expect(await d.pop("e")).toBeUndefined();
    expect(await d.pop("e", 0)).toBe(0);
    const items: [string, number][] = [];
    for await (const item of d.items()) items.push(item);
    expect(items.sort()).toEqual([
      ["a", 1],
      ["b", 2],
      ["c", 3],
      ["d", 4],
    ]);
    const keysSeen: string[] = [];
    for await (const key of d) keysSeen.push(key);
    expect(keysSeen.sort()).toEqual(["a", "b", "c", "d"]);
    const values: number[] = [];
    for await (const value of d.values()) values.push(value);
    expect(values.sort()).toEqual([1, 2, 3, 4]);
    expect(await d.info()).toMatchObject({
      ref: "app:data-e2e:cache",
      kind: "app",
      app: DATA_APP,
      name: "cache",
      len: 4,
      maxEntries: 10_000_000,
      inactivityExpiryS: 604_800,
    });
    expect(await d.clear()).toBe(4);
    expect(await d.len()).toBe(0);
  });

  it("keys and values are any serializable value; equal keys match whatever their order", async () => {
    const d = kiln.dict<unknown, unknown>(DATA_APP, "cache");
    const value = {
      when: new Date("2024-01-02T03:04:05Z"),
      tags: new Set(["x", "y"]),
      big: 2n ** 70n,
      bytes: Buffer.from("hi"),
      nothing: undefined,
    };
    await d.put({ user: 7, region: "eu" }, value);
    expect(await d.get({ region: "eu", user: 7 })).toEqual(value);
    await d.put(
      new Map<unknown, unknown>([
        ["b", 2],
        ["a", 1],
      ]),
      "map",
    );
    expect(
      await d.get(
        new Map<unknown, unknown>([
          ["a", 1],
          ["b", 2],
        ]),
      ),
    ).toBe("map");
    await d.put(new Set([3, 1, 2]), "set");
    expect(await d.get(new Set([1, 2, 3]))).toBe("set");
    await d.put(-0, "zero");
    expect(await d.get(0)).toBe("zero");
    await d.put([1, "1"], "array");
    expect(await d.get(["1", 1])).toBeUndefined();
    expect(canonicalKey({ b: [1, { d: 1, c: 2 }], a: null })).toBe(
      canonicalKey({ a: null, b: [1, { c: 2, d: 1 }] }),
    );
    const shared = { x: 1 };
    expect(canonicalKey([shared, shared])).toBe(canonicalKey([{ x: 1 }, { x: 1 }]));
    // Keys come back as values.
    const found: unknown[] = [];
    for await (const key of d.keys()) found.push(key);
    expect(found).toContainEqual({ region: "eu", user: 7 });
  });

  it("a value you got is a copy: mutating it changes nothing until you put it back", async () => {
    const d = kiln.dict<string, { n: number; list: number[] }>(DATA_APP, "cache");
    await d.put("obj", { n: 1, list: [1] });
    const got = (await d.get("obj"))!;
    got.n = 2;
    got.list.push(2);
    expect(await d.get("obj")).toEqual({ n: 1, list: [1] });
    await d.put("obj", got);
    expect(await d.get("obj")).toEqual({ n: 2, list: [1, 2] });
  });

  it("put with ttlS expires the entry", async () => {
    const d = kiln.dict<string, string>(DATA_APP, "cache");
    await d.put("short", "lived", { ttlS: 0.3 });
    expect(await d.get("short")).toBe("lived");
    await waitFor(
      "the entry to expire",
      async () => ((await d.get("short")) === undefined ? true : undefined),
      5_000,
    );
    await expect(d.put("k", "v", { ttlS: -1 })).rejects.toBeInstanceOf(InvalidError);
  });

  it("handlers reach the same dict through connect()", async () => {
    await kiln.function(DATA_APP, "dictPut").remote({ from: "handler" }, [1, 2, 3]);
    expect(await kiln.dict(DATA_APP, "cache").get({ from: "handler" })).toEqual([1, 2, 3]);
    await kiln.dict(DATA_APP, "cache").put("from-client", new Date(0));
    expect(await kiln.function(DATA_APP, "dictGet").remote("from-client")).toEqual(new Date(0));
    expect(await kiln.function(DATA_APP, "dictGet").remote("never-put")).toBe("missing");
  });

  it("limits: value and key sizes, maxEntries, bad keys; nothing half-written", async () => {
    const d = kiln.dict<unknown, unknown>(DATA_APP, "cache");
    const big = "x".repeat(1024 * 1024 + 1);
    await expect(d.put("big", big)).rejects.toBeInstanceOf(PayloadTooLargeError);
    await expect(d.put("big", big)).rejects.toThrow(/1\.0 MiB limit \(MAX_DICT_VALUE_BYTES\)/);
    await expect(d.put("k".repeat(70_000), 1)).rejects.toThrow(/MAX_DICT_KEY_BYTES/);
    await expect(d.put(() => 1, 1)).rejects.toBeInstanceOf(InvalidError);
    await expect(d.put(Symbol("s"), 1)).rejects.toBeInstanceOf(InvalidError);
    const cyclic: Record<string, unknown> = {};
    cyclic["self"] = cyclic;
    await expect(d.put(cyclic, 1)).rejects.toThrow(/cycles/);
    // The agent checks too (a caller that skips the client).
    const raw = (body: unknown) =>
      kiln.http.request("POST", `/v1/dicts/${encodeURIComponent("app:data-e2e:cache")}/put`, {
        body,
      });
    await expect(raw({ key: canonicalKey("big"), value: JSON.stringify(big) })).rejects.toThrow(
      /MAX_DICT_VALUE_BYTES/,
    );
    await expect(raw({ key: "", value: "1" })).rejects.toBeInstanceOf(InvalidError);
    expect(await d.contains("big")).toBe(false);

    const small = kiln.dict<string, number>(DATA_APP, "small");
    await small.clear();
    await small.update([
      ["a", 1],
      ["b", 2],
    ]);
    const refused = await small
      .update([
        ["c", 3],
        ["d", 4],
      ])
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ResourceExhaustedError);
    expect((refused as ResourceExhaustedError).message).toMatch(/limit of 3 \(maxEntries\)/);
    expect((refused as ResourceExhaustedError).details).toMatchObject({ limit: 3, count: 2 });
    expect(await small.len()).toBe(2);
    expect(await small.contains("c")).toBe(false);
    await small.put("a", 10); // an overwrite is not a new entry
    await small.put("c", 3);
    await expect(small.put("d", 4)).rejects.toBeInstanceOf(ResourceExhaustedError);
  });

  it("an undeclared dict or a missing app is a NotFoundError naming what exists", async () => {
    await expect(kiln.dict(DATA_APP, "nope").get("k")).rejects.toThrow(
      /declares no dict 'nope'; its dicts: cache, embeddings, small, stats/,
    );
    await expect(kiln.dict("no-such-app", "cache").get("k")).rejects.toBeInstanceOf(NotFoundError);
    expect(() => kiln.dict(DATA_APP, "bad:name")).toThrow(InvalidError);
  });

  it("a redeploy without a dict drops its entries; with it again, it starts empty", async () => {
    await kiln.dict(DATA_APP, "stats").put("kept?", true);
    await deployData(kiln, (spec) => delete (spec["dicts"] as Record<string, unknown>)["stats"]);
    await expect(kiln.dict(DATA_APP, "stats").get("kept?")).rejects.toBeInstanceOf(NotFoundError);
    await deployData(kiln);
    expect(await kiln.dict(DATA_APP, "stats").len()).toBe(0);
  });
});

describe("named dicts", () => {
  it("need createIfMissing; are shared by name; deleteDict removes them", async () => {
    await expect(kiln.dict("shared-e2e").get("k")).rejects.toThrow(
      /does not exist: create it with/,
    );
    const a = kiln.dict<string, string>("shared-e2e", { createIfMissing: true, maxEntries: 50 });
    await a.put("k", "v");
    const b = kiln.dict<string, string>("shared-e2e");
    expect(await b.get("k")).toBe("v");
    expect(await b.info()).toMatchObject({
      kind: "named",
      name: "shared-e2e",
      maxEntries: 50,
      len: 1,
    });
    expect(await kiln.deleteDict("shared-e2e")).toBe(true);
    expect(await kiln.deleteDict("shared-e2e")).toBe(false);
    await expect(b.get("k")).rejects.toBeInstanceOf(NotFoundError);
    const again = kiln.dict<string, string>("shared-e2e", { createIfMissing: true });
    expect(await again.len()).toBe(0);
    await kiln.deleteDict("shared-e2e");
  });
});

describe("ephemeral dicts", () => {
  it("are deleted on close", async () => {
    const d = await kiln.ephemeralDict<string, number>();
    await d.put("x", 1);
    expect(await d.get("x")).toBe(1);
    expect(d.ref).toMatch(/^ephemeral:/);
    await d.close();
    await d.close();
    await expect(d.get("x")).rejects.toBeInstanceOf(NotFoundError);
    expect(await h.agent.store.hashLength(keys.dictHash(d.ref))).toBe(0);
  });

  it("stay while their owner heartbeats, and are deleted once it stops", async () => {
    const kept = await kiln.ephemeralDict<string, number>({ ttlMs: 3000 });
    await kept.put("x", 1);
    // An owner that never heartbeats: created over raw HTTP.
    const { ref } = await kiln.http.request<{ ref: string }>("POST", "/v1/ephemeral", {
      body: { kind: "dict", ttlMs: 3000 },
    });
    const orphan = new Dict<string, number>(kiln.http, ref);
    await orphan.put("y", 2);
    await waitFor(
      "the orphan to expire",
      async () =>
        (await orphan.get("y").then(
          () => undefined,
          (e: unknown) => e,
        )) ?? undefined,
      8_000,
    );
    await expect(orphan.get("y")).rejects.toThrow(/sent no heartbeat/);
    expect(await kept.get("x")).toBe(1);
    // Swept now, unless the agent's own periodic sweep got there first (it did, once, on a busy box).
    await h.agent.ephemerals.sweep();
    expect(await h.agent.store.hashLength(keys.dictHash(ref))).toBe(0);
    expect(await kept.get("x")).toBe(1);
    await kept.close();
  });
});
