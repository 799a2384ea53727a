/**
 * The scaling policy of a function's pool: a pure function of load observations, settings and
 * the clock, so it is tested without sleeping.
 *
 * After Knative's KPA and the thrash reports against it and Ray Serve:
 * - Scale up at once: the desired size follows the peak load, so a burst never waits for an
 *   average to catch up (and from zero, one queued input is enough).
 * - Scale down on the window: desired = ceil(peak load over the last `scaledownWindow` / target).
 *   The peak over the window, not the last sample, decides, so a steady load holds exactly
 *   ceil(load / target) + buffer containers and nothing oscillates.
 * - Panic: when the load over the short panic window needs twice the ready containers, the pool
 *   is panicking: it never scales down until a full window passes without another such burst
 *   (avoids the collapse after leaving panic, knative#3153).
 * - Scale-down is rate-bounded while load remains: at most half the containers go per decision.
 *   When the whole window saw no load, every container has idled a full `scaledownWindow` (the
 *   longest a container may sit idle) and all go at once, down to `minContainers`.
 * - `bufferContainers` extra while the function is active (any load within the window);
 *   clamped to [minContainers, maxContainers].
 */

export interface ScalingSettings {
  minContainers: number;
  /** null: no cap (the host's capacity still bounds it). */
  maxContainers: number | null;
  bufferContainers: number;
  /** How long load is remembered before containers may go: `scaledownWindow` in ms. */
  windowMs: number;
  /** Inputs one container should hold: `targetInputs` (x `maxBatchSize` when batched). */
  targetPerContainer: number;
}

export interface LoadSample {
  at: number;
  /** Queued (claimable) plus in-flight inputs. */
  load: number;
}

export interface ScalingDecision {
  /** Containers to keep: no live container above this is stopped... */
  desired: number;
  /**
   * ...and none is started above this: what the current load needs, plus the buffer while
   * active. The window delays scale-down only; it never restarts capacity that was stopped (an
   * idle container evicted for another function's sake stays stopped until load returns).
   */
  startUpTo: number;
  panic: boolean;
  reason: string;
}

/** The short window a burst is judged on: a tenth of the window, between 1 s and 6 s. */
function panicWindowMs(windowMs: number): number {
  return Math.min(6_000, Math.max(1_000, windowMs / 10));
}

export class Autoscaler {
  private samples: LoadSample[] = [];
  private panicUntil = 0;

  constructor(private settings: ScalingSettings) {}

  update(settings: ScalingSettings): void {
    this.settings = settings;
  }

  observe(sample: LoadSample): void {
    // Samples may arrive back-dated (work that ended between ticks): keep them in time order.
    let at = this.samples.length;
    while (at > 0 && (this.samples[at - 1]?.at ?? 0) > sample.at) at -= 1;
    this.samples.splice(at, 0, sample);
    const horizon = sample.at - this.settings.windowMs;
    let drop = 0;
    while (drop < this.samples.length - 1 && (this.samples[drop]?.at ?? 0) < horizon) drop += 1;
    if (drop > 0) this.samples.splice(0, drop);
  }

  /**
   * The desired number of containers at `now`, given how many are live (starting or ready) and
   * ready. Call after `observe`.
   */
  decide(now: number, live: number, ready: number): ScalingDecision {
    const { minContainers, maxContainers, bufferContainers, windowMs, targetPerContainer } =
      this.settings;
    const target = Math.max(1, targetPerContainer);
    const inWindow = this.samples.filter((s) => s.at > now - windowMs);
    const current = inWindow.at(-1)?.load ?? 0;
    const peak = inWindow.reduce((max, s) => Math.max(max, s.load), 0);
    const panicFrom = now - panicWindowMs(windowMs);
    const recent = inWindow.filter((s) => s.at >= panicFrom);
    const burst =
      recent.length === 0 ? 0 : recent.reduce((sum, s) => sum + s.load, 0) / recent.length;
    if (ready > 0 && Math.ceil(burst / target) >= 2 * ready) this.panicUntil = now + windowMs;
    const panic = now < this.panicUntil;

    const needed = Math.ceil(peak / target);
    const buffer = peak > 0 ? bufferContainers : 0;
    let desired = needed + buffer;
    const parts = [
      `peak load ${peak} over ${Math.round(windowMs / 1000)} s / target ${target} = ${needed}`,
    ];
    if (buffer > 0) parts.push(`+ buffer ${buffer}`);
    if (panic && desired < live) {
      desired = live;
      parts.push(`holding ${live}: panicking after a burst`);
    }
    if (peak > 0 && desired < live && desired < Math.floor(live / 2)) {
      desired = Math.floor(live / 2);
      parts.push(`scale-down limited to half (${live} -> ${desired})`);
    }
    const cap = maxContainers ?? Number.POSITIVE_INFINITY;
    if (desired > cap) parts.push(`capped at maxContainers ${cap}`);
    if (desired < minContainers) parts.push(`raised to minContainers ${minContainers}`);
    desired = Math.min(cap, Math.max(minContainers, desired));
    if (current > 0 && desired === 0) desired = 1;
    const startUpTo = Math.min(
      desired,
      Math.max(minContainers, Math.ceil(current / target) + buffer),
    );
    return { desired, startUpTo, panic, reason: parts.join(", ") };
  }
}
