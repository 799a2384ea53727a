import { describe, expect, it } from "vitest";
import { InternalError } from "../../runtime/errors.js";
import { Listeners } from "../../runtime/store/shared/listeners.js";
import { completeOne, enqueueOne, settleOne } from "../../runtime/store/shared/single.js";
import { Waiter, WaiterIndex } from "../../runtime/store/shared/waiters.js";
import type {
  ClaimRef,
  Effects,
  EnqueueManyResult,
  SettleResult,
  WorkItem,
} from "../../runtime/store/store.js";
import { FakeClock } from "./fake-clock.js";

const ref: ClaimRef = { queue: "q", id: "a", fence: 1 };

describe("single-item calls", () => {
  it("enqueueOne passes one item and turns a refusal into the single result", async () => {
    const calls: [string, readonly WorkItem[], unknown][] = [];
    let reply: EnqueueManyResult = { accepted: 1 };
    const store = {
      async enqueueMany(queue: string, items: readonly WorkItem[], options?: unknown) {
        calls.push([queue, items, options]);
        return reply;
      },
    };
    const item = { id: "a", payload: "p" };
    expect(await enqueueOne(store, "q", item, { maxPending: 3 })).toEqual({ ok: true });
    expect(calls).toEqual([["q", [item], { maxPending: 3 }]]);
    reply = { accepted: 0, refused: { reason: "total", count: 7 } };
    expect(await enqueueOne(store, "q", item)).toEqual({ ok: false, reason: "total", count: 7 });
  });

  it("settleOne and completeOne go through settleMany with one entry", async () => {
    const entries: { claim: ClaimRef; effects: Effects }[][] = [];
    let reply: SettleResult[] = ["applied"];
    const store = {
      async settleMany(batch: readonly { claim: ClaimRef; effects: Effects }[]) {
        entries.push([...batch]);
        return reply;
      },
    };
    const effects: Effects = { publish: [{ channel: "c", message: "m" }] };
    expect(await settleOne(store, ref, effects)).toBe("applied");
    expect(entries[0]).toEqual([{ claim: ref, effects }]);
    expect(await completeOne(store, ref)).toBe(true);
    expect(entries[1]).toEqual([{ claim: ref, effects: {} }]);
    reply = ["guarded"];
    expect(await completeOne(store, ref)).toBe(true);
    reply = ["stale"];
    expect(await completeOne(store, ref)).toBe(false);
    reply = [];
    await expect(settleOne(store, ref, {})).rejects.toBeInstanceOf(InternalError);
  });
});

describe("Listeners", () => {
  it("delivers to each subscription of the channel, in order, and to no other channel", () => {
    const listeners = new Listeners(() => {});
    const got: string[] = [];
    listeners.add("a", (m) => got.push(`1:${m}`));
    listeners.add("a", (m) => got.push(`2:${m}`));
    listeners.add("b", (m) => got.push(`b:${m}`));
    listeners.deliver("a", "x");
    listeners.deliver("none", "y");
    expect(got).toEqual(["1:x", "2:x"]);
    expect(listeners.count("a")).toBe(2);
    expect(listeners.count("none")).toBe(0);
  });

  it("the same function added twice is two subscriptions, each removed on its own", () => {
    const listeners = new Listeners(() => {});
    const got: string[] = [];
    const listener = (m: string): void => void got.push(m);
    const first = listeners.add("a", listener);
    const second = listeners.add("a", listener);
    listeners.deliver("a", "1");
    expect(first()).toBe(true);
    expect(first()).toBe(false);
    listeners.deliver("a", "2");
    expect(second()).toBe(true);
    listeners.deliver("a", "3");
    expect(got).toEqual(["1", "1", "2"]);
    expect(listeners.count("a")).toBe(0);
  });

  it("a listener's error goes to onError; the others still get the message", () => {
    const errors: unknown[] = [];
    const listeners = new Listeners((error) => {
      errors.push(error);
      throw new Error("the handler fails too");
    });
    const got: string[] = [];
    const boom = new Error("boom");
    listeners.add("a", () => {
      throw boom;
    });
    listeners.add("a", (m) => got.push(m));
    expect(() => listeners.deliver("a", "x")).not.toThrow();
    expect(errors).toEqual([boom]);
    expect(got).toEqual(["x"]);
  });

  it("delivers to the subscriptions present when delivery starts; clear drops all", () => {
    const listeners = new Listeners(() => {});
    const got: string[] = [];
    listeners.add("a", (m) => {
      got.push(`first:${m}`);
      listeners.add("a", (n) => got.push(`late:${n}`));
    });
    listeners.deliver("a", "1");
    expect(got).toEqual(["first:1"]);
    listeners.clear();
    listeners.deliver("a", "2");
    expect(got).toEqual(["first:1"]);
  });
});

