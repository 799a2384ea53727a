/**
 * Cold start: from zero containers to the first result. Each sample deploys the fixture under a
 * new app name (a new pool with no container; deploy time is not counted), checks that the
 * function has no container, then times one `.remote()`: the pool forks a worker, the worker
 * loads the bundle and says ready, the input runs, the outcome comes back. The app is deleted
 * afterwards so idle workers do not pile up.
 */
import type { FunctionStatus, Kiln } from "../runtime/client/index.js";
import { deployApp } from "../runtime/deploy/deploy.js";
import type { Progress } from "./floors.js";

export interface ColdStartSample {
  /** Caller-side: `.remote()` issued to result received. */
  totalMs: number;
  /** Agent-side: container start to worker "ready", as the pool reports it. */
  containerReadyMs: number | null;
  deployMs: number;
}

export async function measureColdStart(
  kiln: Kiln,
  fixture: { spec: Record<string, unknown>; dir: string; fn: string; namePrefix: string },
  options: { samples: number; deadlineMs: number; progress: Progress },
): Promise<ColdStartSample[]> {
  const samples: ColdStartSample[] = [];
  const deadline = performance.now() + options.deadlineMs;
  for (let i = 0; i < options.samples && performance.now() < deadline; i++) {
    const app = `${fixture.namePrefix}-${i}`;
    const deployStarted = performance.now();
    await deployApp(kiln.http, { ...fixture.spec, name: app }, fixture.dir);
    const deployMs = performance.now() - deployStarted;
    const before = await functionStatus(kiln, app, fixture.fn);
    if (before.containers.length !== 0)
      throw new Error(
        `${app}.${fixture.fn} has ${before.containers.length} container(s) before its first call`,
      );
    const fn = kiln.function<(x?: unknown) => unknown>(app, fixture.fn);
    const started = performance.now();
    await fn.remote();
    const totalMs = performance.now() - started;
    const after = await functionStatus(kiln, app, fixture.fn);
    samples.push({ totalMs, containerReadyMs: after.containers[0]?.coldStartMs ?? null, deployMs });
    await kiln.http.request("DELETE", `/v1/apps/${encodeURIComponent(app)}`, {
      query: { graceMs: 2_000 },
    });
    options.progress(i + 1, options.samples);
  }
  return samples;
}

async function functionStatus(kiln: Kiln, app: string, fn: string): Promise<FunctionStatus> {
  const status = await kiln.status();
  const found = status.apps.find((a) => a.name === app)?.functions.find((f) => f.name === fn);
  if (!found) throw new Error(`${app}.${fn} is not in the agent's status`);
  return found;
}
