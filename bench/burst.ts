/**
 * Burst and idle (issue 5): a function with no container gets `inputs` inputs at once (one
 * `.map()`: the client sends them all in its first chunk, the map window being 1,000) of a
 * handler that waits `handlerMs`, with `maxContainers`. While it runs, the agent's status is
 * polled every `pollMs`:
 *
 * - time to maxContainers started: first input sent -> first poll with maxContainers containers
 *   starting or ready (the autoscaler asked for all of them);
 * - time to maxContainers running: first input sent -> first poll with maxContainers containers
 *   "ready" (started and serving);
 * - completion: first input sent -> last output yielded, against the ideal
 *   inputs x handlerMs / maxContainers;
 * - idle: last output yielded -> first poll with no container at all (draining ones included),
 *   against `scaledownWindow`; and to the first poll where the autoscaler wants none.
 */
import type { FunctionStatus, Kiln } from "../runtime/client/index.js";
import type { Progress } from "./floors.js";

export interface BurstResult {
  inputs: number;
  /** First input sent -> maxContainers containers started (starting or ready); null if never reached. */
  toStartedMs: number | null;
  /** First input sent -> maxContainers ready; null if never reached. */
  toFullMs: number | null;
  /** Most containers ready at once. */
  peakReady: number;
  /** First input sent -> last output. */
  totalMs: number;
  idealMs: number;
  /** Last output -> no container; null if not reached within the deadline. */
  idleToZeroMs: number | null;
  /** Last output -> first poll where the autoscaler wants 0 containers. */
  idleDecisionMs: number | null;
  /** The autoscaler's last decision once at zero (or at the deadline). */
  lastDecision: string;
  /** When the ready count changed (ms since the first input: count), for the notes. */
  readySteps: string[];
  polls: number;
}

async function fnStatus(kiln: Kiln, app: string, fn: string): Promise<FunctionStatus> {
  const status = await kiln.status();
  const found = status.apps.find((a) => a.name === app)?.functions.find((f) => f.name === fn);
  if (!found) throw new Error(`${app}.${fn} is not in the agent's status`);
  return found;
}

const sleep = (ms: number): Promise<void> =>
  new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

export async function measureBurst(
  kiln: Kiln,
  target: { app: string; fn: string },
  options: {
    inputs: number;
    handlerMs: number;
    maxContainers: number;
    pollMs: number;
    deadlineMs: number;
    idleDeadlineMs: number;
    progress: Progress;
  },
): Promise<BurstResult> {
  const { app, fn } = target;
  const before = await fnStatus(kiln, app, fn);
  if (before.containers.length !== 0)
    throw new Error(`${app}.${fn} has ${before.containers.length} container(s) before the burst`);
  const remote = kiln.function<(i: number) => number>(app, fn);

  let firstSent = 0;
  let toFull: number | null = null;
  let toStarted: number | null = null;
  let peakReady = 0;
  let polls = 0;
  let lastReady = -1;
  const readySteps: string[] = [];
  let mapDone = false;
  const observe = (status: FunctionStatus): void => {
    polls += 1;
    const ready = status.containers.filter((c) => c.state === "ready").length;
    const live = status.containers.filter((c) => c.state !== "draining").length;
    const at = performance.now();
    const key = ready * 1000 + status.containers.length;
    if (key !== lastReady && firstSent > 0)
      readySteps.push(
        `${((at - firstSent) / 1000).toFixed(2)} s: ${ready}/${status.containers.length}`,
      );
    lastReady = key;
    if (toStarted === null && firstSent > 0 && live >= options.maxContainers)
      toStarted = at - firstSent;
    peakReady = Math.max(peakReady, ready);
    if (toFull === null && firstSent > 0 && ready >= options.maxContainers) toFull = at - firstSent;
  };
  const poller = (async () => {
    while (!mapDone) {
      observe(await fnStatus(kiln, app, fn));
      await sleep(options.pollMs);
    }
  })();

  function* inputs(): Generator<number> {
    firstSent = performance.now();
    for (let i = 0; i < options.inputs; i++) yield i;
  }
  const deadline = performance.now() + options.deadlineMs;
  let received = 0;
  let last = 0;
  try {
    for await (const value of remote.map(inputs())) {
      if (value !== received)
        throw new Error(`burst output ${received} is ${String(value)}, expected ${received}`);
      received += 1;
      last = performance.now();
      if (received % 100 === 0) options.progress(received, options.inputs);
      if (last > deadline)
        throw new Error(
          `burst: ${received}/${options.inputs} outputs after ${options.deadlineMs} ms`,
        );
    }
  } finally {
    mapDone = true;
    await poller;
  }

  // Idle: poll until no container is left.
  let idleToZeroMs: number | null = null;
  let idleDecisionMs: number | null = null;
  let lastDecision = "";
  const idleDeadline = last + options.idleDeadlineMs;
  while (performance.now() < idleDeadline) {
    const status = await fnStatus(kiln, app, fn);
    const at = performance.now();
    observe(status);
    lastDecision = status.scaling.lastDecision?.reason ?? "";
    if (idleDecisionMs === null && status.scaling.desired === 0) idleDecisionMs = at - last;
    if (status.containers.length === 0) {
      idleToZeroMs = at - last;
      break;
    }
    await sleep(options.pollMs);
  }
  return {
    inputs: received,
    toStartedMs: toStarted,
    toFullMs: toFull,
    peakReady,
    totalMs: last - firstSent,
    idealMs: (options.inputs * options.handlerMs) / options.maxContainers,
    idleToZeroMs,
    idleDecisionMs,
    lastDecision,
    readySteps,
    polls,
  };
}
