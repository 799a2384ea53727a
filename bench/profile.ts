/**
 * A small driver for finding where `.remote()` / `.map()` time goes (not part of `npm run bench`).
 *
 *   npm run build
 *   node dist/bench/profile.js remote [--count 3000] [--memory-store]
 *   node dist/bench/profile.js map [--count 10000]
 *   node dist/bench/profile.js worker [--count 3000]   (a WorkerProcess alone, no agent: IPC + worker)
 *   node dist/bench/profile.js router [--count 3000] [--memory-store]   (agent.router.call() in process: no HTTP)
 *   node dist/bench/profile.js http [--count 3000]     (the HTTP leg alone: node:http vs fastify vs fastify + kiln's hook and zod)
 *   node dist/bench/profile.js remote|map|router --redis   (the agent on the Redis store, on a redis-server started here)
 *   node dist/bench/profile.js bullmq [--count 3000]   (BullMQ add + waitUntilFinished, then addBulk of 10,000, on a redis-server started here)
 *   node dist/bench/profile.js batching [--fn batched|unbatched] [--redis]   (the bench's batching run with a timeline: calls in, batches run, results out)
 *   node --cpu-prof --cpu-prof-dir=/tmp/kiln-prof dist/bench/profile.js remote
 *   common flags: --warmup N (calls before measuring, default 300: the HTTP client's JIT needs thousands to settle),
 *   --experiment stub-router (Router.call answers at once: the HTTP layer alone),
 *   --experiment no-mark-running (skip OutcomeWriter.markRunning before the input is sent),
 *   --experiment auto-pipelining (with --redis: ioredis enableAutoPipelining on the store's command connection)
 *   node dist/bench/profile-summary.js /tmp/kiln-prof/<file>.cpuprofile
 *
 * Besides the latency, it instruments the running agent from the outside (wrapping methods on
 * the live objects; no runtime file is changed) to split each call into: time inside
 * `Router.call` (the agent's work for the request), inside `WorkerProcess.run` (IPC to the worker
 * and back), store operations per call, and store log flushes per call. `--memory-store` runs the
 * same agent on a memory-only embedded store, to show what the append-only log costs. With
 * `--redis` (and in `bullmq` mode) it also prints the Redis server's command statistics over the
 * measured window (INFO commandstats after CONFIG RESETSTAT): commands per call or input, by command,
 * and the server's own microseconds per command.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import Fastify, { type FastifyInstance } from "fastify";
import { Redis } from "ioredis";
import { z } from "zod";
import { Agent } from "../runtime/agent/agent.js";
import { tokenMatcher } from "../runtime/agent/auth.js";
import { AgentHttp } from "../runtime/client/http.js";
import { callBody } from "../runtime/protocol.js";
import { OutcomeWriter } from "../runtime/agent/outcomes.js";
import { Router } from "../runtime/agent/router.js";
import { connect } from "../runtime/client/index.js";
import { WorkerProcess } from "../runtime/containers/worker-process.js";
import { bundleFile } from "../runtime/deploy/bundle.js";
import { deployApp } from "../runtime/deploy/deploy.js";
import { encode } from "../runtime/serde.js";
import { EmbeddedStore } from "../runtime/store/embedded/embedded-store.js";
import type { Store } from "../runtime/store/store.js";
import { measureBatching } from "./batching.js";
import { startBullmq } from "./bullmq.js";
import { httpEchoFloor } from "./floors.js";
import { startBenchRedis, type BenchRedis } from "./redis-server.js";
import { runMap } from "./map-throughput.js";
import { summarize } from "./report.js";

const here = dirname(fileURLToPath(import.meta.url));
const benchDir = here.includes(join("dist", "bench")) ? resolve(here, "..", "..", "bench") : here;
const fixtureDir = join(benchDir, "fixtures");

interface Args {
  mode: "remote" | "map" | "worker" | "http" | "router" | "bullmq" | "batching";
  count: number;
  memoryStore: boolean;
  /** `--redis`: the agent on the Redis store, on a redis-server started for the run. */
  redis: boolean;
  /** `--experiment <name>`: monkey-patch the live agent to estimate a change ("no-mark-running"). */
  experiments: string[];
  /** Calls before measuring (JIT warm-up). Default 300. */
  warmup: number;
  /** batching mode: which function of bench/fixtures/scaling.json. */
  fn: string;
}

