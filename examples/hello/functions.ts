/**
 * Handlers of the hello example: each call style of kiln, end to end.
 * Deployed by the Pulumi program beside it (index.ts), or by `app.json` (`kiln deploy --spec`).
 */
import { connect } from "kiln/client";

/** A plain function. */
export function square(x: number): number {
  return x * x;
}

/** Two arguments, for `.map(xs, ys)` and `.starmap`. */
export function add(a: number, b: number): number {
  return a + b;
}

/** A class: `enter()` runs once per container (load a model), then every input reuses it. */
export class Embedder {
  private vocabulary: Map<string, number> | null = null;
  loadedAt = 0;

  async enter(): Promise<void> {
    // Stands in for loading weights: done once, before the first input.
    await new Promise((resolve) => setTimeout(resolve, 50));
    this.vocabulary = new Map(
      ["kiln", "fires", "functions", "fast"].map((word, i) => [word, i + 1]),
    );
    this.loadedAt = Date.now();
    console.log("Embedder loaded its vocabulary");
  }

  embed(text: string): { vector: number[]; loadedAt: number } {
    const vocabulary = this.vocabulary;
    if (!vocabulary) throw new Error("enter() did not run");
    return {
      vector: text.split(/\s+/).map((word) => vocabulary.get(word.toLowerCase()) ?? 0),
      loadedAt: this.loadedAt,
    };
  }
}

/** A generator: callers iterate over what it yields with `remoteGen`. */
export async function* countdown(from: number): AsyncGenerator<number> {
  for (let i = from; i > 0; i--) {
    yield i;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Throws: the caller gets a RemoteError with this name, message and stack. */
export function fail(reason: string): never {
  throw new RangeError(`refusing: ${reason}`);
}

/** Returns values JSON cannot carry; they arrive as the same values. */
export function rich(): unknown {
  return {
    when: new Date("2026-11-23T00:00:00Z"),
    counts: new Map([
      ["a", 1],
      ["b", 2],
    ]),
    tags: new Set(["x", "y"]),
    big: 2n ** 70n,
    bytes: new Uint8Array([1, 2, 3]),
    nothing: null,
    missing: undefined,
    error: new TypeError("carried, not thrown"),
  };
}

/** Calls another function of the app from inside a handler (its own app: `kiln run` names it hello-run-<id>). */
export async function sumOfSquares(n: number): Promise<number> {
  const kiln = await connect();
  const sq = kiln.function<typeof square>(process.env["KILN_APP"] ?? "hello", "square");
  let total = 0;
  for await (const value of sq.map(Array.from({ length: n }, (_, i) => i + 1))) total += value;
  return total;
}

/** Sleeps, for spawn / cancel demonstrations. */
export async function slow(ms: number): Promise<string> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  return `slept ${ms} ms`;
}
