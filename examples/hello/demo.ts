/**
 * The README's demo: starts an embedded agent (no Redis, no cloud), deploys the hello app and
 * exercises every call style, printing what happened. Run with `npm run demo`.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Agent } from "../../runtime/agent/agent.js";
import { connect, RemoteError, type KilnError } from "../../runtime/client/index.js";
import { deployApp } from "../../runtime/deploy/deploy.js";
import type * as handlers from "./functions.js";

/** The example's source folder, whether this runs from dist/ or from source. */
const here = dirname(fileURLToPath(import.meta.url));
const exampleDir = here.includes(`${join("dist", "examples")}`) ? resolve(here, "..", "..", "..", "examples", "hello") : here;

function show(label: string, value: unknown, ms: number): void {
  const text = typeof value === "string" ? value : JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v));
  console.log(`  ${label.padEnd(34)} ${text}  (${ms.toFixed(0)} ms)`);
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await fn();
  return [value, performance.now() - started];
}

async function main(): Promise<void> {
  const stateDir = await mkdtemp(join(tmpdir(), "kiln-demo-"));
  console.log(`kiln demo: embedded agent, state in ${stateDir}`);
  const agent = await Agent.start({ stateDir, port: 0 });
  try {
    const kiln = await connect({ url: agent.url, token: agent.token });
    console.log(`agent listening on ${agent.url}\n`);

    const spec = JSON.parse(await readFile(join(exampleDir, "app.json"), "utf8")) as unknown;
    const [deployed, deployMs] = await timed(() =>
      deployApp(kiln.http, spec, exampleDir, (e) => console.log(`  deploy: ${e.step} ${e.detail}`)),
    );
    console.log(`deployed app '${deployed.app.name}' v${deployed.app.version}: ${deployed.app.functions.join(", ")} (${deployMs.toFixed(0)} ms)\n`);

    const square = kiln.function<typeof handlers.square>("hello", "square");
    const add = kiln.function<typeof handlers.add>("hello", "add");
    const embed = kiln.function<(text: string) => ReturnType<handlers.Embedder["embed"]>>("hello", "embed");
    const countdown = kiln.function<typeof handlers.countdown>("hello", "countdown");
    const fail = kiln.function<typeof handlers.fail>("hello", "fail");
    const rich = kiln.function<typeof handlers.rich>("hello", "rich");
    const sumOfSquares = kiln.function<typeof handlers.sumOfSquares>("hello", "sumOfSquares");
    const slow = kiln.function<typeof handlers.slow>("hello", "slow");

    console.log("call styles:");
    show("square.remote(3) cold", ...(await timed(() => square.remote(3))));
    show("square.remote(4) warm", ...(await timed(() => square.remote(4))));
    const [squares, mapMs] = await timed(async () => {
      const out: number[] = [];
      for await (const y of square.map([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])) out.push(y);
      return out;
    });
    show("square.map(1..10)", squares, mapMs);
    const [sums, zipMs] = await timed(async () => {
      const out: number[] = [];
      for await (const y of add.map([1, 2, 3], [10, 20, 30])) out.push(y);
      return out;
    });
    show("add.map([1,2,3], [10,20,30])", sums, zipMs);
    const [starred, starMs] = await timed(async () => {
      const out: number[] = [];
      for await (const y of add.starmap([[1, 2], [3, 4]])) out.push(y);
      return out;
    });
    show("add.starmap([[1,2],[3,4]])", starred, starMs);
    show("embed.remote (class + enter())", ...(await timed(() => embed.remote("kiln fires functions fast"))));
    const [ticks, genMs] = await timed(async () => {
      const out: number[] = [];
      for await (const tick of countdown.remoteGen(5)) out.push(tick);
      return out;
    });
    show("countdown.remoteGen(5)", ticks, genMs);
    const [value, richMs] = await timed(() => rich.remote());
    const r = value as Record<string, unknown>;
    show(
      "rich.remote() types",
      Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === null ? "null" : v === undefined ? "undefined" : (v as object).constructor?.name ?? typeof v])),
      richMs,
    );
    show("sumOfSquares.remote(100) (nested)", ...(await timed(() => sumOfSquares.remote(100))));
    const [caught, failMs] = await timed(async () => {
      try {
        await fail.remote("demo");
        return "no error?";
      } catch (error) {
        const e = error as KilnError;
        return e instanceof RemoteError ? `${e.name}: ${e.remoteName}: ${e.remoteMessage} (retried once first)` : String(e);
      }
    });
    show("fail.remote('demo')", caught, failMs);
    const [spawned, spawnMs] = await timed(async () => {
      const call = await slow.spawn(200);
      const before = await call.status();
      const result = await call.get({ timeoutMs: 10_000 });
      return `${call.id.slice(0, 15)}… ${before} -> ${result}`;
    });
    show("slow.spawn(200) + get()", spawned, spawnMs);
    const [cancelled, cancelMs] = await timed(async () => {
      const call = await slow.spawn(20_000);
      await call.cancel();
      try {
        await call.get({ timeoutMs: 10_000 });
        return "not cancelled?";
      } catch (error) {
        return `${(error as Error).name}; status ${await call.status()}`;
      }
    });
    show("slow.spawn(20000) + cancel()", cancelled, cancelMs);

    const status = await kiln.status();
    console.log("\nstatus:");
    for (const app of status.apps) {
      for (const fn of app.functions) {
        console.log(`  ${app.name}.${fn.name.padEnd(14)} containers ${fn.containers.length}  cold starts ${fn.coldStarts}`);
      }
    }
  } finally {
    await agent.stop();
    await rm(stateDir, { recursive: true, force: true });
  }
  console.log("\ndemo finished: every call style ran on a real agent and real worker processes.");
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
