/**
 * The store conformance suite: every `Store` implementation passes these tests (embedded and, with
 * a server, Redis). It uses the interface only, and a fresh namespace per test
 * (`test-<uuid>:`), so a shared server works and tests do not see each other's keys.
 *
 * Timing: short real TTLs / leases (tens to hundreds of ms). Conditions are polled with a deadline;
 * a fixed sleep is used only to give something the chance to (wrongly) happen, never as the
 * thing a test waits for.
 */
import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { InvalidError, UnavailableError } from "../../runtime/errors.js";
import type { Claim, ClaimRef, Store } from "../../runtime/store/store.js";
import { waitFor } from "../support/wait.js";

export interface StoreFixture {
  store: Store;
  cleanup(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const ref = (claim: Claim): ClaimRef => ({ queue: claim.queue, id: claim.id, fence: claim.fence });

export function storeContract(name: string, factory: () => Promise<StoreFixture>): void {
  describe(`Store contract: ${name}`, () => {
    let fixture: StoreFixture;
    let store: Store;
    /** The test's namespace. */
    let ns: string;
    const lease = { owner: "agent-1", leaseMs: 30_000 };

    beforeEach(async () => {
      fixture = await factory();
      store = fixture.store;
      ns = `test-${randomUUID()}:`;
    });

    afterEach(async () => {
      await fixture.cleanup();
    });

    it("reports its kind", () => {
      expect(typeof store.kind).toBe("string");
      expect(store.kind.length).toBeGreaterThan(0);
    });

    describe("keys", () => {
      it("sets, gets, overwrites and deletes", async () => {
        const key = `${ns}a`;
        expect(await store.get(key)).toBeNull();
        expect(await store.set(key, "1")).toBe(true);
        expect(await store.get(key)).toBe("1");
        expect(await store.set(key, "two")).toBe(true);
        expect(await store.get(key)).toBe("two");
        expect(await store.delete(key)).toBe(true);
        expect(await store.delete(key)).toBe(false);
        expect(await store.get(key)).toBeNull();
      });

      it("keeps values exactly (empty, unicode, newlines, large)", async () => {
        const values = ["", "héllo ✓ 🚀", 'line1\nline2\r\n"quoted"\\', "x".repeat(256 * 1024)];
        for (const [i, value] of values.entries()) await store.set(`${ns}${i}`, value);
        expect(await store.getMany(values.map((_, i) => `${ns}${i}`))).toEqual(values);
      });

      it("ifAbsent sets only a missing key", async () => {
        const key = `${ns}once`;
        expect(await store.set(key, "first", { ifAbsent: true })).toBe(true);
        expect(await store.set(key, "second", { ifAbsent: true })).toBe(false);
        expect(await store.get(key)).toBe("first");
      });

      it("ifAbsent: exactly one of many concurrent setters wins", async () => {
        const key = `${ns}race`;
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => store.set(key, String(i), { ifAbsent: true })),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
        expect(await store.get(key)).toBe(String(results.indexOf(true)));
      });

      it("expires a key after its ttl and reports the remaining ttl", async () => {
        const key = `${ns}ttl`;
        await store.set(key, "v", { ttlMs: 80 });
        const remaining = await store.ttl(key);
        expect(remaining).not.toBeNull();
        expect(remaining!).toBeGreaterThan(0);
        expect(remaining!).toBeLessThanOrEqual(80);
        await waitFor("key to expire", async () => (await store.get(key)) === null, 3000);
        expect(await store.ttl(key)).toBeNull();
        expect(await store.keys(ns)).toEqual([]);
        // An expired key is absent: ifAbsent succeeds.
        expect(await store.set(key, "again", { ifAbsent: true })).toBe(true);
      });

      it("ttl is null without a ttl or without the key; set without ttl clears an old one", async () => {
        const key = `${ns}k`;
        expect(await store.ttl(key)).toBeNull();
        await store.set(key, "v");
        expect(await store.ttl(key)).toBeNull();
        await store.set(key, "v", { ttlMs: 60_000 });
        expect(await store.ttl(key)).toBeGreaterThan(50_000);
        await store.set(key, "w");
        expect(await store.ttl(key)).toBeNull();
      });

      it("getMany returns values in order, null for missing", async () => {
        await store.set(`${ns}a`, "A");
        await store.set(`${ns}c`, "C");
        expect(await store.getMany([`${ns}c`, `${ns}b`, `${ns}a`, `${ns}a`])).toEqual([
          "C",
          null,
          "A",
          "A",
        ]);
        expect(await store.getMany([])).toEqual([]);
      });

      it("keys(prefix) lists matching keys in lexicographic order", async () => {
        for (const k of ["b", "a/2", "a/10", "a/1", "c"]) await store.set(`${ns}${k}`, "x");
        await store.set(`${ns}gone`, "x");
        await store.delete(`${ns}gone`);
        expect(await store.keys(`${ns}a/`)).toEqual([`${ns}a/1`, `${ns}a/10`, `${ns}a/2`]);
        expect(await store.keys(ns)).toEqual([
          `${ns}a/1`,
          `${ns}a/10`,
          `${ns}a/2`,
          `${ns}b`,
          `${ns}c`,
        ]);
        expect(await store.keys(`${ns}zzz`)).toEqual([]);
      });
    });

    describe("counters", () => {
      it("increments from zero, by negative amounts too, as a readable string", async () => {
        const key = `${ns}n`;
        expect(await store.incr(key, 5)).toBe(5);
        expect(await store.incr(key, -7)).toBe(-2);
        expect(await store.get(key)).toBe("-2");
        await store.set(`${ns}m`, "40");
        expect(await store.incr(`${ns}m`, 2)).toBe(42);
      });

      it("refuses past max / min and changes nothing", async () => {
        const key = `${ns}n`;
        expect(await store.incr(key, 3, { max: 3 })).toBe(3);
        expect(await store.incr(key, 1, { max: 3 })).toBeNull();
        expect(await store.get(key)).toBe("3");
        expect(await store.incr(key, -3, { min: 0 })).toBe(0);
        expect(await store.incr(key, -1, { min: 0 })).toBeNull();
        expect(await store.get(key)).toBe("0");
        expect(await store.incr(`${ns}fresh`, 10, { max: 5 })).toBeNull();
        expect(await store.get(`${ns}fresh`)).toBeNull();
      });

      it("200 concurrent increments with max 50: exactly 50 succeed", async () => {
        const key = `${ns}slots`;
        const results = await Promise.all(
          Array.from({ length: 200 }, () => store.incr(key, 1, { max: 50 })),
        );
        const granted = results.filter((r) => r !== null);
        expect(granted).toHaveLength(50);
        expect(new Set(granted).size).toBe(50);
        expect(await store.get(key)).toBe("50");
      });

      it("keeps the key's ttl", async () => {
        const key = `${ns}n`;
        await store.set(key, "1", { ttlMs: 60_000 });
        await store.incr(key, 1);
        expect(await store.ttl(key)).toBeGreaterThan(50_000);
      });
    });

    describe("work queues", () => {
      it("claims in FIFO order with increasing fences and deliveries 0", async () => {
        const q = `${ns}q`;
        for (let i = 0; i < 5; i++)
          expect(await store.enqueue(q, { id: `i${i}`, payload: `p${i}` })).toEqual({ ok: true });
        const first = await store.claim([q], lease);
        expect(first).toHaveLength(1); // max defaults to 1
        const rest = await store.claim([q], { ...lease, max: 10 });
        const all = [...first, ...rest];
        expect(all.map((c) => c.id)).toEqual(["i0", "i1", "i2", "i3", "i4"]);
        expect(all.map((c) => c.payload)).toEqual(["p0", "p1", "p2", "p3", "p4"]);
        expect(all.every((c) => c.queue === q && c.deliveries === 0)).toBe(true);
        for (let i = 1; i < all.length; i++)
          expect(all[i]!.fence).toBeGreaterThan(all[i - 1]!.fence);
        expect(await store.claim([q], lease)).toEqual([]);
      });

      it("respects max", async () => {
        const q = `${ns}q`;
        for (let i = 0; i < 5; i++) await store.enqueue(q, { id: `i${i}`, payload: "" });
        expect(await store.claim([q], { ...lease, max: 3 })).toHaveLength(3);
        expect(await store.claim([q], { ...lease, max: 3 })).toHaveLength(2);
      });

      it("tries several queues in order; the first non-empty wins", async () => {
        const [a, b, c] = [`${ns}a`, `${ns}b`, `${ns}c`];
        await store.enqueue(b, { id: "b1", payload: "" });
        await store.enqueue(b, { id: "b2", payload: "" });
        await store.enqueue(c, { id: "c1", payload: "" });
        const fromB = await store.claim([a, b, c], { ...lease, max: 5 });
        expect(fromB.map((x) => [x.queue, x.id])).toEqual([
          [b, "b1"],
          [b, "b2"],
        ]);
        await store.enqueue(a, { id: "a1", payload: "" });
        const fromA = await store.claim([a, b, c], { ...lease, max: 5 });
        expect(fromA.map((x) => x.id)).toEqual(["a1"]);
        const fromC = await store.claim([a, b, c], { ...lease, max: 5 });
        expect(fromC.map((x) => x.id)).toEqual(["c1"]);
      });

      it("enqueue of an id already pending or claimed is a no-op", async () => {
        const q = `${ns}q`;
        await store.enqueue(q, { id: "x", payload: "original" });
        expect(await store.enqueue(q, { id: "x", payload: "replaced" })).toEqual({ ok: true });
        expect(await store.stats(q)).toEqual({ pending: 1, claimed: 0, delayed: 0 });
        const [claim] = await store.claim([q], lease);
        expect(claim!.payload).toBe("original");
        expect(await store.enqueue(q, { id: "x", payload: "again" })).toEqual({ ok: true });
        expect(await store.stats(q)).toEqual({ pending: 0, claimed: 1, delayed: 0 });
        expect(await store.complete(ref(claim!))).toBe(true);
        // Completed: the id is free again.
        await store.enqueue(q, { id: "x", payload: "new" });
        const [next] = await store.claim([q], lease);
        expect(next).toMatchObject({ id: "x", payload: "new", deliveries: 0 });
      });

      it("refuses past maxPending with the count", async () => {
        const q = `${ns}q`;
        for (let i = 0; i < 3; i++)
          expect(await store.enqueue(q, { id: `i${i}`, payload: "" }, { maxPending: 3 })).toEqual({
            ok: true,
          });
        expect(await store.enqueue(q, { id: "i3", payload: "" }, { maxPending: 3 })).toEqual({
          ok: false,
          reason: "pending",
          count: 3,
        });
        // An id already present is still a no-op, not a refusal.
        expect(await store.enqueue(q, { id: "i0", payload: "" }, { maxPending: 3 })).toEqual({
          ok: true,
        });
        await store.claim([q], lease);
        expect(await store.enqueue(q, { id: "i3", payload: "" }, { maxPending: 3 })).toEqual({
          ok: true,
        });
        expect(await store.stats(q)).toEqual({ pending: 3, claimed: 1, delayed: 0 });
      });

      it("refuses past maxTotal (pending + claimed) with the count", async () => {
        const q = `${ns}q`;
        for (let i = 0; i < 3; i++)
          await store.enqueue(q, { id: `i${i}`, payload: "" }, { maxTotal: 3 });
        const claims = await store.claim([q], { ...lease, max: 2 });
        expect(await store.enqueue(q, { id: "i3", payload: "" }, { maxTotal: 3 })).toEqual({
          ok: false,
          reason: "total",
          count: 3,
        });
        expect(
          await store.enqueue(q, { id: "i3", payload: "" }, { maxPending: 10, maxTotal: 3 }),
        ).toEqual({
          ok: false,
          reason: "total",
          count: 3,
        });
        await store.complete(ref(claims[0]!));
        expect(await store.enqueue(q, { id: "i3", payload: "" }, { maxTotal: 3 })).toEqual({
          ok: true,
        });
      });

      it("enqueueMany queues in order and stops at the first item a cap refuses", async () => {
        const q = `${ns}q`;
        await store.enqueue(q, { id: "b", payload: "old" });
        const items = ["a", "b", "c", "d", "e"].map((id) => ({ id, payload: id }));
        // "b" is already there: accepted, unchanged; the cap of 3 pending refuses "d" and stops there.
        expect(await store.enqueueMany(q, items, { maxPending: 3 })).toEqual({
          accepted: 3,
          refused: { reason: "pending", count: 3 },
        });
        const claims = await store.claim([q], { ...lease, max: 10 });
        expect(claims.map((c) => [c.id, c.payload])).toEqual([
          ["b", "old"],
          ["a", "a"],
          ["c", "c"],
        ]);
        expect(await store.enqueueMany(q, [{ id: "f", payload: "" }], { maxTotal: 3 })).toEqual({
          accepted: 0,
          refused: { reason: "total", count: 3 },
        });
        expect(await store.enqueueMany(q, [])).toEqual({ accepted: 0 });
        expect(
          await store.enqueueMany(q, [
            { id: "g", payload: "" },
            { id: "h", payload: "" },
          ]),
        ).toEqual({ accepted: 2 });
        expect(await store.stats(q)).toEqual({ pending: 2, claimed: 3, delayed: 0 });
      });

      it("enqueueMany hands items to a blocked claimer, and delayMs delays them all", async () => {
        const q = `${ns}q`;
        const waiting = store.claim([q], { ...lease, max: 2, waitMs: 10_000 });
        await sleep(30);
        expect(
          await store.enqueueMany(
            q,
            ["a", "b", "c"].map((id) => ({ id, payload: id })),
          ),
        ).toEqual({ accepted: 3 });
        expect((await waiting).map((c) => c.id)).toEqual(["a", "b"]);
        expect(
          await store.enqueueMany(
            q,
            [
              { id: "d", payload: "" },
              { id: "e", payload: "" },
            ],
            { delayMs: 100 },
          ),
        ).toEqual({ accepted: 2 });
        expect(await store.stats(q)).toEqual({ pending: 3, claimed: 2, delayed: 2 });
        let later: Claim[] = [];
        await waitFor(
          "the delayed items",
          async () =>
            (later = [...later, ...(await store.claim([q], { ...lease, max: 10 }))]).length === 3,
          3000,
        );
        expect(later.map((c) => c.id)).toEqual(["c", "d", "e"]);
      });

      it("records are set with an accepted enqueue, and not with a refused one", async () => {
        const q = `${ns}q`;
        const first = await store.enqueue(
          q,
          { id: "a", payload: "A" },
          { maxPending: 1, records: [{ key: `${ns}call:a`, value: "record a" }] },
        );
        expect(first).toEqual({ ok: true });
        expect(await store.get(`${ns}call:a`)).toBe("record a");
        expect(await store.ttl(`${ns}call:a`)).toBeNull();
        const refused = await store.enqueue(
          q,
          { id: "b", payload: "B" },
          { maxPending: 1, records: [{ key: `${ns}call:b`, value: "record b" }] },
        );
        expect(refused).toEqual({ ok: false, reason: "pending", count: 1 });
        expect(await store.get(`${ns}call:b`)).toBeNull();
        // The same through a waiting claimer (the store may enqueue and claim in one step), and with a delay.
        expect((await store.claim([q], { ...lease, waitMs: 0 })).map((c) => c.id)).toEqual(["a"]);
        const waiting = store.claim([q], { ...lease, waitMs: 5_000 });
        await sleep(20);
        await store.enqueue(
          q,
          { id: "c", payload: "C" },
          { records: [{ key: `${ns}call:c`, value: "record c" }] },
        );
        expect((await waiting).map((c) => c.id)).toEqual(["c"]);
        expect(await store.get(`${ns}call:c`)).toBe("record c");
        await store.enqueue(
          q,
          { id: "d", payload: "D" },
          { delayMs: 50, records: [{ key: `${ns}call:d`, value: "record d" }] },
        );
        expect(await store.get(`${ns}call:d`)).toBe("record d");
      });

      it("an eager enqueue reaches an eager waiting claimer as a claim it can settle once recorded; with no such claimer it queues", async () => {
        const q = `${ns}q`;
        const waiting = store.claim([q], { ...lease, waitMs: 5_000, eager: () => true });
        await sleep(20);
        const enqueued = store.enqueue(
          q,
          { id: "a", payload: "A" },
          { eager: true, records: [{ key: `${ns}call:a`, value: "record a" }] },
        );
        const [claim] = await waiting;
        expect(claim).toMatchObject({ queue: q, id: "a", payload: "A", deliveries: 0 });
        // A store that hands over early says when the claim is recorded; until then it has no fence.
        await claim!.recorded;
        expect(claim!.recorded).toBeUndefined();
        expect(claim!.fence).toBeGreaterThan(0);
        expect(await enqueued).toEqual({ ok: true });
        expect(await store.get(`${ns}call:a`)).toBe("record a");
        expect(await store.stats(q)).toEqual({ pending: 0, claimed: 1, delayed: 0 });
        expect(await store.renew([claim!], 30_000)).toEqual([true]);
        expect(await store.settle(claim!, { guard: { key: `${ns}result:a`, value: "done" } })).toBe(
          "applied",
        );
        expect(await store.stats(q)).toEqual({ pending: 0, claimed: 0, delayed: 0 });
        // Nobody eager is waiting: the item is queued as any other, and a plain claim of it is recorded already.
        expect(await store.enqueue(q, { id: "b", payload: "B" }, { eager: true })).toEqual({
          ok: true,
        });
        expect(await store.stats(q)).toEqual({ pending: 1, claimed: 0, delayed: 0 });
        const [plain] = await store.claim([q], { ...lease, waitMs: 0, eager: () => true });
        expect(plain).toMatchObject({ id: "b", deliveries: 0 });
        expect(plain!.recorded).toBeUndefined();
      });

      it("caps hold under concurrent enqueues", async () => {
        const q = `${ns}q`;
        const results = await Promise.all(
          Array.from({ length: 100 }, (_, i) =>
            store.enqueue(q, { id: `i${i}`, payload: "" }, { maxPending: 25 }),
          ),
        );
        expect(results.filter((r) => r.ok)).toHaveLength(25);
        expect((await store.stats(q)).pending).toBe(25);
      });

      it("delayMs makes an item claimable only after the delay", async () => {
        const q = `${ns}q`;
        const started = Date.now();
        await store.enqueue(q, { id: "later", payload: "" }, { delayMs: 150 });
        await store.enqueue(q, { id: "now", payload: "" });
        expect(await store.stats(q)).toEqual({ pending: 2, claimed: 0, delayed: 1 });
        expect((await store.claim([q], { ...lease, max: 5 })).map((c) => c.id)).toEqual(["now"]);
        let claims: Claim[] = [];
        await waitFor(
          "delayed item",
          async () => (claims = await store.claim([q], lease)).length > 0,
          3000,
        );
        expect(Date.now() - started).toBeGreaterThanOrEqual(140);
        expect(claims[0]!.id).toBe("later");
        expect(await store.stats(q)).toEqual({ pending: 0, claimed: 2, delayed: 0 });
      });

      it("a blocking claim is woken by an enqueue", async () => {
        const q = `${ns}q`;
        const started = Date.now();
        const waiting = store.claim([`${ns}other`, q], { ...lease, waitMs: 10_000 });
        await sleep(50);
        await store.enqueue(q, { id: "x", payload: "hello" });
        const claims = await waiting;
        expect(claims.map((c) => [c.queue, c.id, c.payload])).toEqual([[q, "x", "hello"]]);
        expect(Date.now() - started).toBeLessThan(3000);
      });

      it("blocked claimers are served one item each, in order", async () => {
        const q = `${ns}q`;
        const waiters = [0, 1, 2].map(() => store.claim([q], { ...lease, waitMs: 10_000 }));
        await sleep(30);
        for (let i = 0; i < 3; i++) await store.enqueue(q, { id: `i${i}`, payload: "" });
        const got = await Promise.all(waiters);
        expect(got.map((claims) => claims.length)).toEqual([1, 1, 1]);
        expect(new Set(got.flat().map((c) => c.id)).size).toBe(3);
      });

      it("an enqueue refused at maxTotal leaves a blocked claimer waiting; the next accepted one reaches it", async () => {
        const q = `${ns}q`;
        await store.enqueue(q, { id: "held", payload: "" });
        const [held] = await store.claim([q], lease);
        const waiting = store.claim([q], { ...lease, waitMs: 10_000 });
        await sleep(30);
        expect(await store.enqueue(q, { id: "refused", payload: "" }, { maxTotal: 1 })).toEqual({
          ok: false,
          reason: "total",
          count: 1,
        });
        await sleep(30);
        expect(await store.stats(q)).toEqual({ pending: 0, claimed: 1, delayed: 0 });
        expect(await store.complete(ref(held!))).toBe(true);
        expect(await store.enqueue(q, { id: "accepted", payload: "p" }, { maxTotal: 1 })).toEqual({
          ok: true,
        });
        expect((await waiting).map((c) => [c.id, c.payload, c.deliveries])).toEqual([
          ["accepted", "p", 0],
        ]);
        expect(await store.stats(q)).toEqual({ pending: 0, claimed: 1, delayed: 0 });
      });

      it("an item enqueued while a claimer waits is claimed once, with the queue's FIFO order kept", async () => {
        const q = `${ns}q`;
        const waiting = store.claim([q], { ...lease, max: 10, waitMs: 10_000 });
        await sleep(30);
        await Promise.all(["a", "b", "c"].map((id) => store.enqueue(q, { id, payload: id })));
        const first = await waiting;
        expect(first.length).toBeGreaterThan(0);
        const rest = await store.claim([q], { ...lease, max: 10 });
        const ids = [...first, ...rest].map((c) => c.id);
        expect(ids).toEqual(["a", "b", "c"]);
        expect(await store.stats(q)).toEqual({ pending: 0, claimed: 3, delayed: 0 });
      });

      it("a blocking claim is woken when a delay ends", async () => {
        const q = `${ns}q`;
        const started = Date.now();
        await store.enqueue(q, { id: "x", payload: "" }, { delayMs: 100 });
        const claims = await store.claim([q], { ...lease, waitMs: 5000 });
        expect(claims.map((c) => c.id)).toEqual(["x"]);
        const elapsed = Date.now() - started;
        expect(elapsed).toBeGreaterThanOrEqual(90);
        expect(elapsed).toBeLessThan(3000);
      });

      it("a blocking claim returns [] after waitMs", async () => {
        const started = Date.now();
        expect(await store.claim([`${ns}empty`], { ...lease, waitMs: 100 })).toEqual([]);
        const elapsed = Date.now() - started;
        expect(elapsed).toBeGreaterThanOrEqual(90);
        expect(elapsed).toBeLessThan(3000);
      });

      it("an abort signal ends a blocking claim early; an aborted one returns at once", async () => {
        const q = `${ns}q`;
        const controller = new AbortController();
        const started = Date.now();
        const waiting = store.claim([q], { ...lease, waitMs: 20_000, signal: controller.signal });
        setTimeout(() => controller.abort(), 30);
        expect(await waiting).toEqual([]);
        expect(Date.now() - started).toBeLessThan(3000);
        expect(
          await store.claim([q], { ...lease, waitMs: 20_000, signal: AbortSignal.abort() }),
        ).toEqual([]);
        // The aborted waiter took nothing: a later enqueue stays claimable.
        await store.enqueue(q, { id: "x", payload: "" });
        expect((await store.claim([q], lease)).map((c) => c.id)).toEqual(["x"]);
      });

      it("a lapsed lease redelivers with deliveries + 1; the stale fence is rejected", async () => {
        const q = `${ns}q`;
        await store.enqueue(q, { id: "x", payload: "p" });
        const [first] = await store.claim([q], { owner: "a", leaseMs: 100 });
        expect(first!.deliveries).toBe(0);
        let second: Claim[] = [];
        await waitFor(
          "redelivery",
          async () => (second = await store.claim([q], { owner: "b", leaseMs: 30_000 })).length > 0,
          3000,
        );
        expect(second[0]).toMatchObject({ id: "x", payload: "p", deliveries: 1 });
        expect(second[0]!.fence).toBeGreaterThan(first!.fence);
        expect(await store.complete(ref(first!))).toBe(false);
        expect(await store.renew([ref(first!)], 30_000)).toEqual([false]);
        expect(await store.release(ref(first!))).toBe(false);
        expect(await store.stats(q)).toEqual({ pending: 0, claimed: 1, delayed: 0 });
        expect(await store.complete(ref(second[0]!))).toBe(true);
        expect(await store.stats(q)).toEqual({ pending: 0, claimed: 0, delayed: 0 });
      });

      it("a lapsed lease goes back to the front and wakes a blocked claimer", async () => {
        const q = `${ns}q`;
        await store.enqueue(q, { id: "x", payload: "" });
        const [first] = await store.claim([q], { owner: "a", leaseMs: 100 });
        const started = Date.now();
        const claims = await store.claim([q], { owner: "b", leaseMs: 30_000, waitMs: 5000 });
        expect(claims.map((c) => [c.id, c.deliveries])).toEqual([["x", 1]]);
        expect(Date.now() - started).toBeLessThan(3000);
        expect(await store.complete(ref(first!))).toBe(false);
        await store.enqueue(q, { id: "y", payload: "" });
        const [y] = await store.claim([q], { owner: "c", leaseMs: 100 });
        await store.enqueue(q, { id: "z", payload: "" });
        // y lapses and goes before z.
        let order: string[] = [];
        await waitFor("both items pending again", async () => {
          if ((await store.stats(q)).pending < 2) return false;
          order = (await store.claim([q], { ...lease, max: 2 })).map((c) => c.id);
          return true;
        });
        expect(y!.id).toBe("y");
        expect(order).toEqual(["y", "z"]);
      });

      it("renew keeps a claim alive past its original lease", async () => {
        const q = `${ns}q`;
        await store.enqueue(q, { id: "x", payload: "" });
        // Renewed every 40 ms for over twice the lease: a lease far above the renewal interval, so
        // a machine that stalls this process for a while does not lapse it between two renewals.
        const [claim] = await store.claim([q], { owner: "a", leaseMs: 600 });
        const until = Date.now() + 1_300;
        while (Date.now() < until) {
          expect(await store.renew([ref(claim!)], 600)).toEqual([true]);
          expect(await store.claim([q], { owner: "b", leaseMs: 30_000 })).toEqual([]);
          await sleep(40);
        }
        expect(await store.stats(q)).toEqual({ pending: 0, claimed: 1, delayed: 0 });
        expect(await store.complete(ref(claim!))).toBe(true);
      });

      it("renew answers per claim", async () => {
        const q = `${ns}q`;
        await store.enqueue(q, { id: "a", payload: "" });
        await store.enqueue(q, { id: "b", payload: "" });
        const [a, b] = await store.claim([q], { ...lease, max: 2 });
        await store.complete(ref(b!));
        expect(
          await store.renew(
            [
              ref(a!),
              ref(b!),
              { queue: q, id: "nope", fence: 1 },
              { ...ref(a!), fence: a!.fence + 1000 },
            ],
            30_000,
          ),
        ).toEqual([true, false, false, false]);
      });

      it("release puts an item back at the front by default, or at the back", async () => {
        const q = `${ns}q`;
        for (const id of ["a", "b", "c"]) await store.enqueue(q, { id, payload: id });
        const [a] = await store.claim([q], lease);
        expect(await store.release(ref(a!))).toBe(true);
        const [again] = await store.claim([q], lease);
        expect(again).toMatchObject({ id: "a", deliveries: 1 });
        expect(await store.release(ref(again!), { front: false })).toBe(true);
        expect(
          (await store.claim([q], { ...lease, max: 3 })).map((c) => [c.id, c.deliveries]),
        ).toEqual([
          ["b", 0],
          ["c", 0],
          ["a", 2],
        ]);
        // The old claim is stale after a release.
        expect(await store.complete(ref(a!))).toBe(false);
      });

      it("release can replace the payload and delay the item", async () => {
        const q = `${ns}q`;
        await store.enqueue(q, { id: "x", payload: "attempt=1" });
        const [claim] = await store.claim([q], lease);
        const started = Date.now();
        expect(await store.release(ref(claim!), { delayMs: 150, payload: "attempt=2" })).toBe(true);
        expect(await store.stats(q)).toEqual({ pending: 1, claimed: 0, delayed: 1 });
        expect(await store.claim([q], lease)).toEqual([]);
        const [next] = await store.claim([q], { ...lease, waitMs: 5000 });
        expect(Date.now() - started).toBeGreaterThanOrEqual(140);
        expect(next).toMatchObject({ id: "x", payload: "attempt=2", deliveries: 1 });
      });

      it("remove takes an item out whether pending or claimed", async () => {
        const q = `${ns}q`;
        await store.enqueue(q, { id: "p", payload: "" });
        await store.enqueue(q, { id: "c", payload: "" });
        await store.enqueue(q, { id: "d", payload: "" }, { delayMs: 60_000 });
        const [p] = await store.claim([q], lease);
        expect(p!.id).toBe("p");
        expect(await store.remove(q, "c")).toBe("pending");
        expect(await store.remove(q, "d")).toBe("pending");
        expect(await store.remove(q, "p")).toBe("claimed");
        expect(await store.remove(q, "p")).toBeNull();
        expect(await store.remove(`${ns}nowhere`, "p")).toBeNull();
        expect(await store.complete(ref(p!))).toBe(false);
        expect(await store.stats(q)).toEqual({ pending: 0, claimed: 0, delayed: 0 });
      });

      it("stats counts pending (with delayed) and claimed; zero for an unknown queue", async () => {
        const q = `${ns}q`;
        expect(await store.stats(q)).toEqual({ pending: 0, claimed: 0, delayed: 0 });
        await store.enqueue(q, { id: "a", payload: "" });
        await store.enqueue(q, { id: "b", payload: "" });
        await store.enqueue(q, { id: "c", payload: "" }, { delayMs: 60_000 });
        await store.claim([q], lease);
        expect(await store.stats(q)).toEqual({ pending: 2, claimed: 1, delayed: 1 });
      });

      it("dropQueue drops everything and reports how many", async () => {
        const q = `${ns}q`;
        for (let i = 0; i < 4; i++) await store.enqueue(q, { id: `i${i}`, payload: "" });
        await store.enqueue(q, { id: "d", payload: "" }, { delayMs: 60_000 });
        const [claim] = await store.claim([q], lease);
        await store.enqueue(`${ns}other`, { id: "keep", payload: "" });
        expect(await store.dropQueue(q)).toBe(5);
        expect(await store.stats(q)).toEqual({ pending: 0, claimed: 0, delayed: 0 });
        expect(await store.complete(ref(claim!))).toBe(false);
        expect(await store.dropQueue(q)).toBe(0);
        expect((await store.stats(`${ns}other`)).pending).toBe(1);
      });

      it("a payload survives unchanged", async () => {
        const q = `${ns}q`;
        const payload = JSON.stringify({ s: "héllo\n✓", n: [1, 2, 3] }) + "x".repeat(100_000);
        await store.enqueue(q, { id: "x", payload });
        expect((await store.claim([q], lease))[0]!.payload).toBe(payload);
      });

      it("property: any interleaving of enqueue/claim/complete/settle/release loses and duplicates nothing", async () => {
        type Op =
          | { t: "enqueue" }
          | { t: "enqueueMany"; n: number }
          | { t: "settle"; i: number }
          | { t: "duplicate"; i: number }
          | { t: "claim"; max: number; wait: boolean }
          | { t: "complete"; i: number }
          | { t: "release"; i: number; front: boolean }
          | { t: "stale"; i: number };
        const op: fc.Arbitrary<Op> = fc.oneof(
          { arbitrary: fc.constant<Op>({ t: "enqueue" }), weight: 3 },
          fc.record({ t: fc.constant("enqueueMany" as const), n: fc.integer({ min: 1, max: 3 }) }),
          { arbitrary: fc.record({ t: fc.constant("settle" as const), i: fc.nat() }), weight: 2 },
          fc.record({ t: fc.constant("duplicate" as const), i: fc.nat() }),
          {
            arbitrary: fc.record({
              t: fc.constant("claim" as const),
              max: fc.integer({ min: 1, max: 4 }),
              wait: fc.boolean(),
            }),
            weight: 4,
          },
          { arbitrary: fc.record({ t: fc.constant("complete" as const), i: fc.nat() }), weight: 3 },
          fc.record({ t: fc.constant("release" as const), i: fc.nat(), front: fc.boolean() }),
          fc.record({ t: fc.constant("stale" as const), i: fc.nat() }),
        );
        let run = 0;
        await fc.assert(
          fc.asyncProperty(
            fc.array(fc.array(op, { minLength: 1, maxLength: 4 }), { maxLength: 25 }),
            async (batches) => {
              const q = `${ns}prop-${run++}`;
              const out = `${q}:out`;
              const enqueued: string[] = [];
              const completed: string[] = [];
              const settled: string[] = [];
              let held: Claim[] = [];
              const stale: ClaimRef[] = [];
              let next = 0;
              const exec = async (o: Op): Promise<void> => {
                switch (o.t) {
                  case "enqueue": {
                    const id = `i${next++}`;
                    enqueued.push(id);
                    expect(await store.enqueue(q, { id, payload: id })).toEqual({ ok: true });
                    return;
                  }
                  case "enqueueMany": {
                    const ids = Array.from({ length: o.n }, () => `i${next++}`);
                    enqueued.push(...ids);
                    expect(
                      await store.enqueueMany(
                        q,
                        ids.map((id) => ({ id, payload: id })),
                      ),
                    ).toEqual({ accepted: o.n });
                    return;
                  }
                  case "settle": {
                    if (held.length === 0) return;
                    const c = held[o.i % held.length]!;
                    const result = await store.settle(ref(c), {
                      push: [{ key: out, values: [c.id] }],
                    });
                    if (result === "applied") {
                      completed.push(c.id);
                      settled.push(c.id);
                      held = held.filter((h) => h !== c);
                    } else expect(result).toBe("stale");
                    return;
                  }
                  case "duplicate": {
                    if (enqueued.length === 0) return;
                    const id = enqueued[o.i % enqueued.length]!;
                    // Present: a no-op. Completed (or held, so maybe being completed in this batch):
                    // the id may be free again, and would come back as a new item; skip those.
                    if (completed.includes(id) || held.some((c) => c.id === id)) return;
                    expect(await store.enqueue(q, { id, payload: "dup" })).toEqual({ ok: true });
                    return;
                  }
                  case "claim": {
                    // A waiting claim blocks briefly: an enqueue in the same batch may hand it items in its own step.
                    const claims = await store.claim([q], {
                      ...lease,
                      max: o.max,
                      waitMs: o.wait ? 30 : 0,
                    });
                    for (const c of claims) expect(c.payload).toBe(c.id);
                    held.push(...claims);
                    return;
                  }
                  case "complete": {
                    if (held.length === 0) return;
                    const c = held[o.i % held.length]!;
                    if (await store.complete(ref(c))) {
                      completed.push(c.id);
                      held = held.filter((h) => h !== c);
                    }
                    return;
                  }
                  case "release": {
                    if (held.length === 0) return;
                    const c = held[o.i % held.length]!;
                    if (await store.release(ref(c), { front: o.front })) {
                      held = held.filter((h) => h !== c);
                      stale.push(ref(c));
                    }
                    return;
                  }
                  case "stale": {
                    if (stale.length === 0) return;
                    expect(await store.complete(stale[o.i % stale.length]!)).toBe(false);
                    return;
                  }
                }
              };
              // Ops of a batch run concurrently, batches one after the other.
              for (const batch of batches) await Promise.all(batch.map(exec));

              const stats = await store.stats(q);
              expect(stats.claimed).toBe(held.length);
              expect(stats.pending + stats.claimed).toBe(enqueued.length - completed.length);
              const drained: string[] = [];
              for (;;) {
                const claims = await store.claim([q], { ...lease, max: 100 });
                if (claims.length === 0) break;
                drained.push(...claims.map((c) => c.id));
              }
              const present = [...held.map((c) => c.id), ...drained];
              expect(new Set(completed).size).toBe(completed.length);
              expect(new Set(present).size).toBe(present.length);
              expect(present.filter((id) => completed.includes(id))).toEqual([]);
              expect([...completed, ...present].sort()).toEqual([...enqueued].sort());
              // Each settled item wrote its effects exactly once.
              expect((await store.listPop(out, { max: 1000 })).sort()).toEqual([...settled].sort());
              await store.dropQueue(q);
            },
          ),
          { numRuns: 60 },
        );
      });
    });

    describe("lists", () => {
      it("pushes and pops from the head, with max and length", async () => {
        const key = `${ns}l`;
        expect(await store.listPush(key, ["a", "b"])).toBe(2);
        expect(await store.listPush(key, ["c", "d", "e"])).toBe(5);
        expect(await store.listLength(key)).toBe(5);
        expect(await store.listPop(key)).toEqual(["a"]);
        expect(await store.listPop(key, { max: 3 })).toEqual(["b", "c", "d"]);
        expect(await store.listPop(key, { max: 10 })).toEqual(["e"]);
        expect(await store.listPop(key)).toEqual([]);
        expect(await store.listLength(key)).toBe(0);
        expect(await store.listLength(`${ns}never`)).toBe(0);
      });

      it("a blocking pop is woken by a push", async () => {
        const key = `${ns}l`;
        const started = Date.now();
        const waiting = store.listPop(key, { waitMs: 10_000, max: 10 });
        await sleep(50);
        await store.listPush(key, ["x", "y"]);
        expect(await waiting).toEqual(["x", "y"]);
        expect(Date.now() - started).toBeLessThan(3000);
        expect(await store.listLength(key)).toBe(0);
      });

      it("a blocking pop returns [] after waitMs or on abort", async () => {
        const key = `${ns}l`;
        let started = Date.now();
        expect(await store.listPop(key, { waitMs: 100 })).toEqual([]);
        expect(Date.now() - started).toBeGreaterThanOrEqual(90);
        const controller = new AbortController();
        started = Date.now();
        const waiting = store.listPop(key, { waitMs: 20_000, signal: controller.signal });
        setTimeout(() => controller.abort(), 30);
        expect(await waiting).toEqual([]);
        expect(Date.now() - started).toBeLessThan(3000);
        await store.listPush(key, ["kept"]);
        expect(await store.listPop(key)).toEqual(["kept"]);
      });

      it("expires ttlMs after the last push", async () => {
        const key = `${ns}l`;
        await store.listPush(key, ["a"], { ttlMs: 600 });
        await sleep(300);
        const lastPush = Date.now();
        await store.listPush(key, ["b"], { ttlMs: 600 });
        await sleep(400); // past the first push's expiry, well before the second's
        if (Date.now() - lastPush < 550) expect(await store.listLength(key)).toBe(2);
        await waitFor("list to expire", async () => (await store.listLength(key)) === 0, 3000);
        expect(await store.listPop(key)).toEqual([]);
      });

      it("delete removes a list", async () => {
        const key = `${ns}l`;
        await store.listPush(key, ["a", "b"]);
        expect(await store.delete(key)).toBe(true);
        expect(await store.listLength(key)).toBe(0);
      });
    });

    describe("hashes", () => {
      it("sets, gets, overwrites and deletes fields; length counts live fields", async () => {
        const h = `${ns}h`;
        expect(await store.hashGet(h, "a")).toBeNull();
        expect(await store.hashLength(h)).toBe(0);
        expect(
          await store.hashSet(h, [
            ["a", "1"],
            ["b", "2"],
          ]),
        ).toEqual({ ok: true, written: 2 });
        expect(await store.hashGet(h, "a")).toBe("1");
        expect(await store.hashSet(h, [["a", "one"]])).toEqual({ ok: true, written: 1 });
        expect(await store.hashGet(h, "a")).toBe("one");
        expect(await store.hashLength(h)).toBe(2);
        expect(await store.hashDelete(h, "a")).toBe("one");
        expect(await store.hashDelete(h, "a")).toBeNull();
        expect(await store.hashGet(h, "a")).toBeNull();
        expect(await store.hashLength(h)).toBe(1);
        expect(await store.hashSet(h, [])).toEqual({ ok: true, written: 0 });
      });

      it("keeps fields and values exactly (empty, unicode, separators, large)", async () => {
        const h = `${ns}h`;
        const entries: [string, string][] = [
          ["", "empty field"],
          ["héllo ✓ 🚀", ""],
          ['a:b\n"c"\\', "line1\nline2\r\n"],
          ["big", "x".repeat(1024 * 1024)],
        ];
        await store.hashSet(h, entries);
        for (const [field, value] of entries) expect(await store.hashGet(h, field)).toBe(value);
      });

      it("lives apart from keys: the same name as a key and as a hash", async () => {
        const name = `${ns}same`;
        await store.set(name, "key");
        await store.hashSet(name, [["f", "field"]]);
        expect(await store.get(name)).toBe("key");
        expect(await store.hashGet(name, "f")).toBe("field");
        expect(await store.keys(ns)).toEqual([name]);
        await store.delete(name);
        expect(await store.hashGet(name, "f")).toBe("field");
      });

      it("a later duplicate wins; with ifAbsent only absent fields are written, the first duplicate wins", async () => {
        const h = `${ns}h`;
        expect(
          await store.hashSet(h, [
            ["a", "1"],
            ["a", "2"],
          ]),
        ).toEqual({ ok: true, written: 1 });
        expect(await store.hashGet(h, "a")).toBe("2");
        expect(
          await store.hashSet(
            h,
            [
              ["a", "x"],
              ["b", "first"],
              ["b", "second"],
            ],
            { ifAbsent: true },
          ),
        ).toEqual({ ok: true, written: 1 });
        expect(await store.hashGet(h, "a")).toBe("2");
        expect(await store.hashGet(h, "b")).toBe("first");
      });

      it("ifAbsent: exactly one of many concurrent writers wins", async () => {
        const h = `${ns}h`;
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            store.hashSet(h, [["f", String(i)]], { ifAbsent: true }),
          ),
        );
        const winners = results.flatMap((r, i) => (r.ok && r.written === 1 ? [i] : []));
        expect(winners).toHaveLength(1);
        expect(await store.hashGet(h, "f")).toBe(String(winners[0]));
      });

      it("maxFields refuses the whole write with the count; overwrites do not count", async () => {
        const h = `${ns}h`;
        expect(
          await store.hashSet(
            h,
            [
              ["a", "1"],
              ["b", "2"],
            ],
            { maxFields: 3 },
          ),
        ).toEqual({ ok: true, written: 2 });
        expect(
          await store.hashSet(
            h,
            [
              ["c", "3"],
              ["d", "4"],
            ],
            { maxFields: 3 },
          ),
        ).toEqual({ ok: false, count: 2 });
        expect(await store.hashGet(h, "c")).toBeNull();
        expect(
          await store.hashSet(
            h,
            [
              ["a", "10"],
              ["b", "20"],
              ["c", "30"],
            ],
            { maxFields: 3 },
          ),
        ).toEqual({ ok: true, written: 3 });
        expect(await store.hashSet(h, [["a", "100"]], { maxFields: 3 })).toEqual({
          ok: true,
          written: 1,
        });
        expect(await store.hashSet(h, [["z", "1"]], { maxFields: 3 })).toEqual({
          ok: false,
          count: 3,
        });
        expect(await store.hashLength(h)).toBe(3);
      });

      it("maxFields holds under concurrent writers", async () => {
        const h = `${ns}h`;
        const results = await Promise.all(
          Array.from({ length: 100 }, (_, i) =>
            store.hashSet(h, [[`f${i}`, "v"]], { maxFields: 30 }),
          ),
        );
        expect(results.filter((r) => r.ok)).toHaveLength(30);
        expect(await store.hashLength(h)).toBe(30);
      });

      it("ttlMs expires a field whatever reads it; expired fields are absent everywhere", async () => {
        const h = `${ns}h`;
        await store.hashSet(h, [["short", "s"]], { ttlMs: 150, idleMs: 60_000 });
        await store.hashSet(h, [["long", "l"]], { idleMs: 60_000 });
        expect(await store.hashGet(h, "short", { idleMs: 60_000 })).toBe("s");
        await waitFor(
          "field to expire",
          async () => (await store.hashGet(h, "short", { idleMs: 60_000 })) === null,
          3000,
        );
        expect(await store.hashLength(h)).toBe(1);
        expect((await store.hashScan(h, "0", 100)).entries).toEqual([["long", "l"]]);
        expect(await store.hashDelete(h, "short")).toBeNull();
        // Absent for ifAbsent and for maxFields too.
        expect(
          await store.hashSet(h, [["short", "again"]], { ifAbsent: true, maxFields: 2 }),
        ).toEqual({ ok: true, written: 1 });
        expect(await store.hashGet(h, "short")).toBe("again");
      });

      it("a write without ttlMs clears an old one", async () => {
        const h = `${ns}h`;
        await store.hashSet(h, [["f", "1"]], { ttlMs: 150 });
        await store.hashSet(h, [["f", "2"]]);
        await sleep(300);
        expect(await store.hashGet(h, "f")).toBe("2");
      });

      it("idleMs: reads that pass idleMs keep a field alive; an idle one expires", async () => {
        const h = `${ns}h`;
        await store.hashSet(
          h,
          [
            ["read", "r"],
            ["idle", "i"],
          ],
          { idleMs: 400 },
        );
        const until = Date.now() + 900;
        while (Date.now() < until) {
          expect(await store.hashGet(h, "read", { idleMs: 400 })).toBe("r");
          await sleep(50);
        }
        expect(await store.hashGet(h, "idle")).toBeNull();
        expect(await store.hashLength(h)).toBe(1);
        // A plain read (no idleMs) does not refresh.
        await waitFor(
          "unrefreshed field to expire",
          async () => (await store.hashGet(h, "read")) === null,
          3000,
        );
      });

      it("scan pages through every live field once, cursor '0' at the end", async () => {
        const h = `${ns}h`;
        const expected = new Map<string, string>();
        for (let i = 0; i < 95; i++) expected.set(`f${i}`, `v${i}`);
        await store.hashSet(h, [...expected]);
        const seen = new Map<string, string>();
        let cursor = "0";
        let pages = 0;
        do {
          const page = await store.hashScan(h, cursor, 10);
          for (const [field, value] of page.entries) seen.set(field, value);
          cursor = page.cursor;
          pages++;
        } while (cursor !== "0" && pages < 1000);
        expect(cursor).toBe("0");
        expect(seen).toEqual(expected);
        expect(await store.hashScan(`${ns}none`, "0", 10)).toEqual({ cursor: "0", entries: [] });
        await expect(store.hashScan(h, "not-a-cursor", 10)).rejects.toBeInstanceOf(InvalidError);
      });

      it("a field present for the whole scan is returned even while others come and go", async () => {
        const h = `${ns}h`;
        await store.hashSet(
          h,
          Array.from({ length: 200 }, (_, i) => [`keep${i}`, "k"] as [string, string]),
        );
        const seen = new Set<string>();
        let cursor = "0";
        let round = 0;
        do {
          const page = await store.hashScan(h, cursor, 20);
          for (const [field] of page.entries) seen.add(field);
          cursor = page.cursor;
          await store.hashSet(h, [[`churn${round}`, "c"]]);
          await store.hashDelete(h, `churn${round - 1}`);
          round++;
        } while (cursor !== "0" && round < 1000);
        for (let i = 0; i < 200; i++) expect(seen.has(`keep${i}`)).toBe(true);
      });

      it("hashDrop removes the hash and reports its live fields", async () => {
        const h = `${ns}h`;
        await store.hashSet(h, [
          ["a", "1"],
          ["b", "2"],
        ]);
        expect(await store.hashDrop(h)).toBe(2);
        expect(await store.hashLength(h)).toBe(0);
        expect(await store.hashGet(h, "a")).toBeNull();
        expect(await store.hashDrop(h)).toBe(0);
      });
    });

    describe("partitioned lists", () => {
      it("FIFO per partition; partitions are independent; range and length do not remove", async () => {
        const g = `${ns}g`;
        expect(await store.partitionPush(g, "", ["a", "b", "c"])).toEqual({ ok: true, length: 3 });
        expect(await store.partitionPush(g, "p1", ["x"])).toEqual({ ok: true, length: 1 });
        expect(await store.partitionPush(g, "", ["d"])).toEqual({ ok: true, length: 4 });
        expect(await store.partitionLength(g, "")).toBe(4);
        expect(await store.partitionRange(g, "", 1, 2)).toEqual(["b", "c"]);
        expect(await store.partitionRange(g, "", 0, 100)).toEqual(["a", "b", "c", "d"]);
        expect(await store.partitionRange(g, "", 10, 5)).toEqual([]);
        expect(await store.partitionPop(g, "")).toEqual(["a"]);
        expect(await store.partitionPop(g, "", { max: 2 })).toEqual(["b", "c"]);
        expect(await store.partitionPop(g, "p1", { max: 10 })).toEqual(["x"]);
        expect(await store.partitionPop(g, "p1")).toEqual([]);
        expect(await store.partitionLength(g, "p1")).toBe(0);
        expect(await store.partitionStats(g)).toEqual({ partitions: 1, items: 1 });
        expect(await store.partitionPush(g, "", [])).toEqual({ ok: true, length: 1 });
      });

      it("keeps values exactly, partition names with separators too", async () => {
        const g = `${ns}g`;
        const values = ["", "héllo ✓ 🚀", "a\nb\u0000c", "x".repeat(1024 * 1024)];
        for (const partition of ["a:b", "with space", "ünï", "\u0000x"]) {
          await store.partitionPush(g, partition, values);
          expect(await store.partitionPop(g, partition, { max: 10 })).toEqual(values);
        }
      });

      it("maxLength refuses the whole push with the count", async () => {
        const g = `${ns}g`;
        expect(await store.partitionPush(g, "p", ["1", "2", "3"], { maxLength: 4 })).toEqual({
          ok: true,
          length: 3,
        });
        expect(await store.partitionPush(g, "p", ["4", "5"], { maxLength: 4 })).toEqual({
          ok: false,
          reason: "length",
          count: 3,
        });
        expect(await store.partitionLength(g, "p")).toBe(3);
        expect(await store.partitionPush(g, "p", ["4"], { maxLength: 4 })).toEqual({
          ok: true,
          length: 4,
        });
      });

      it("maxLength holds under concurrent pushes", async () => {
        const g = `${ns}g`;
        const results = await Promise.all(
          Array.from({ length: 100 }, (_, i) =>
            store.partitionPush(g, "p", [String(i)], { maxLength: 25 }),
          ),
        );
        expect(results.filter((r) => r.ok)).toHaveLength(25);
        expect(await store.partitionLength(g, "p")).toBe(25);
      });

      it("maxPartitions refuses a new partition; existing ones and emptied ones do not block", async () => {
        const g = `${ns}g`;
        const cap = { maxPartitions: 2 };
        expect((await store.partitionPush(g, "a", ["1"], cap)).ok).toBe(true);
        expect((await store.partitionPush(g, "b", ["1"], cap)).ok).toBe(true);
        expect(await store.partitionPush(g, "c", ["1"], cap)).toEqual({
          ok: false,
          reason: "partitions",
          count: 2,
        });
        expect((await store.partitionPush(g, "a", ["2"], cap)).ok).toBe(true);
        expect(await store.partitionPop(g, "b")).toEqual(["1"]);
        expect((await store.partitionPush(g, "c", ["1"], cap)).ok).toBe(true);
        expect(await store.partitionStats(g)).toEqual({ partitions: 2, items: 3 });
        const racing = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            store.partitionPush(`${ns}race`, `p${i}`, ["x"], { maxPartitions: 5 }),
          ),
        );
        expect(racing.filter((r) => r.ok)).toHaveLength(5);
      });

      it("a partition expires ttlMs after its last push; pops do not extend it", async () => {
        const g = `${ns}g`;
        await store.partitionPush(g, "p", ["a", "b"], { ttlMs: 600 });
        await sleep(300);
        const lastPush = Date.now();
        await store.partitionPush(g, "p", ["c"], { ttlMs: 600 });
        expect(await store.partitionPop(g, "p")).toEqual(["a"]);
        await sleep(400);
        if (Date.now() - lastPush < 550) expect(await store.partitionLength(g, "p")).toBe(2);
        await waitFor(
          "partition to expire",
          async () => (await store.partitionLength(g, "p")) === 0,
          3000,
        );
        expect(await store.partitionPop(g, "p")).toEqual([]);
        expect(await store.partitionStats(g)).toEqual({ partitions: 0, items: 0 });
        // An expired partition does not count against maxPartitions.
        expect((await store.partitionPush(g, "q", ["x"], { maxPartitions: 1 })).ok).toBe(true);
      });

      it("a blocking pop is woken by a push, times out with [], and an aborted one takes nothing", async () => {
        const g = `${ns}g`;
        const started = Date.now();
        const waiting = store.partitionPop(g, "p", { waitMs: 10_000, max: 10 });
        await sleep(50);
        await store.partitionPush(g, "other", ["not-mine"]);
        await store.partitionPush(g, "p", ["x", "y"]);
        expect(await waiting).toEqual(["x", "y"]);
        expect(Date.now() - started).toBeLessThan(3000);
        const t0 = Date.now();
        expect(await store.partitionPop(g, "p", { waitMs: 100 })).toEqual([]);
        expect(Date.now() - t0).toBeGreaterThanOrEqual(90);
        const controller = new AbortController();
        const aborted = store.partitionPop(g, "p", { waitMs: 20_000, signal: controller.signal });
        setTimeout(() => controller.abort(), 30);
        expect(await aborted).toEqual([]);
        await store.partitionPush(g, "p", ["kept"]);
        expect(await store.partitionPop(g, "p")).toEqual(["kept"]);
        expect(await store.partitionPop(g, "other")).toEqual(["not-mine"]);
      });

      it("20 concurrent blocked getters: every item is delivered to exactly one", async () => {
        const g = `${ns}g`;
        const got: string[] = [];
        let stop = false;
        const getters = Array.from({ length: 20 }, async () => {
          while (!stop) {
            const values = await store.partitionPop(g, "work", { waitMs: 200 });
            got.push(...values);
          }
        });
        await sleep(30);
        const pushed: string[] = [];
        for (let batch = 0; batch < 20; batch++) {
          const values = Array.from({ length: 10 }, (_, i) => `item-${batch}-${i}`);
          pushed.push(...values);
          await store.partitionPush(g, "work", values);
        }
        await waitFor("every item to be taken", () => got.length >= pushed.length, 5000);
        stop = true;
        await Promise.all(getters);
        expect(got).toHaveLength(pushed.length);
        expect(new Set(got)).toEqual(new Set(pushed));
      });

      it("clear empties one partition; drop removes the group", async () => {
        const g = `${ns}g`;
        await store.partitionPush(g, "a", ["1", "2"]);
        await store.partitionPush(g, "b", ["3"]);
        await store.partitionPush(g, "", ["4", "5", "6"]);
        expect(await store.partitionStats(g)).toEqual({ partitions: 3, items: 6 });
        expect(await store.partitionClear(g, "a")).toBe(2);
        expect(await store.partitionClear(g, "a")).toBe(0);
        expect(await store.partitionStats(g)).toEqual({ partitions: 2, items: 4 });
        await store.partitionPush(`${ns}other`, "a", ["keep"]);
        expect(await store.partitionDrop(g)).toBe(4);
        expect(await store.partitionStats(g)).toEqual({ partitions: 0, items: 0 });
        expect(await store.partitionLength(`${ns}other`, "a")).toBe(1);
        expect(await store.partitionDrop(g)).toBe(0);
      });
    });

    describe("effects (settle, apply)", () => {
      it("settle completes, applies every write and publishes after, in one step", async () => {
        const q = `${ns}q`;
        const heard: string[] = [];
        await store.subscribe(`${ns}done`, (m) => heard.push(m));
        await store.set(`${ns}record`, "r");
        await store.incr(`${ns}count`, 5);
        await store.enqueue(q, { id: "x", payload: "p" });
        const [claim] = await store.claim([q], lease);
        const settled = await store.settle(ref(claim!), {
          guard: { key: `${ns}result`, value: "42", ttlMs: 60_000 },
          push: [{ key: `${ns}out`, values: ["a", "b"], ttlMs: 60_000 }],
          incr: [{ key: `${ns}count`, by: -1, min: 0 }],
          expire: [
            { key: `${ns}record`, ttlMs: 60_000 },
            { key: `${ns}missing`, ttlMs: 60_000 },
          ],
          publish: [{ channel: `${ns}done`, message: "finished" }],
        });
        expect(settled).toBe("applied");
        expect(await store.stats(q)).toEqual({ pending: 0, claimed: 0, delayed: 0 });
        expect(await store.get(`${ns}result`)).toBe("42");
        expect(await store.listPop(`${ns}out`, { max: 10 })).toEqual(["a", "b"]);
        expect(await store.get(`${ns}count`)).toBe("4");
        const ttl = await store.ttl(`${ns}record`);
        expect(ttl).not.toBeNull();
        expect(ttl!).toBeGreaterThan(50_000);
        expect(await store.get(`${ns}missing`)).toBeNull();
        await waitFor("the announcement", () => heard.length === 1, 3000);
        expect(heard).toEqual(["finished"]);
      });

      it("a stale claim writes and publishes nothing", async () => {
        const q = `${ns}q`;
        const heard: string[] = [];
        await store.subscribe(`${ns}done`, (m) => heard.push(m));
        await store.enqueue(q, { id: "x", payload: "p" });
        const [first] = await store.claim([q], { owner: "a", leaseMs: 100 });
        let second: Claim[] = [];
        await waitFor(
          "redelivery",
          async () => (second = await store.claim([q], { owner: "b", leaseMs: 30_000 })).length > 0,
          3000,
        );
        const late = await store.settle(ref(first!), {
          guard: { key: `${ns}result`, value: "late" },
          push: [{ key: `${ns}out`, values: ["late"] }],
          publish: [{ channel: `${ns}done`, message: "late" }],
        });
        expect(late).toBe("stale");
        expect(await store.get(`${ns}result`)).toBeNull();
        expect(await store.listLength(`${ns}out`)).toBe(0);
        expect(
          await store.settle(ref(second[0]!), {
            guard: { key: `${ns}result`, value: "fresh" },
            publish: [{ channel: `${ns}done`, message: "fresh" }],
          }),
        ).toBe("applied");
        expect(await store.get(`${ns}result`)).toBe("fresh");
        await waitFor("the announcement", () => heard.length >= 1, 3000);
        await sleep(50);
        expect(heard).toEqual(["fresh"]);
      });

      it("a guard that finds its key stops the rest; the claim is still completed", async () => {
        const q = `${ns}q`;
        const heard: string[] = [];
        await store.subscribe(`${ns}done`, (m) => heard.push(m));
        await store.set(`${ns}result`, "first");
        await store.enqueue(q, { id: "x", payload: "p" });
        const [claim] = await store.claim([q], lease);
        expect(
          await store.settle(ref(claim!), {
            guard: { key: `${ns}result`, value: "second" },
            push: [{ key: `${ns}out`, values: ["second"] }],
            publish: [{ channel: `${ns}done`, message: "second" }],
          }),
        ).toBe("guarded");
        expect(await store.stats(q)).toEqual({ pending: 0, claimed: 0, delayed: 0 });
        expect(await store.get(`${ns}result`)).toBe("first");
        expect(await store.listLength(`${ns}out`)).toBe(0);
        await sleep(50);
        expect(heard).toEqual([]);
      });

      it("settleMany settles each entry on its own, in order, across queues", async () => {
        const [q1, q2] = [`${ns}q1`, `${ns}q2`];
        const heard: string[] = [];
        await store.subscribe(`${ns}done`, (m) => heard.push(m));
        await store.set(`${ns}r-b`, "taken");
        await store.enqueue(q1, { id: "a", payload: "" });
        await store.enqueue(q1, { id: "b", payload: "" });
        await store.enqueue(q2, { id: "c", payload: "" });
        const [a, b] = await store.claim([q1], { ...lease, max: 2 });
        const [c] = await store.claim([q2], lease);
        expect(await store.complete(ref(c!))).toBe(true); // c's claim is now stale
        const entry = (claim: Claim, id: string) => ({
          claim: ref(claim),
          effects: {
            guard: { key: `${ns}r-${id}`, value: id },
            push: [{ key: `${ns}out`, values: [id] }],
            publish: [{ channel: `${ns}done`, message: id }],
          },
        });
        expect(await store.settleMany([entry(a!, "a"), entry(b!, "b"), entry(c!, "c")])).toEqual([
          "applied",
          "guarded",
          "stale",
        ]);
        expect(await store.stats(q1)).toEqual({ pending: 0, claimed: 0, delayed: 0 });
        expect(await store.getMany([`${ns}r-a`, `${ns}r-b`, `${ns}r-c`])).toEqual([
          "a",
          "taken",
          null,
        ]);
        expect(await store.listPop(`${ns}out`, { max: 10 })).toEqual(["a"]);
        await waitFor("the announcement", () => heard.length === 1, 3000);
        await sleep(50);
        expect(heard).toEqual(["a"]);
        expect(await store.settleMany([])).toEqual([]);
      });

      it("apply writes without a claim and says whether the guard let it", async () => {
        const heard: string[] = [];
        await store.subscribe(`${ns}done`, (m) => heard.push(m));
        const effects = {
          guard: { key: `${ns}result`, value: "v", ttlMs: 60_000 },
          incr: [{ key: `${ns}n`, by: 2 }],
          publish: [{ channel: `${ns}done`, message: "m" }],
        };
        expect(await store.apply(effects)).toBe(true);
        expect(await store.apply(effects)).toBe(false);
        expect(await store.get(`${ns}n`)).toBe("2");
        await waitFor("the announcement", () => heard.length === 1, 3000);
        await sleep(50);
        expect(heard).toEqual(["m"]);
        // incr below min is skipped, the rest goes on; a counter keeps its TTL.
        await store.set(`${ns}c`, "0", { ttlMs: 60_000 });
        expect(
          await store.apply({
            incr: [
              { key: `${ns}c`, by: -1, min: 0 },
              { key: `${ns}d`, by: 3 },
            ],
          }),
        ).toBe(true);
        expect(await store.get(`${ns}c`)).toBe("0");
        expect(await store.ttl(`${ns}c`)).not.toBeNull();
        expect(await store.get(`${ns}d`)).toBe("3");
      });

      it("refuses bad values with InvalidError, writing nothing", async () => {
        await expect(
          store.apply({ guard: { key: `${ns}k`, value: "v", ttlMs: 0 } }),
        ).rejects.toBeInstanceOf(InvalidError);
        await expect(store.apply({ incr: [{ key: `${ns}n`, by: 1.5 }] })).rejects.toBeInstanceOf(
          InvalidError,
        );
        await store.set(`${ns}text`, "abc");
        await expect(store.apply({ incr: [{ key: `${ns}text`, by: 1 }] })).rejects.toBeInstanceOf(
          InvalidError,
        );
        expect(await store.get(`${ns}k`)).toBeNull();
      });
    });

    describe("locks", () => {
      it("is exclusive; the owner re-locks; unlock only by the owner", async () => {
        const name = `${ns}lock`;
        const token = await store.lock(name, "a", 30_000);
        expect(token).not.toBeNull();
        expect(await store.lock(name, "b", 30_000)).toBeNull();
        const again = await store.lock(name, "a", 30_000);
        expect(again).not.toBeNull();
        expect(await store.unlock(name, "b")).toBe(false);
        expect(await store.unlock(name, "a")).toBe(true);
        expect(await store.unlock(name, "a")).toBe(false);
        const b = await store.lock(name, "b", 30_000);
        expect(b).not.toBeNull();
        expect(b!).toBeGreaterThan(again!);
      });

      it("exactly one of many concurrent lockers wins", async () => {
        const name = `${ns}lock`;
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => store.lock(name, `o${i}`, 30_000)),
        );
        expect(results.filter((r) => r !== null)).toHaveLength(1);
      });

      it("expires; the next owner gets a larger fencing token", async () => {
        const name = `${ns}lock`;
        const a = await store.lock(name, "a", 100);
        expect(a).not.toBeNull();
        let b: number | null = null;
        await waitFor(
          "lock to expire",
          async () => (b = await store.lock(name, "b", 30_000)) !== null,
          3000,
        );
        expect(b!).toBeGreaterThan(a!);
        expect(await store.unlock(name, "a")).toBe(false);
      });

      it("re-locking extends the lock", async () => {
        const name = `${ns}lock`;
        await store.lock(name, "a", 200);
        const until = Date.now() + 500;
        while (Date.now() < until) {
          expect(await store.lock(name, "a", 200)).not.toBeNull();
          expect(await store.lock(name, "b", 200)).toBeNull();
          await sleep(50);
        }
      });

      it("tokens strictly increase across acquisitions", async () => {
        const name = `${ns}lock`;
        const tokens: number[] = [];
        for (let i = 0; i < 5; i++) {
          tokens.push((await store.lock(name, `o${i}`, 30_000))!);
          expect(await store.unlock(name, `o${i}`)).toBe(true);
        }
        for (let i = 1; i < tokens.length; i++) expect(tokens[i]!).toBeGreaterThan(tokens[i - 1]!);
      });
    });

    describe("notifications", () => {
      it("delivers to every subscriber of the channel, only that channel", async () => {
        const channel = `${ns}ch`;
        const a: string[] = [];
        const b: string[] = [];
        const other: string[] = [];
        await store.subscribe(channel, (m) => a.push(m));
        await store.subscribe(channel, (m) => b.push(m));
        await store.subscribe(`${ns}other`, (m) => other.push(m));
        await store.publish(channel, "one");
        await store.publish(channel, "two");
        await waitFor("messages", () => a.length === 2 && b.length === 2, 3000);
        expect(a).toEqual(["one", "two"]);
        expect(b).toEqual(["one", "two"]);
        expect(other).toEqual([]);
      });

      it("stops after unsubscribe", async () => {
        const channel = `${ns}ch`;
        const gone: string[] = [];
        const kept: string[] = [];
        const unsubscribe = await store.subscribe(channel, (m) => gone.push(m));
        await store.subscribe(channel, (m) => kept.push(m));
        await store.publish(channel, "before");
        await waitFor(
          "both subscribers to hear the first message",
          () => gone.length === 1 && kept.length === 1,
        );
        await unsubscribe();
        await unsubscribe(); // idempotent
        await store.publish(channel, "after");
        await waitFor("the remaining subscriber", () => kept.length === 2, 3000);
        expect(gone).toEqual(["before"]);
      });

      it("a throwing listener breaks neither the publisher nor other listeners", async () => {
        const channel = `${ns}ch`;
        const got: string[] = [];
        await store.subscribe(channel, () => {
          throw new Error("listener bug");
        });
        await store.subscribe(channel, (m) => got.push(m));
        await expect(store.publish(channel, "m")).resolves.toBeUndefined();
        await waitFor("the other listener to hear the message", () => got.length === 1);
      });
    });

    describe("close", () => {
      it("wakes blocked waiters with [] and rejects later calls with UnavailableError", async () => {
        const own = await factory();
        try {
          const claim = own.store.claim([`${ns}q`], { ...lease, waitMs: 20_000 });
          const pop = own.store.listPop(`${ns}l`, { waitMs: 20_000 });
          const partitionPop = own.store.partitionPop(`${ns}g`, "p", { waitMs: 20_000 });
          await sleep(20);
          const started = Date.now();
          await own.store.close();
          expect(await claim).toEqual([]);
          expect(await pop).toEqual([]);
          expect(await partitionPop).toEqual([]);
          expect(Date.now() - started).toBeLessThan(3000);
          await expect(own.store.get(`${ns}k`)).rejects.toBeInstanceOf(UnavailableError);
          await expect(own.store.get(`${ns}k`)).rejects.toThrow("store is closed");
          await expect(
            own.store.enqueue(`${ns}q`, { id: "x", payload: "" }),
          ).rejects.toBeInstanceOf(UnavailableError);
          await expect(own.store.claim([`${ns}q`], lease)).rejects.toBeInstanceOf(UnavailableError);
          await expect(own.store.close()).resolves.toBeUndefined();
        } finally {
          await own.cleanup();
        }
      });
    });
  });
}
