/**
 * `npm run bench`: starts an embedded agent (temp state dir, port 0), deploys the no-op fixture
 * and measures, each beside a floor taken in the same run:
 *
 * 1. warm `.remote()` latency (p50 / p99)        vs an HTTP keep-alive echo with the same fetch
 * 2. `.map()` throughput of 10,000 no-op inputs   vs a worker IPC echo (window of 1,000)
 * 3. cold start, zero containers to first result  vs fork() of a trivial script to its first message
 *
 * Prints one progress line per step, then the table, and writes it to bench/RESULTS.md.
 * Every loop has a deadline and a watchdog ends the process if the whole bench overruns.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Agent } from "../runtime/agent/agent.js";
import { connect } from "../runtime/client/index.js";
import { deployApp } from "../runtime/deploy/deploy.js";
import { measureColdStart } from "./cold-start.js";
import { forkFloor, ipcEchoFloor, startHttpEcho } from "./floors.js";
import { measureMapThroughput } from "./map-throughput.js";
import { measureRemoteLatency } from "./remote-latency.js";
import { machine, median, ms, perSecond, ratio, renderResults, renderTable, summarize, type Row } from "./report.js";

/** bench/ in the source tree, whether this runs from dist/ or from source. */
const here = dirname(fileURLToPath(import.meta.url));
const benchDir = here.includes(join("dist", "bench")) ? resolve(here, "..", "..", "bench") : here;
const fixtureDir = join(benchDir, "fixtures");

const CONFIG = {
  /** Warm-up calls of each (kiln, floor), then `count` of each in alternating blocks. */
  remote: { warmup: 1_000, count: 2_000, block: 250, deadlineMs: 40_000 },
  map: { warmup: 1_000, count: 10_000, window: 1_000, deadlineMs: 30_000 },
  cold: { samples: 5, deadlineMs: 30_000 },
  /** The whole run, agent start to RESULTS.md; past it the process exits with code 2. */
  watchdogMs: 170_000,
} as const;

const TARGETS = { remoteP50Ratio: 2, mapPerSecond: 5_000, coldStartMs: 300 } as const;

function progress(phase: string): (done: number, total: number) => void {
  return (done, total) => console.log(`${phase}: ${done}/${total}`);
}