function parseArgs(argv: readonly string[]): Args {
  const modes = ["map", "worker", "http", "router", "bullmq", "batching"] as const;
  const mode = modes.find((m) => m === argv[0]) ?? "remote";
  const at = argv.indexOf("--count");
  const count = at >= 0 ? Number(argv[at + 1]) : mode === "map" ? 10_000 : 3_000;
  if (!Number.isSafeInteger(count) || count < 1 || count > 1_000_000)
    throw new Error(`--count must be 1..1000000`);
  const experiments = argv.flatMap((arg, i) =>
    arg === "--experiment" && argv[i + 1] ? [argv[i + 1] ?? ""] : [],
  );
  const w = argv.indexOf("--warmup");
  const warmup = w >= 0 ? Number(argv[w + 1]) : 300;
  if (!Number.isSafeInteger(warmup) || warmup < 0 || warmup > 1_000_000)
    throw new Error(`--warmup must be 0..1000000`);
  const f = argv.indexOf("--fn");
  const fn = f >= 0 ? (argv[f + 1] ?? "batched") : "batched";
  return {
    mode,
    count,
    memoryStore: argv.includes("--memory-store"),
    redis: argv.includes("--redis"),
    experiments,
    warmup,
    fn,
  };
}

function label(args: Args): string {
  const parts = [
    ...(args.memoryStore ? ["memory-only store"] : []),
    ...(args.redis ? ["Redis store"] : []),
    ...args.experiments.map((e) => `experiment ${e}`),
  ];
  return parts.length === 0 ? "" : ` (${parts.join(", ")})`;
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
/** When each store method last resolved (remote mode: one call at a time, so these place its store steps). */
const storeDone = new Map<string, number>();
type Mark = keyof typeof marks;

/** Replace `target[name]` with a wrapper that times each call (resolved promise) into `meter`. */
function instrument(
  target: object,
  name: string,
  meter: Meter,
  mark?: { in: Mark; out: Mark },
  doneKey?: string,
): void {
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
      if (doneKey) storeDone.set(doneKey, now);
      meter.totalMs += now - started;
    });
  };
}

const STORE_METHODS = [
  "get",
  "getMany",
  "set",
  "delete",
  "keys",
  "incr",
  "enqueue",
  "claim",
  "complete",
  "settle",
  "settleMany",
  "enqueueMany",
  "apply",
  "release",
  "renew",
  "remove",
  "stats",
  "listPush",
  "listPop",
  "listLength",
  "publish",
  "subscribe",
];

/** The Redis server's command counters over a window: CONFIG RESETSTAT, then INFO commandstats. */
class RedisCommandStats {
  private constructor(private readonly conn: Redis) {}

  static async open(url: string): Promise<RedisCommandStats> {
    const conn = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await conn.connect();
    return new RedisCommandStats(conn);
  }

  async reset(): Promise<void> {
    await this.conn.config("RESETSTAT");
  }

  /** Print commands per unit, by command, with the server's microseconds per unit. */
  async print(units: number, unit: string): Promise<void> {
    const info = await this.conn.info("commandstats");
    const rows: { name: string; calls: number; usec: number }[] = [];
    for (const line of info.split(/\r?\n/)) {
      const match = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line);
      if (match && match[1] !== "config" && match[1] !== "info")
        rows.push({ name: match[1] ?? "", calls: Number(match[2]), usec: Number(match[3]) });
    }
    rows.sort((a, b) => b.calls - a.calls);
    const calls = rows.reduce((sum, r) => sum + r.calls, 0);
    const usec = rows.reduce((sum, r) => sum + r.usec, 0);
    console.log(
      `redis-server over the window: ${(calls / units).toFixed(2)} commands per ${unit}, ${(usec / units).toFixed(1)} us of server time per ${unit}`,
    );
    for (const r of rows)
      console.log(
        `  ${r.name.padEnd(16)} ${(r.calls / units).toFixed(2)} per ${unit}, ${(r.usec / units).toFixed(1)} us per ${unit} (${r.calls} calls)`,
      );
  }

  async close(): Promise<void> {
    await this.conn.quit();
  }
}

