/** Cluster-wide container slots over a fake lock store. */
import { describe, expect, it } from "vitest";
import { ContainerSlots } from "../../runtime/agent/container-slots.js";

/** Locks by name -> owner; `fail` makes the next lock call throw. */
function fakeStore() {
  const locks = new Map<string, string>();
  const store = {
    locks,
    fail: false,
    async lock(name: string, owner: string): Promise<number | null> {
      if (store.fail) throw new Error("store down");
      const holder = locks.get(name);
      if (holder !== undefined && holder !== owner) return null;
      locks.set(name, owner);
      return 1;
    },
    async unlock(name: string, owner: string): Promise<boolean> {
      if (locks.get(name) !== owner) return false;
      locks.delete(name);
      return true;
    },
  };
  return store;
}

function slotsOn(store: ReturnType<typeof fakeStore>, agentId = "agent-a") {
  return new ContainerSlots({ store, agentId, app: "app", fn: "f", leaseMs: 1_000 });
}

describe("container slots", () => {
  it("an uncapped function needs no slot", async () => {
    const store = fakeStore();
    expect(await slotsOn(store).acquire("ct-1", null, new Set())).toEqual({ kind: "uncapped" });
    expect(store.locks.size).toBe(0);
  });

  it("takes the first slot free on this agent and in the store", async () => {
    const store = fakeStore();
    store.locks.set("slot:app:f:1", "agent-b/ct-9");
    const slots = slotsOn(store);
    expect(await slots.acquire("ct-1", 3, new Set([0]))).toEqual({ kind: "slot", index: 2 });
    expect(store.locks.get("slot:app:f:2")).toBe("agent-a/ct-1");
  });

  it("every slot taken: full, and recently full for a second", async () => {
    const store = fakeStore();
    store.locks.set("slot:app:f:0", "agent-b/ct-9");
    const slots = slotsOn(store);
    expect(slots.recentlyFull()).toBe(false);
    expect(await slots.acquire("ct-1", 2, new Set([1]))).toEqual({ kind: "full", max: 2 });
    expect(slots.recentlyFull()).toBe(true);
  });

  it("claim, renew and release by index", async () => {
    const store = fakeStore();
    const slots = slotsOn(store);
    expect(await slots.claim(0, "ct-1")).toBe(true);
    expect(await slotsOn(store, "agent-b").claim(0, "ct-2")).toBe(false);
    expect(await slots.renew(0, "ct-1")).toBe(true);
    // Taken by another owner meanwhile (the lock lapsed): lost.
    store.locks.set("slot:app:f:0", "agent-b/ct-2");
    expect(await slots.renew(0, "ct-1")).toBe(false);
    store.locks.set("slot:app:f:0", "agent-a/ct-1");
    // A store error is not a loss: the slot is kept until the store says otherwise.
    store.fail = true;
    expect(await slots.renew(0, "ct-1")).toBe(true);
    store.fail = false;
    await slots.release(0, "ct-1");
    expect(store.locks.size).toBe(0);
  });
});
