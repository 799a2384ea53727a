/** The scaling policy with a fake clock: no sleeping, every decision reproducible. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Autoscaler, type ScalingSettings } from "../../runtime/agent/autoscaler.js";

const base: ScalingSettings = {
  minContainers: 0,
  maxContainers: 8,
  bufferContainers: 0,
  windowMs: 60_000,
  targetPerContainer: 1,
};
const TICK = 1_000;

/** Feed one load per tick and return the decision after each, with `live` following the decision. */
function run(settings: Partial<ScalingSettings>, loads: number[], start = 0): number[] {
  const scaler = new Autoscaler({ ...base, ...settings });
  let live = 0;
  return loads.map((load, i) => {
    const now = start + i * TICK;
    scaler.observe({ at: now, load });
    live = scaler.decide(now, live, live).desired;
    return live;
  });
}

describe("autoscaler policy", () => {
  it("scales from zero on the first queued input", () => {
    expect(run({}, [0, 0, 1])).toEqual([0, 0, 1]);
  });

  it("a burst reaches maxContainers in one tick", () => {
    expect(run({ maxContainers: 8 }, [0, 500])).toEqual([0, 8]);
  });

  it("never exceeds maxContainers and never goes below minContainers", () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(200), { minLength: 1, maxLength: 120 }),
        fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: 4, max: 20 }),
        (loads, min, max) => {
          for (const desired of run({ minContainers: min, maxContainers: max }, loads)) {
            expect(desired).toBeGreaterThanOrEqual(min);
            expect(desired).toBeLessThanOrEqual(max);
          }
        },
      ),
    );
  });

  it("a steady load holds exactly ceil(load / target) + buffer containers for its whole length", () => {
    const decisions = run(
      { targetPerContainer: 4, bufferContainers: 2, maxContainers: null },
      Array(300).fill(10),
    );
    expect(decisions.every((d) => d === Math.ceil(10 / 4) + 2)).toBe(true);
  });

  it("a load that fluctuates within a window does not oscillate: it holds the peak's size", () => {
    const loads = Array.from({ length: 300 }, (_, i) => (i % 7 === 0 ? 12 : 9));
    const decisions = run({ targetPerContainer: 4, maxContainers: null }, loads).slice(1);
    expect(new Set(decisions)).toEqual(new Set([3]));
  });

  it("keeps the buffer only while the function is active", () => {
    const loads = [3, ...Array(61).fill(0)];
    const decisions = run({ bufferContainers: 2 }, loads);
    expect(decisions[0]).toBe(5);
    expect(decisions[59]).toBe(5); // still within the 60 s window
    expect(decisions.at(-1)).toBeLessThan(5);
  });

  it("keeps minContainers warm with no load", () => {
    expect(run({ minContainers: 2 }, Array(120).fill(0))).toEqual(Array(120).fill(2));
  });

  it("with no load for a whole window, every container goes at once (the longest idle is the window)", () => {
    const loads = [8, ...Array(70).fill(0)];
    const decisions = run({}, loads);
    expect(decisions.slice(0, 60).every((d) => d === 8)).toBe(true); // the window holds the peak
    expect(decisions.slice(60)).toEqual(Array(11).fill(0));
  });

  it("while load remains, scale-down is bounded: at most half per tick", () => {
    const loads = [16, ...Array(70).fill(1)];
    const decisions = run({ maxContainers: null }, loads);
    expect(decisions.slice(0, 60).every((d) => d === 16)).toBe(true);
    expect(decisions.slice(60, 66)).toEqual([8, 4, 2, 1, 1, 1]);
  });

  it("panics on a burst against ready containers and does not scale down until a full window passes", () => {
    const scaler = new Autoscaler({ ...base, windowMs: 10_000, maxContainers: 100 });
    scaler.observe({ at: 0, load: 2 });
    expect(scaler.decide(0, 2, 2)).toMatchObject({ desired: 2, panic: false });
    scaler.observe({ at: 1_000, load: 40 });
    const burst = scaler.decide(1_000, 2, 2);
    expect(burst).toMatchObject({ desired: 40, panic: true });
    // The burst is over, but within the window the pool holds.
    for (let t = 2_000; t <= 10_000; t += 1_000) {
      scaler.observe({ at: t, load: 0 });
      expect(scaler.decide(t, 40, 40).desired).toBe(40);
    }
    scaler.observe({ at: 12_000, load: 1 });
    const after = scaler.decide(12_000, 40, 40);
    expect(after.panic).toBe(false);
    expect(after.desired).toBe(20); // load remains: at most half go per tick
  });

  it("explains its decision", () => {
    const scaler = new Autoscaler({ ...base, targetPerContainer: 2, bufferContainers: 1 });
    scaler.observe({ at: 0, load: 5 });
    expect(scaler.decide(0, 0, 0).reason).toBe("peak load 5 over 60 s / target 2 = 3, + buffer 1");
  });

  it("applies new settings in place", () => {
    const scaler = new Autoscaler(base);
    scaler.observe({ at: 0, load: 10 });
    expect(scaler.decide(0, 0, 0).desired).toBe(8);
    scaler.update({ ...base, maxContainers: 3 });
    expect(scaler.decide(0, 8, 8).desired).toBe(3);
  });

  it("starts only what the current load needs: the window delays scale-down, it never restarts capacity", () => {
    const scaler = new Autoscaler({ ...base, bufferContainers: 1 });
    scaler.observe({ at: 0, load: 6 });
    expect(scaler.decide(0, 0, 0)).toMatchObject({ desired: 7, startUpTo: 7 });
    scaler.observe({ at: 1_000, load: 0 });
    // Within the window: keep what is there (7), but start nothing new beyond the buffer.
    expect(scaler.decide(1_000, 2, 2)).toMatchObject({ desired: 7, startUpTo: 1 });
  });
});
