/**
 * A client process of the batching benchmark: forked by bench/batching.ts, it connects to the
 * agent through the built client (dist/runtime/client), warms up with `count` concurrent calls
 * of a no-op function (the HTTP client's JIT, and `count` keep-alive connections to the agent that the
 * measured calls then reuse) and `targetWarmup` concurrent calls of the measured function (so it
 * has a container up and its bundle loaded), says "ready", and on "go" makes `count` single `.remote(i)` calls
 * at once (all in flight together), then reports what came back: how many, how many wrong, and
 * the batch each input rode in (the handler says so in its result).
 *
 *   argv: <agent url> <token> <app> <fn> <count> <first input> [<warm-up app> <warm-up fn> <targetWarmup>]
 */
import { connect } from "../runtime/client/index.js";
import { sendToParent } from "./child.js";

export type ToClient = { t: "go" };
export type FromClient =
  | { t: "ready" }
  | { t: "done"; calls: number; wrong: number; batches: string[]; ms: number }
  | { t: "error"; message: string };

interface Echoed {
  x: number;
  batch: string;
  size: number;
}

const send = (message: FromClient): Promise<void> => sendToParent(message);

async function main(): Promise<void> {
  const [url, token, app, fn, countText, firstText, warmApp, warmFn, targetWarmText] =
    process.argv.slice(2);
  if (!url || !token || !app || !fn)
    throw new Error("usage: remote-client <url> <token> <app> <fn> <count> <first>");
  const count = Number(countText);
  const first = Number(firstText ?? 0);
  const kiln = await connect({ url, token });
  const remote = kiln.function<(x: number) => Echoed>(app, fn);
  if (warmApp && warmFn) {
    const warm = kiln.function<(x: number) => number>(warmApp, warmFn);
    await Promise.all(Array.from({ length: count }, (_, i) => warm.remote(i)));
    await Promise.all(
      Array.from({ length: Number(targetWarmText ?? 0) }, (_, i) => remote.remote(-1 - i)),
    );
  }
  const go = new Promise<void>((resolveGo) =>
    process.once("message", (message: ToClient) => message.t === "go" && resolveGo()),
  );
  await send({ t: "ready" });
  await go;
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: count }, (_, i) => remote.remote(first + i)),
  );
  const ms = performance.now() - started;
  const wrong = results.filter((r, i) => r.x !== first + i).length;
  await send({
    t: "done",
    calls: results.length,
    wrong,
    batches: [...new Set(results.map((r) => r.batch))],
    ms,
  });
}

// On success the process stays up until the bench disconnects or kills it, so that its "done"
// is never raced by its exit.
process.on("disconnect", () => process.exit(0));
main().then(
  () => undefined,
  async (error: unknown) => {
    await send({ t: "error", message: (error as Error)?.stack ?? String(error) });
    process.exit(1);
  },
);