/** BullMQ on its own, as the bench's baseline runs it: sequential add + waitUntilFinished, then addBulk. */
async function bullmqAlone(args: Args): Promise<void> {
  const redis = await startBenchRedis();
  const stats = await RedisCommandStats.open(redis.url);
  const bull = await startBullmq(redis.url, { concurrency: 1000 });
  try {
    for (let i = 0; i < args.warmup; i++) await bull.call();
    await stats.reset();
    let cpuAtStart = process.cpuUsage();
    const samples: number[] = [];
    for (let i = 0; i < args.count; i++) {
      const started = performance.now();
      await bull.call();
      samples.push(performance.now() - started);
    }
    const s = summarize(samples);
    let cpu = process.cpuUsage(cpuAtStart);
    console.log(
      `BullMQ add + waitUntilFinished x${s.count}: p50 ${s.p50.toFixed(3)} ms, p99 ${s.p99.toFixed(3)} ms, mean ${s.mean.toFixed(3)} ms; CPU of this process ${((cpu.user + cpu.system) / 1000 / s.count).toFixed(3)} ms/call`,
    );
    await stats.print(s.count, "call");
    await bull.bulk(1000, { deadlineMs: 30_000, progress: () => undefined });
    await stats.reset();
    cpuAtStart = process.cpuUsage();
    const bulk = await bull.bulk(10_000, { deadlineMs: 60_000, progress: () => undefined });
    cpu = process.cpuUsage(cpuAtStart);
    console.log(
      `BullMQ addBulk x${bulk.inputs}: ${Math.round(bulk.perSecond)} jobs/s (${bulk.ms.toFixed(0)} ms); CPU of this process ${((cpu.user + cpu.system) / 1000 / bulk.inputs).toFixed(3)} ms/job`,
    );
    await stats.print(bulk.inputs, "job");
  } finally {
    await bull.close();
    await stats.close();
    await redis.stop();
  }
}

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
    console.log(
      `WorkerProcess.run alone x${s.count}: p50 ${s.p50.toFixed(3)} ms, p99 ${s.p99.toFixed(3)} ms, mean ${s.mean.toFixed(3)} ms, over 2 ms: ${samples.filter((v) => v > 2).length}`,
    );
    await proc.stop(2_000);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The HTTP leg of `.remote()` alone, with an instant answer: which layer costs what. */
async function httpLayers(count: number): Promise<void> {
  const token = "kiln_profile";
  const answer = { callId: "fc-x", outcome: { ok: true, value: encode(null) } };
  const servers: { name: string; app: FastifyInstance }[] = [];
  const bare = Fastify({ logger: false });
  bare.post("/v1/apps/:app/functions/:fn/calls", async () => answer);
  servers.push({ name: "fastify, bare route", app: bare });
  const kilnLike = Fastify({
    logger: false,
    bodyLimit: 64 * 1024 * 1024,
    requestTimeout: 0,
    keepAliveTimeout: 65_000,
  });
  const authorized = tokenMatcher(token);
  kilnLike.addHook("onRequest", async (request) => {
    if (!authorized(request.headers.authorization)) throw new Error("unauthenticated");
  });
  const fnParams = z.object({ app: z.string().min(1), fn: z.string().min(1) });
  kilnLike.post("/v1/apps/:app/functions/:fn/calls", async (request) => {
    fnParams.parse(request.params);
    callBody.parse(request.body);
    return answer;
  });
  servers.push({ name: "fastify + token hook + zod (as server.ts)", app: kilnLike });
  const urls = await Promise.all(
    servers.map(async ({ app }) => app.listen({ host: "127.0.0.1", port: 0 })),
  );
  // Two rounds: the first one also warms undici's request path up; the second is the one to read.
  for (let round = 1; round <= 2; round++) {
    console.log(`HTTP leg alone, AgentHttp client, x${count}, round ${round}:`);
    const echo = await httpEchoFloor({
      warmup: 300,
      count,
      deadlineMs: 60_000,
      progress: () => undefined,
    });
    const e = summarize(echo);
    console.log(
      `  ${"node:http echo (the bench floor, undici request)".padEnd(44)} p50 ${e.p50.toFixed(3)} ms, mean ${e.mean.toFixed(3)} ms`,
    );
    for (const [i, { name }] of servers.entries()) {
      const http = new AgentHttp(`${urls[i]}/`, token);
      const call = (): Promise<unknown> =>
        http.request("POST", "/v1/apps/bench/functions/noop/calls", {
          body: { args: encode([]), waitMs: 50_000 },
        });
      for (let w = 0; w < 300; w++) await call();
      const samples: number[] = [];
      for (let c = 0; c < count; c++) {
        const started = performance.now();
        await call();
        samples.push(performance.now() - started);
      }
      const s = summarize(samples);
      console.log(`  ${name.padEnd(44)} p50 ${s.p50.toFixed(3)} ms, mean ${s.mean.toFixed(3)} ms`);
    }
  }
  for (const { app } of servers) await app.close();
}