async function main(): Promise<void> {
  const benchStarted = performance.now();
  const host = machine(); // before anything runs: its load average is the box's, not the bench's
  const watchdog = setTimeout(() => {
    console.error(`bench: still running after ${CONFIG.watchdogMs / 1000} s; giving up`);
    process.exit(2);
  }, CONFIG.watchdogMs);
  watchdog.unref();

  const stateDir = await mkdtemp(join(tmpdir(), "kiln-bench-"));
  console.log(`kiln bench: embedded agent, state in ${stateDir}`);
  const agent = await Agent.start({ stateDir, port: 0 });
  try {
    const kiln = await connect({ url: agent.url, token: agent.token });
    const spec = JSON.parse(await readFile(join(fixtureDir, "app.json"), "utf8")) as Record<string, unknown>;
    const app = String(spec["name"]);
    const target = { app, fn: "noop" };
    await deployApp(kiln.http, spec, fixtureDir);
    console.log(`deployed ${app}.noop (maxContainers 1, maxInputs 1000) on ${agent.url}`);

    // 1. warm .remote() latency (the first warm-up call starts the container), floor interleaved
    console.log(`remote latency + http echo floor: 0/${CONFIG.remote.count} (warm-up ${CONFIG.remote.warmup} of each, blocks of ${CONFIG.remote.block})`);
    const echoServer = await startHttpEcho();
    const latency = await measureRemoteLatency(kiln, target, echoServer, {
      ...CONFIG.remote,
      progress: progress("remote latency + http echo floor"),
    }).finally(() => echoServer.close());

    // 2. .map() throughput
    console.log(`map throughput: 0/${CONFIG.map.count} (warm-up map of ${CONFIG.map.warmup})`);
    const map = await measureMapThroughput(kiln, target, { ...CONFIG.map, progress: progress("map throughput") });
    console.log(`ipc echo floor: 0/${CONFIG.map.count} (window ${CONFIG.map.window})`);
    const ipc = await ipcEchoFloor({ ...CONFIG.map, progress: progress("ipc echo floor") });

    // 3. cold start
    console.log(`cold start: 0/${CONFIG.cold.samples}`);
    const cold = await measureColdStart(
      kiln,
      { spec, dir: fixtureDir, fn: "noop", namePrefix: `${app}-cold` },
      { ...CONFIG.cold, progress: progress("cold start") },
    );
    console.log(`fork floor: 0/${CONFIG.cold.samples}`);
    const forks = await forkFloor({ samples: CONFIG.cold.samples, progress: progress("fork floor") });

    // ---- table
    const r = summarize(latency.kiln);
    const e = summarize(latency.floor);
    const coldMedian = median(cold.map((s) => s.totalMs));
    const readyMedian = median(cold.flatMap((s) => (s.containerReadyMs === null ? [] : [s.containerReadyMs])));
    const forkMedian = median(forks);
    const rows: Row[] = [
      {
        metric: `remote() warm latency p50 (n=${r.count})`,
        kiln: ms(r.p50),
        floor: ms(e.p50),
        ratio: ratio(r.p50 / e.p50),
        target: `<= ${TARGETS.remoteP50Ratio}x floor`,
        pass: r.count === CONFIG.remote.count && r.p50 <= TARGETS.remoteP50Ratio * e.p50,
      },
      {
        metric: `remote() warm latency p99 (n=${r.count})`,
        kiln: ms(r.p99),
        floor: ms(e.p99),
        ratio: ratio(r.p99 / e.p99),
        target: "-",
        pass: null,
      },
      {
        metric: `map() throughput (${map.inputs.toLocaleString("en-US")} inputs)`,
        kiln: perSecond(map.perSecond),
        floor: perSecond(ipc.perSecond),
        ratio: ratio(map.perSecond / ipc.perSecond),
        target: `>= ${TARGETS.mapPerSecond.toLocaleString("en-US")}/s`,
        pass: map.inputs === CONFIG.map.count && map.perSecond >= TARGETS.mapPerSecond,
      },
      {
        metric: `cold start median (n=${cold.length})`,
        kiln: ms(coldMedian),
        floor: ms(forkMedian),
        ratio: ratio(coldMedian / forkMedian),
        target: `<= ${TARGETS.coldStartMs} ms`,
        pass: cold.length === CONFIG.cold.samples && coldMedian <= TARGETS.coldStartMs,
      },
    ];
    const notes = [
      `fixture: bench/fixtures/app.json, handler \`noop(x) => x ?? null\`, maxContainers 1, maxInputs 1000; embedded store (default) with its log in a temp dir; agent and client in one process, as in the demo.`,
      `remote(): ${CONFIG.remote.warmup} warm-up calls of each, then ${r.count} sequential kiln calls and ${e.count} floor round trips in alternating blocks of ${CONFIG.remote.block}; kiln mean ${ms(r.mean)}, min ${ms(r.min)}, max ${ms(r.max)}; floor mean ${ms(e.mean)}, min ${ms(e.min)}, max ${ms(e.max)}.`,
      `map(): warm-up map of ${CONFIG.map.warmup}, then ${map.inputs} inputs in ${(map.ms / 1000).toFixed(2)} s (first input pulled to last output yielded); IPC echo floor ${ipc.messages} messages in ${(ipc.ms / 1000).toFixed(2)} s, window ${CONFIG.map.window}, serialization "advanced".`,
      `cold start samples (ms, caller side): ${cold.map((s) => s.totalMs.toFixed(0)).join(", ")}; agent-reported container ready (fork to worker "ready"), median ${ms(readyMedian)}; deploy (not counted) median ${ms(median(cold.map((s) => s.deployMs)))}; fork floor samples: ${forks.map((f) => f.toFixed(0)).join(", ")}.`,
    ];
    const wallSeconds = (performance.now() - benchStarted) / 1000;
    const text = renderResults({ machine: host, date: new Date().toISOString(), rows, notes, wallSeconds });
    await writeFile(join(benchDir, "RESULTS.md"), text);
    console.log(`\n${renderTable(rows)}\n`);
    for (const note of notes) console.log(`- ${note}`);
    console.log(`\nwrote ${join(benchDir, "RESULTS.md")} (${wallSeconds.toFixed(1)} s)`);
    const missed = rows.filter((row) => row.pass === false).map((row) => row.metric);
    if (missed.length > 0) console.log(`targets missed: ${missed.join("; ")}`);
  } finally {
    await agent.stop();
    await rm(stateDir, { recursive: true, force: true });
    clearTimeout(watchdog);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
