/**
 * A small driver for finding where `.remote()` / `.map()` time goes (not part of `npm run bench`).
 *
 *   npm run build
 *   node dist/bench/profile.js remote [--count 3000] [--memory-store]
 *   node dist/bench/profile.js map [--count 10000]
 *   node dist/bench/profile.js worker [--count 3000]   (a WorkerProcess alone, no agent: IPC + worker)
 *   node --cpu-prof --cpu-prof-dir=/tmp/kiln-prof dist/bench/profile.js remote
 *   node dist/bench/profile-summary.js /tmp/kiln-prof/<file>.cpuprofile
 *
 * Besides the latency, it instruments the running agent from the outside (wrapping methods on
 * the live objects; no runtime file is changed) to split each call into: time inside
 * `Router.call` (the agent's work for the request), inside `WorkerProcess.run` (IPC to the worker
 * and back), store operations per call, and store log flushes per call. `--memory-store` runs the
 * same agent on a memory-only embedded store, to show what the append-only log costs.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Agent } from "../runtime/agent/agent.js";
import { Router } from "../runtime/agent/router.js";
import { connect } from "../runtime/client/index.js";
import { WorkerProcess } from "../runtime/containers/worker-process.js";
import { bundleFile } from "../runtime/deploy/bundle.js";
import { deployApp } from "../runtime/deploy/deploy.js";
import { encode } from "../runtime/serde.js";
import { EmbeddedStore } from "../runtime/store/embedded/embedded-store.js";
import type { Store } from "../runtime/store/store.js";
import { runMap } from "./map-throughput.js";
import { summarize } from "./report.js";

const here = dirname(fileURLToPath(import.meta.url));
const benchDir = here.includes(join("dist", "bench")) ? resolve(here, "..", "..", "bench") : here;
const fixtureDir = join(benchDir, "fixtures");

interface Args {
  mode: "remote" | "map" | "worker";
  count: number;
  memoryStore: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const mode = argv[0] === "map" ? "map" : argv[0] === "worker" ? "worker" : "remote";
  const at = argv.indexOf("--count");
  const count = at >= 0 ? Number(argv[at + 1]) : mode === "map" ? 10_000 : 3_000;
  if (!Number.isSafeInteger(count) || count < 1 || count > 1_000_000) throw new Error(`--count must be 1..1000000`);
  return { mode, count, memoryStore: argv.includes("--memory-store") };
}

/** Accumulated time and count of one instrumented method. */
class Meter {
  calls = 0;
  totalMs = 0;
  reset(): void {
    this.calls = 0;
    this.totalMs = 0;
  }
}

type AsyncMethod = (...args: unknown[]) => Promise<unknown>;

/** Timestamps of the call in progress (calls are sequential in remote mode). */
const marks = { routerIn: 0, runIn: 0, runOut: 0, routerOut: 0 };
type Mark = keyof typeof marks;

/** Replace `target[name]` with a wrapper that times each call (resolved promise) into `meter`. */
function instrument(target: object, name: string, meter: Meter, mark?: { in: Mark; out: Mark }): void {
  const holder = target as Record<string, unknown>;
  const original = holder[name];
  if (typeof original !== "function") throw new Error(`cannot instrument ${name}: not a function`);
  const method = original as AsyncMethod;
  holder[name] = function (this: unknown, ...args: unknown[]): Promise<unknown> {
    const started = performance.now();
    if (mark) marks[mark.in] = started;
    meter.calls += 1;
    return method.apply(this, args).finally(() => {
      const now = performance.now();
      if (mark) marks[mark.out] = now;
      meter.totalMs += now - started;
    });
  };
}

const STORE_METHODS = ["get", "set", "delete", "incr", "enqueue", "claim", "complete", "release", "renew", "listPush", "listPop", "publish", "subscribe"];