/**
 * The bench's batching run (4 client processes x 500 concurrent `.remote()`), with a timeline in
 * 250 ms steps of what the agent did: calls that entered Router.call, handler calls (batches)
 * started and their inputs, and calls answered; then where the agent process's CPU went.
 */
async function batchingTimeline(args: Args): Promise<void> {
  const stateDir = await mkdtemp(join(tmpdir(), "kiln-prof-batching-"));
  const redis: BenchRedis | null = args.redis ? await startBenchRedis() : null;
  const agent = await Agent.start({
    stateDir,
    port: 0,
    cpu: 8,
    ...(redis ? { redisUrl: redis.url } : {}),
  });
  try {
    const kiln = await connect({ url: agent.url, token: agent.token });
    const spec = JSON.parse(await readFile(join(fixtureDir, "scaling.json"), "utf8")) as Record<
      string,
      unknown
    >;
    await deployApp(kiln.http, spec, fixtureDir);
    const noopSpec = JSON.parse(await readFile(join(fixtureDir, "app.json"), "utf8")) as Record<
      string,
      unknown
    >;
    await deployApp(kiln.http, noopSpec, fixtureDir);
    const events: { at: number; kind: "in" | "out" | "batch"; n: number }[] = [];
    const routerProto = Router.prototype as unknown as {
      call: (...a: unknown[]) => Promise<unknown>;
    };
    const call = routerProto.call;
    routerProto.call = async function (this: unknown, ...a: unknown[]): Promise<unknown> {
      events.push({ at: performance.now(), kind: "in", n: 1 });
      try {
        return await call.apply(this, a);
      } finally {
        events.push({ at: performance.now(), kind: "out", n: 1 });
      }
    };
    const workerProto = WorkerProcess.prototype as unknown as {
      runBatch: (id: string, items: string[]) => Promise<unknown>;
      run: (...a: unknown[]) => Promise<unknown>;
    };
    const runBatch = workerProto.runBatch;
    workerProto.runBatch = function (this: unknown, id: string, items: string[]): Promise<unknown> {
      events.push({ at: performance.now(), kind: "batch", n: items.length });
      return runBatch.call(this, id, items);
    };
    const run = workerProto.run;
    workerProto.run = function (this: unknown, ...a: unknown[]): Promise<unknown> {
      events.push({ at: performance.now(), kind: "batch", n: 1 });
      return run.apply(this, a);
    };
    const cpuAtStart = process.cpuUsage();
    const result = await measureBatching(
      agent,
      { app: String(spec["name"]), fn: args.fn },
      {
        processes: 4,
        perProcess: 500,
        deadlineMs: 60_000,
        progress: () => undefined,
        ...(args.experiments.includes("cold-clients")
          ? {}
          : { warmup: { app: String(noopSpec["name"]), fn: "noop", targetCalls: 8 } }),
      },
    );
    const cpu = process.cpuUsage(cpuAtStart);
    console.log(
      `batching ${args.fn}${label(args)}: ${result.calls} calls in ${result.ms.toFixed(0)} ms (${Math.round(result.perSecond)}/s), ${result.batches} handler calls, mean batch ${result.meanBatchSize.toFixed(1)}; ` +
        `agent process CPU (client processes' start included) ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms (${((cpu.user + cpu.system) / 1000 / result.calls).toFixed(3)} ms/call)`,
    );
    console.log(
      "timeline (ms since go: calls entered / handler calls started (inputs) / calls answered, in each 250 ms):",
    );
    const step = 250;
    const started = result.goAt;
    const end = Math.max(...events.map((e) => e.at)) - started;
    for (let from = 0; from <= end; from += step) {
      const inStep = events.filter((e) => e.at - started >= from && e.at - started < from + step);
      const count = (kind: string): number =>
        inStep.filter((e) => e.kind === kind).reduce((sum, e) => sum + e.n, 0);
      const batches = inStep.filter((e) => e.kind === "batch");
      console.log(
        `  ${String(from).padStart(6)}  in ${String(count("in")).padStart(5)}  batches ${String(batches.length).padStart(4)} (${String(count("batch")).padStart(5)} inputs)  out ${String(count("out")).padStart(5)}`,
      );
    }
  } finally {
    await agent.stop();
    await redis?.stop();
    await rm(stateDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.mode === "worker") return workerAlone(args.count);
  if (args.mode === "http") return httpLayers(args.count);
  if (args.mode === "bullmq") return bullmqAlone(args);
  if (args.mode === "batching") return batchingTimeline(args);
  const stateDir = await mkdtemp(join(tmpdir(), "kiln-prof-"));
  const store: Store | undefined = args.memoryStore ? await EmbeddedStore.open() : undefined;
  const redis: BenchRedis | null = args.redis ? await startBenchRedis() : null;
  const redisStats = redis ? await RedisCommandStats.open(redis.url) : null;
  const agent = await Agent.start({
    stateDir,
    port: 0,
    ...(store ? { store } : {}),
    ...(redis ? { redisUrl: redis.url } : {}),
  });
  const watchdog = setTimeout(() => process.exit(2), 120_000);
  watchdog.unref();
  try {
    const kiln = await connect({ url: agent.url, token: agent.token });
    const spec = JSON.parse(await readFile(join(fixtureDir, "app.json"), "utf8")) as Record<
      string,
      unknown
    >;
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
    // WorkerProcess.post (private, synchronous): child.send() of one message, i.e. the IPC write.
    const postMeter = new Meter();
    const postSamples: number[] = [];
    const proto = WorkerProcess.prototype as unknown as { post: (message: unknown) => void };
    const post = proto.post;
    proto.post = function (this: unknown, message: unknown): void {
      const started = performance.now();
      post.call(this, message);
      const took = performance.now() - started;
      postMeter.totalMs += took;
      postMeter.calls += 1;
      if (postSamples.length < 1_000_000) postSamples.push(took);
    };
    if (args.experiments.includes("stub-router")) {
      // The agent's HTTP layer alone: Router.call answers at once, nothing is queued or run.
      const stubbed = { callId: "fc-stub", outcome: { ok: true as const, value: encode(null) } };
      (Router.prototype as unknown as { call: () => Promise<unknown> }).call = async () => stubbed;
    }
    if (args.experiments.includes("no-mark-running")) {
      // What if markRunning were off the critical path (not awaited before the input is sent)?
      (OutcomeWriter.prototype as unknown as { markRunning: () => Promise<void> }).markRunning =
        async () => undefined;
    }
    if (args.experiments.includes("auto-pipelining")) {
      // What if the Redis store's command connection used ioredis auto-pipelining (commands issued in
      // one event-loop turn go out in one write)? The option is read at each command.
      const cmd = (
        agent.store as unknown as { cmd?: { options: { enableAutoPipelining?: boolean } } }
      ).cmd;
      if (!cmd) throw new Error("--experiment auto-pipelining needs --redis");
      cmd.options.enableAutoPipelining = true;
    }
    for (const [name, meter] of storeOps) instrument(agent.store, name, meter, undefined, name);
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
    const meters = [
      routerCall,
      routerMapInputs,
      routerMapOutputs,
      workerRun,
      postMeter,
      flushes,
      ...storeOps.values(),
    ];
    // CPU of this process (client + agent) over the measured window; the worker's is apart.
    let cpuAtStart = process.cpuUsage();
    const resetMeters = async (): Promise<void> => {
      for (const meter of meters) meter.reset();
      await redisStats?.reset();
      cpuAtStart = process.cpuUsage();
    };

    const noop = kiln.function<(x?: unknown) => unknown>(target.app, target.fn);
    let units: number;
    let wallMs: number;
    if (args.mode === "router") {
      // The agent's own path for one synchronous call, without fastify, zod or fetch.
      const body = { args: encode([]), mode: "value" as const, spawn: false, waitMs: 50_000 };
      for (let i = 0; i < args.warmup; i++) await agent.router.call(target.app, target.fn, body);
      await resetMeters();
      const samples: number[] = [];
      const started = performance.now();
      for (let i = 0; i < args.count; i++) {
        const t0 = performance.now();
        const response = await agent.router.call(target.app, target.fn, body);
        samples.push(performance.now() - t0);
        if (!response.outcome?.ok) throw new Error("router.call gave no outcome");
      }
      wallMs = performance.now() - started;
      units = args.count;
      const s = summarize(samples);
      console.log(
        `router.call x${s.count}${label(args)}: p50 ${s.p50.toFixed(3)} ms, p99 ${s.p99.toFixed(3)} ms, mean ${s.mean.toFixed(3)} ms`,
      );
    } else if (args.mode === "remote") {
      for (let i = 0; i < args.warmup; i++) await noop.remote();
      await resetMeters();
      const samples: number[] = [];
      const segments = {
        "client -> Router.call": [] as number[],
        "Router.call -> WorkerProcess.run": [] as number[],
        "WorkerProcess.run (IPC + handler)": [] as number[],
        "run done -> Router.call returns": [] as number[],
        "Router.call returns -> client has result": [] as number[],
      };
      // Measured from Router.call, not chained: the order of the steps varies (an eager hand-over
      // on Redis starts the run before the enqueue resolves). The settle usually resolves after the
      // reply (early hand-over): its own time is store.settleMany in the table below.
      const storeSteps: Record<string, number[]> = {
        "Router.call -> claim resolved (the run may start)": [],
        "Router.call -> enqueue resolved (input + record stored)": [],
        "claim resolved -> WorkerProcess.run": [],
      };
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
        const at = (name: string): number => storeDone.get(name) ?? Number.NaN;
        storeSteps["Router.call -> claim resolved (the run may start)"]?.push(
          at("claim") - marks.routerIn,
        );
        storeSteps["Router.call -> enqueue resolved (input + record stored)"]?.push(
          at("enqueue") - marks.routerIn,
        );
        storeSteps["claim resolved -> WorkerProcess.run"]?.push(marks.runIn - at("claim"));
      }
      wallMs = performance.now() - started;
      units = args.count;
      const s = summarize(samples);
      console.log(
        `remote x${s.count}${label(args)}: p50 ${s.p50.toFixed(3)} ms, p99 ${s.p99.toFixed(3)} ms, mean ${s.mean.toFixed(3)} ms`,
      );
      console.log("segments of one call (p50 / mean / p99 ms, calls over 2 ms):");
      for (const [name, values] of Object.entries(segments)) {
        const seg = summarize(values);
        const slow = values.filter((v) => v > 2).length;
        console.log(
          `  ${name.padEnd(42)} ${seg.p50.toFixed(3)} / ${seg.mean.toFixed(3)} / ${seg.p99.toFixed(3)}  ${slow}`,
        );
      }
      console.log(
        "the agent's store steps within a call (p50 / mean / p99 ms; from when each store method resolved):",
      );
      for (const [name, values] of Object.entries(storeSteps)) {
        const seg = summarize(values.filter((v) => Number.isFinite(v)));
        console.log(
          `  ${name.padEnd(56)} ${seg.p50.toFixed(3)} / ${seg.mean.toFixed(3)} / ${seg.p99.toFixed(3)}`,
        );
      }
    } else {
      await runMap(kiln, target, { count: 1000, deadlineMs: 30_000, progress: () => undefined });
      await resetMeters();
      const started = performance.now();
      const result = await runMap(kiln, target, {
        count: args.count,
        deadlineMs: 60_000,
        progress: () => undefined,
      });
      wallMs = performance.now() - started;
      units = result.inputs;
      console.log(
        `map x${result.inputs}${label(args)}: ${Math.round(result.perSecond)} inputs/s (${result.ms.toFixed(0)} ms)`,
      );
    }
    const per = (meter: Meter): string =>
      `${(meter.calls / units).toFixed(2)} calls/unit, ${(meter.totalMs / units).toFixed(3)} ms/unit (${meter.calls} calls, ${meter.totalMs.toFixed(0)} ms total)`;
    const cpu = process.cpuUsage(cpuAtStart);
    console.log(
      `wall: ${(wallMs / units).toFixed(3)} ms/unit; CPU of this process (client + agent): ${((cpu.user + cpu.system) / 1000 / units).toFixed(3)} ms/unit (user ${(cpu.user / 1000 / units).toFixed(3)}, system ${(cpu.system / 1000 / units).toFixed(3)})`,
    );
    console.log(`  Router.call          ${per(routerCall)}`);
    console.log(`  Router.mapInputs     ${per(routerMapInputs)}`);
    console.log(`  Router.mapOutputs    ${per(routerMapOutputs)}`);
    console.log(`  WorkerProcess.run    ${per(workerRun)}`);
    const postSummary = summarize(postSamples.slice(-postMeter.calls));
    console.log(
      `  WorkerProcess.post   ${per(postMeter)}; p50 ${postSummary.p50.toFixed(3)} ms, p99 ${postSummary.p99.toFixed(3)} ms, over 1 ms: ${postSamples.slice(-postMeter.calls).filter((v) => v > 1).length}`,
    );
    console.log(`  store log flush      ${per(flushes)}`);
    for (const [name, meter] of storeOps)
      if (meter.calls > 0) console.log(`  store.${name.padEnd(15)} ${per(meter)}`);
    await redisStats?.print(units, args.mode === "map" ? "input" : "call");
  } finally {
    await agent.stop();
    await redisStats?.close();
    await redis?.stop();
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