describe("Waiter", () => {
  function waiter(
    clock: FakeClock,
    signal?: AbortSignal,
  ): { w: Waiter<string[]>; stops: number[] } {
    const stops: number[] = [];
    const w: Waiter<string[]> = new Waiter<string[]>({
      clock,
      waitMs: 100,
      signal,
      onStop: () => {
        stops.push(clock.now());
        w.finish([]);
      },
    });
    return { w, stops };
  }

  it("finishes once, with the first value, and stops its timer", async () => {
    const clock = new FakeClock();
    const { w, stops } = waiter(clock);
    expect(clock.pendingTimers).toBe(1);
    expect(w.finish(["a"])).toBe(true);
    expect(w.done).toBe(true);
    expect(w.finish(["b"])).toBe(false);
    expect(w.fail(new Error("late"))).toBe(false);
    expect(clock.pendingTimers).toBe(0);
    clock.advance(200);
    expect(stops).toEqual([]);
    expect(await w.result).toEqual(["a"]);
  });

  it("a promised value resolves it once that resolves", async () => {
    const clock = new FakeClock();
    const { w } = waiter(clock);
    w.finish(Promise.resolve(["later"]));
    expect(await w.result).toEqual(["later"]);
  });

  it("stops at its timeout", async () => {
    const clock = new FakeClock();
    const { w, stops } = waiter(clock);
    clock.advance(99);
    expect(w.done).toBe(false);
    clock.advance(1);
    expect(stops).toEqual([clock.now()]);
    expect(await w.result).toEqual([]);
  });

  it("stops when its signal aborts, and forgets the signal once done", async () => {
    const clock = new FakeClock();
    const controller = new AbortController();
    const { w, stops } = waiter(clock, controller.signal);
    controller.abort();
    expect(stops).toHaveLength(1);
    expect(clock.pendingTimers).toBe(0);
    expect(await w.result).toEqual([]);

    const other = new AbortController();
    const second = waiter(clock, other.signal);
    second.w.finish(["x"]);
    other.abort();
    expect(second.stops).toEqual([]);
  });

  it("fail rejects it; disarm leaves it waiting with no timeout", async () => {
    const clock = new FakeClock();
    const failed = waiter(clock).w;
    const error = new Error("no");
    expect(failed.fail(error)).toBe(true);
    await expect(failed.result).rejects.toBe(error);

    const controller = new AbortController();
    const { w, stops } = waiter(clock, controller.signal);
    w.disarm();
    clock.advance(1000);
    controller.abort();
    expect(stops).toEqual([]);
    expect(w.done).toBe(false);
    w.finish(["end"]);
    expect(await w.result).toEqual(["end"]);
  });
});

describe("WaiterIndex", () => {
  it("keeps waiters per key in arrival order, one waiting on several keys under each", () => {
    const index = new WaiterIndex<string>();
    index.add(["q1", "q2"], "a");
    index.add(["q2"], "b");
    index.add(["q1"], "c");
    expect([...index.on("q1")]).toEqual(["a", "c"]);
    expect([...index.on("q2")]).toEqual(["a", "b"]);
    expect([...index.on("none")]).toEqual([]);
    expect(index.all()).toEqual(["a", "c", "b"]);
    expect(index.keys()).toEqual(["q1", "q2"]);
    index.remove(["q1", "q2"], "a");
    expect([...index.on("q1")]).toEqual(["c"]);
    index.remove(["q1"], "c");
    expect(index.has("q1")).toBe(false);
    expect(index.has("q2")).toBe(true);
  });

  it("is a live view: a waiter removed while iterating is skipped, the rest still come", () => {
    const index = new WaiterIndex<string>();
    for (const w of ["a", "b", "c"]) index.add(["q"], w);
    const seen: string[] = [];
    for (const w of index.on("q")) {
      seen.push(w);
      index.remove(["q"], w);
      if (w === "a") index.remove(["q"], "b");
    }
    expect(seen).toEqual(["a", "c"]);
    expect(index.has("q")).toBe(false);
  });
});
