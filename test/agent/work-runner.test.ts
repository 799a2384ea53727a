/** The work runner's held solo work, with fakes around it: lease renewal, cancel, hand-back on stop. */
import { describe, expect, it } from "vitest";
import { roomIn, type Container, type FunctionRuntime } from "../../runtime/agent/containers.js";
import type { InputEnvelope, Outcome } from "../../runtime/agent/inputs.js";
import { LeaseKeeper } from "../../runtime/agent/lease-keeper.js";
import { WorkRunner } from "../../runtime/agent/work-runner.js";
import type { Claim, ClaimRef, ReleaseOptions } from "../../runtime/store/store.js";

function claimOf(id: string, extra: Partial<InputEnvelope> = {}): Claim {
  const input: InputEnvelope = {
    id,
    kind: "call",
    app: "app",
    fn: "f",
    args: "[]",
    attempt: 0,
    platformAttempt: 0,
    createdAt: 0,
    ...extra,
  };
  return { id, queue: "q", payload: JSON.stringify(input), fence: 1, deliveries: 1 };
}

function runner() {
  const renewed: string[][] = [];
  const released: { id: string; options: ReleaseOptions | undefined }[] = [];
  const settled: { id: string; outcome: Outcome }[] = [];
  const leases = new LeaseKeeper({
    leaseMs: 1_000,
    log: () => undefined,
    renew: async (refs: readonly ClaimRef[]) => {
      renewed.push(refs.map((r) => r.id));
      return refs.map(() => true);
    },
  });
  const runtime = {
    app: "app",
    fn: "f",
    version: "v1",
    bundlePath: "",
    spec: { timeout: 5, retries: { maxRetries: 0 } },
  } as unknown as FunctionRuntime;
  const work = new WorkRunner({
    store: {
      release: async (claim, options) => {
        released.push({ id: claim.id, options });
        return true;
      },
    },
    outcomes: {
      markRunning: async () => undefined,
      streamItem: async () => undefined,
      settle: async (claim, _input, outcome) => {
        settled.push({ id: claim.id, outcome });
        return "applied" as const;
      },
    },
    leases,
    containers: { assign: () => undefined, finished: () => undefined },
    runtime: () => runtime,
    stopped: () => false,
    log: () => undefined,
    started: () => undefined,
    idle: () => undefined,
    notify: () => undefined,
  });
  return { work, leases, renewed, released, settled };
}

/** Until the fire-and-forget settles and releases have run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("work runner: solo work", () => {
  it("a solo input's work is solo; a batch never is", () => {
    const { work } = runner();
    expect(work.admit([claimOf("a", { solo: true })], false, performance.now())?.solo).toBe(true);
    expect(work.admit([claimOf("b")], false, performance.now())?.solo).toBe(false);
    expect(work.admit([claimOf("c", { solo: true })], true, performance.now())?.solo).toBe(false);
  });

  it("held work keeps its claim renewed until it is unheld to run", async () => {
    const { work, leases, renewed } = runner();
    const held = work.admit([claimOf("a", { solo: true })], false, performance.now());
    if (!held) throw new Error("expected work");
    work.hold(held);
    expect(work.held).toBe(1);
    expect(work.firstHeld()).toBe(held);
    await leases.renew();
    expect(renewed).toEqual([["a"]]);
    expect(work.unhold(held)).toBe(true);
    expect(work.unhold(held)).toBe(false);
    expect(work.held).toBe(0);
    await leases.renew();
    expect(renewed).toEqual([["a"]]);
  });

  it("cancel of a held input delivers CancelledError at once and stops holding it", async () => {
    const { work, settled } = runner();
    const held = work.admit([claimOf("a", { solo: true })], false, performance.now());
    if (!held) throw new Error("expected work");
    work.hold(held);
    expect(work.cancel("a")).toBe(true);
    expect(work.held).toBe(0);
    expect(work.unhold(held)).toBe(false);
    await settle();
    expect(settled).toHaveLength(1);
    const outcome = settled[0]?.outcome;
    expect(outcome?.ok === false && outcome.error.code).toBe("CANCELLED");
    expect(work.cancel("a")).toBe(false);
  });

  it("on stop, held work goes back to the front of the queue, unrun (not a failure)", async () => {
    const { work, released } = runner();
    const held = work.admit([claimOf("a", { solo: true })], false, performance.now());
    if (!held) throw new Error("expected work");
    work.hold(held);
    await work.handBackRunning();
    expect(work.held).toBe(0);
    expect(released).toHaveLength(1);
    expect(released[0]?.options?.front).toBe(true);
    const next = JSON.parse(released[0]?.options?.payload ?? "{}") as InputEnvelope;
    expect(next).toMatchObject({ id: "a", solo: true, returned: 1, platformAttempt: 0 });
  });
});

describe("roomIn", () => {
  it("free slots of a container, and none beside a solo input", () => {
    const running = new Map([["w-1", 1]]);
    expect(roomIn({ running, solo: null } as unknown as Container, 4)).toBe(3);
    expect(roomIn({ running, solo: "w-1" } as unknown as Container, 4)).toBe(0);
    expect(roomIn({ running: new Map(), solo: null } as unknown as Container, 1)).toBe(1);
  });
});
