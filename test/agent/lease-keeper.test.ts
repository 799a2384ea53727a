/** The lease keeper with a fake store: what it renews, what it trusts, what it reports lost. */
import { describe, expect, it } from "vitest";
import { LeaseKeeper, TRUSTED_LEASE_SHARE } from "../../runtime/agent/lease-keeper.js";
import type { Claim, ClaimRef } from "../../runtime/store/store.js";

function claim(id: string, extra: Partial<Claim> = {}): { claim: Claim; input: { id: string } } {
  return {
    claim: { id, queue: "q", payload: "{}", fence: 1, deliveries: 0, ...extra },
    input: { id },
  };
}

function keeper(alive: (refs: readonly ClaimRef[]) => boolean[] | Error) {
  const renewed: string[][] = [];
  const logs: string[] = [];
  const leases = new LeaseKeeper({
    leaseMs: 1_000,
    log: (text) => logs.push(text),
    renew: async (refs) => {
      renewed.push(refs.map((r) => r.id));
      const result = alive(refs);
      if (result instanceof Error) throw result;
      return result;
    },
  });
  return { leases, renewed, logs };
}

describe("lease keeper", () => {
  it("a lease is trusted for its share of the lease, counted from when it was asked for", () => {
    const { leases } = keeper(() => []);
    expect(leases.open(performance.now()).trusted()).toBe(true);
    const longAgo = performance.now() - 1_000 * TRUSTED_LEASE_SHARE - 1;
    expect(leases.open(longAgo).trusted()).toBe(false);
  });

  it("renews every tracked claim in one call, and renewal extends the trust", async () => {
    const { leases, renewed } = keeper((refs) => refs.map(() => true));
    const stale = performance.now() - 10_000;
    const a = leases.open(stale);
    const b = leases.open(stale);
    leases.track(a, [claim("a1"), claim("a2")]);
    leases.track(b, [claim("b1")]);
    expect(a.trusted()).toBe(false);
    await leases.renew();
    expect(renewed).toEqual([["a1", "a2", "b1"]]);
    expect(a.trusted()).toBe(true);
    expect(b.trusted()).toBe(true);
  });

  it("a claim found taken is reported, and its whole group is no longer trusted", async () => {
    const { leases, logs } = keeper((refs) => refs.map((r) => r.id !== "a2"));
    const a = leases.open(performance.now());
    const b = leases.open(performance.now());
    leases.track(a, [claim("a1"), claim("a2")]);
    leases.track(b, [claim("b1")]);
    await leases.renew();
    expect(a.trusted()).toBe(false);
    expect(b.trusted()).toBe(true);
    expect(logs).toEqual(["lost the lease on input a2; another delivery may run it"]);
    // A later renewal that confirms the others does not trust it again.
    await leases.renew();
    expect(a.trusted()).toBe(false);
  });

  it("skips eager claims not yet recorded, and untracked ones", async () => {
    const { leases, renewed } = keeper((refs) => refs.map(() => true));
    const pending = new Promise<void>(() => {});
    const a = leases.open(performance.now());
    const b = leases.open(performance.now());
    leases.track(a, [claim("a1", { recorded: pending }), claim("a2")]);
    leases.track(b, [claim("b1", { recorded: pending })]);
    await leases.renew();
    expect(renewed).toEqual([["a2"]]);
    leases.untrack(a);
    await leases.renew(); // nothing due: no store call
    leases.clear();
    await leases.renew();
    expect(renewed).toEqual([["a2"]]);
  });

  it("a failed renewal is logged and changes no trust", async () => {
    const { leases, logs } = keeper(() => new Error("store down"));
    const a = leases.open(performance.now());
    leases.track(a, [claim("a1")]);
    await leases.renew();
    expect(logs).toEqual(["lease renewal failed: store down"]);
    expect(a.trusted()).toBe(true);
  });
});