/** Sequential `run()` on one worker process started as the pool starts one, without an agent. */
async function workerAlone(count: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "kiln-prof-worker-"));
  try {
    const artifact = await bundleFile(fixtureDir, "./noop.ts");
    const bundlePath = join(dir, `${artifact.sha256}.mjs`);
    await writeFile(bundlePath, artifact.code);
    const proc = new WorkerProcess({
      id: "ct-prof",
      bundlePath,
      exportName: "noop",
      method: null,
      app: "bench",
      fn: "noop",
      env: {},
      agentUrl: "http://127.0.0.1:1",
      token: "unused",
      cwd: dir,
      startupTimeoutMs: 10_000,
      execArgv: ["--enable-source-maps"],
      onLog: () => undefined,
    });
    await proc.ready();
    const args = encode([]);
    for (let i = 0; i < 300; i++) await proc.run(`w-${i}`, args, "value");
    const samples: number[] = [];
    for (let i = 0; i < count; i++) {
      const started = performance.now();
      await proc.run(`x-${i}`, args, "value");
      samples.push(performance.now() - started);
    }
    const s = summarize(samples);
    console.log(`WorkerProcess.run alone x${s.count}: p50 ${s.p50.toFixed(3)} ms, p99 ${s.p99.toFixed(3)} ms, mean ${s.mean.toFixed(3)} ms, over 2 ms: ${samples.filter((v) => v > 2).length}`);
    await proc.stop(2_000);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.mode === "worker") return workerAlone(args.count);
  const stateDir = await mkdtemp(join(tmpdir(), "kiln-prof-"));
  const store: Store | undefined = args.memoryStore ? await EmbeddedStore.open() : undefined;
  const agent = await Agent.start({ stateDir, port: 0, ...(store ? { store } : {}) });
  const watchdog = setTimeout(() => process.exit(2), 120_000);
  watchdog.unref();
  try {
    const kiln = await connect({ url: agent.url, token: agent.token });
    const spec = JSON.parse(await readFile(join(fixtureDir, "app.json"), "utf8")) as Record<string, unknown>;
    await deployApp(kiln.http, spec, fixtureDir);
    const target = { app: String(spec["name"]), fn: "noop" };

    const routerCall = new Meter();
    const routerMapInputs = new Meter();
    const routerMapOutputs = new Meter();
    const workerRun = new Meter();
    const flushes = new Meter();
    const storeOps = new Map<string, Meter>(STORE_METHODS.map((name) => [name, new Meter()]));
    instrument(Router.prototype, "call", routerCall, { in: "routerIn", out: "routerOut" });
    instrument(Router.prototype, "mapInputs", routerMapInputs);
    instrument(Router.prototype, "mapOutputs", routerMapOutputs);
    instrument(WorkerProcess.prototype, "run", workerRun, { in: "runIn", out: "runOut" });
    for (const [name, meter] of storeOps) instrument(agent.store, name, meter);
    // The embedded store's append-only log (a private field): count its flushes (one writeSync each).
    const log = (agent.store as unknown as { log: { flush: () => void } | null }).log;
    if (log) {
      const flush = log.flush.bind(log);
      log.flush = () => {
        flushes.calls += 1;
        const started = performance.now();
        flush();
        flushes.totalMs += performance.now() - started;
      };
    }
    const meters = [routerCall, routerMapInputs, routerMapOutputs, workerRun, flushes, ...storeOps.values()];

    const noop = kiln.function<(x?: unknown) => unknown>(target.app, target.fn);
    let units: number;
    let wallMs: number;
    if (args.mode === "remote") {
      for (let i = 0; i < 300; i++) await noop.remote();
      for (const meter of meters) meter.reset();
      const samples: number[] = [];
      const segments = { "client -> Router.call": [] as number[], "Router.call -> WorkerProcess.run": [] as number[], "WorkerProcess.run (IPC + handler)": [] as number[], "run done -> Router.call returns": [] as number[], "Router.call returns -> client has result": [] as number[] };
      const started = performance.now();
      for (let i = 0; i < args.count; i++) {
        const t0 = performance.now();
        await noop.remote();
        const t1 = performance.now();
        samples.push(t1 - t0);
        segments["client -> Router.call"].push(marks.routerIn - t0);
        segments["Router.call -> WorkerProcess.run"].push(marks.runIn - marks.routerIn);
        segments["WorkerProcess.run (IPC + handler)"].push(marks.runOut - marks.runIn);
        segments["run done -> Router.call returns"].push(marks.routerOut - marks.runOut);
        segments["Router.call returns -> client has result"].push(t1 - marks.routerOut);
      }
      wallMs = performance.now() - started;
      units = args.count;
      const s = summarize(samples);
      console.log(`remote x${s.count}${args.memoryStore ? " (memory-only store)" : ""}: p50 ${s.p50.toFixed(3)} ms, p99 ${s.p99.toFixed(3)} ms, mean ${s.mean.toFixed(3)} ms`);
      console.log("segments of one call (p50 / mean / p99 ms, calls over 2 ms):");
      for (const [name, values] of Object.entries(segments)) {
        const seg = summarize(values);
        const slow = values.filter((v) => v > 2).length;
        console.log(`  ${name.padEnd(42)} ${seg.p50.toFixed(3)} / ${seg.mean.toFixed(3)} / ${seg.p99.toFixed(3)}  ${slow}`);
      }
    } else {
      await runMap(kiln, target, { count: 1000, deadlineMs: 30_000, progress: () => undefined });
      for (const meter of meters) meter.reset();
      const started = performance.now();
      const result = await runMap(kiln, target, { count: args.count, deadlineMs: 60_000, progress: () => undefined });
      wallMs = performance.now() - started;
      units = result.inputs;
      console.log(`map x${result.inputs}${args.memoryStore ? " (memory-only store)" : ""}: ${Math.round(result.perSecond)} inputs/s (${result.ms.toFixed(0)} ms)`);
    }
    const per = (meter: Meter): string =>
      `${(meter.calls / units).toFixed(2)} calls/unit, ${(meter.totalMs / units).toFixed(3)} ms/unit (${meter.calls} calls, ${meter.totalMs.toFixed(0)} ms total)`;
    console.log(`wall: ${(wallMs / units).toFixed(3)} ms/unit`);
    console.log(`  Router.call          ${per(routerCall)}`);
    console.log(`  Router.mapInputs     ${per(routerMapInputs)}`);
    console.log(`  Router.mapOutputs    ${per(routerMapOutputs)}`);
    console.log(`  WorkerProcess.run    ${per(workerRun)}`);
    console.log(`  store log flush      ${per(flushes)}`);
    for (const [name, meter] of storeOps) if (meter.calls > 0) console.log(`  store.${name.padEnd(15)} ${per(meter)}`);
  } finally {
    await agent.stop();
    if (store) await store.close();
    await rm(stateDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
