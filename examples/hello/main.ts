/**
 * The README's demo, run by `npm run demo` as `kiln run examples/hello examples/hello/main.ts`:
 * kiln deploys the hello app (index.ts) under a temporary name, calls `main`, streams the workers'
 * logs, and removes the app at the end. With no agent running it starts an embedded one.
 *
 * Flags after `--` are checked by `args`: `kiln run examples/hello examples/hello/main.ts -- --n 20`.
 */
import { z } from "zod";
import { RemoteError, type KilnError } from "kiln/client";
import type { RunContext } from "kiln";
import type * as handlers from "./functions.js";

/** The flags main takes. */
export const args = z.object({
  /** How many squares `square.map` computes. */
  n: z.coerce.number().int().min(1).max(1000).default(10),
});

function show(label: string, value: unknown, ms: number): void {
  const text =
    typeof value === "string"
      ? value
      : JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v));
  console.log(`  ${label.padEnd(34)} ${text}  (${ms.toFixed(0)} ms)`);
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await fn();
  return [value, performance.now() - started];
}

export async function main({ n }: z.infer<typeof args>, ctx: RunContext): Promise<void> {
  const square = ctx.function<typeof handlers.square>("square");
  const add = ctx.function<typeof handlers.add>("add");
  const embed = ctx.function<(text: string) => ReturnType<handlers.Embedder["embed"]>>("embed");
  const countdown = ctx.function<typeof handlers.countdown>("countdown");
  const fail = ctx.function<typeof handlers.fail>("fail");
  const rich = ctx.function<typeof handlers.rich>("rich");
  const sumOfSquares = ctx.function<typeof handlers.sumOfSquares>("sumOfSquares");
  const slow = ctx.function<typeof handlers.slow>("slow");

  console.log(`call styles (app ${ctx.app}):`);
  show("square.remote(3) cold", ...(await timed(() => square.remote(3))));
  show("square.remote(4) warm", ...(await timed(() => square.remote(4))));
  const [squares, mapMs] = await timed(async () => {
    const out: number[] = [];
    for await (const y of square.map(Array.from({ length: n }, (_, i) => i + 1))) out.push(y);
    return out;
  });
  show(`square.map(1..${n})`, squares, mapMs);
  const [sums, zipMs] = await timed(async () => {
    const out: number[] = [];
    for await (const y of add.map([1, 2, 3], [10, 20, 30])) out.push(y);
    return out;
  });
  show("add.map([1,2,3], [10,20,30])", sums, zipMs);
  const [starred, starMs] = await timed(async () => {
    const out: number[] = [];
    for await (const y of add.starmap([
      [1, 2],
      [3, 4],
    ]))
      out.push(y);
    return out;
  });
  show("add.starmap([[1,2],[3,4]])", starred, starMs);
  show(
    "embed.remote (class + enter())",
    ...(await timed(() => embed.remote("kiln fires functions fast"))),
  );
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
    Object.fromEntries(
      Object.entries(r).map(([k, v]) => [
        k,
        v === null
          ? "null"
          : v === undefined
            ? "undefined"
            : ((v as object).constructor?.name ?? typeof v),
      ]),
    ),
    richMs,
  );
  show("sumOfSquares.remote(100) (nested)", ...(await timed(() => sumOfSquares.remote(100))));
  const [caught, failMs] = await timed(async () => {
    try {
      await fail.remote("demo");
      return "no error?";
    } catch (error) {
      const e = error as KilnError;
      return e instanceof RemoteError
        ? `${e.name}: ${e.remoteName}: ${e.remoteMessage} (retried once first)`
        : String(e);
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

  const status = await ctx.kiln.status();
  console.log("\nstatus:");
  for (const app of status.apps.filter((a) => a.name === ctx.app)) {
    for (const fn of app.functions) {
      console.log(
        `  ${fn.name.padEnd(14)} containers ${fn.containers.length}  cold starts ${fn.coldStarts}`,
      );
    }
  }
  console.log("\ndemo finished: every call style ran on a real agent and real worker processes.");
}
