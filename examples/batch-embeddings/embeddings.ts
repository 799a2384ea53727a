/**
 * Handlers of the batch-embeddings example: a batched embedder (inputs from many callers ride in
 * one call), a cache in front of it kept in the app's dict, and the nightly reindex job.
 *
 * The "model" is a deterministic hashing embedder, so the example runs anywhere without weights.
 */
import { connect, type Kiln } from "kiln/client";

/** The app's name where it runs: `batch-embeddings`, or `batch-embeddings-run-<id>` under `kiln run`. */
const APP = process.env["KILN_APP"] ?? "batch-embeddings";
export const DIMENSIONS = 16;

/** A stand-in model: hashes character trigrams into a unit vector. */
function embedOne(text: string): number[] {
  const vector = new Array<number>(DIMENSIONS).fill(0);
  const padded = `  ${text.toLowerCase()} `;
  for (let i = 0; i + 3 <= padded.length; i++) {
    let hash = 2166136261;
    for (const ch of padded.slice(i, i + 3)) hash = Math.imul(hash ^ ch.charCodeAt(0), 16777619);
    const slot = (hash >>> 0) % DIMENSIONS;
    vector[slot] = (vector[slot] ?? 0) + ((hash >>> 16) & 1 ? 1 : -1);
  }
  const norm = Math.hypot(...vector) || 1;
  return vector.map((v) => Number((v / norm).toFixed(6)));
}

/** The batched function: `embed.remote("text")` for callers; one list of texts per call here. */
export class Embedder {
  batches = 0;

  enter(): void {
    // Load weights here, once per container.
    console.log(`embedder ready (${DIMENSIONS} dimensions)`);
  }

  embed(texts: string[]): { vector: number[]; batchSize: number }[] {
    this.batches++;
    console.log(`batch ${this.batches}: ${texts.length} text(s)`);
    return texts.map((text) => ({ vector: embedOne(text), batchSize: texts.length }));
  }
}

/** What the cache needs of a dict (the client's `Dict`). */
interface Cache {
  get(key: string): Promise<unknown>;
  put(key: string, value: unknown): Promise<unknown>;
}

/** The app's `embedding-cache` dict, when this kiln's client has dicts. */
function cacheOf(kiln: Kiln): Cache | null {
  const dict = (kiln as unknown as { dict?: (app: string, name: string) => Cache }).dict;
  return typeof dict === "function" ? dict.call(kiln, APP, "embedding-cache") : null;
}

/** Embed through the cache: a hit skips the model; a miss goes to the batched `embed`. */
export async function embedCached(text: string): Promise<{ vector: number[]; cached: boolean }> {
  const kiln = await connect();
  const cache = cacheOf(kiln);
  const hit = (await cache?.get(text)) as number[] | undefined;
  if (hit !== undefined) return { vector: hit, cached: true };
  const { vector } = await kiln
    .function<(text: string) => { vector: number[] }>(APP, "embed")
    .remote(text);
  await cache?.put(text, vector);
  return { vector, cached: false };
}

/** The nightly job: re-embed the corpus (through the cache) and say how many were fresh. */
export async function reindex(corpus: string[]): Promise<{ texts: number; fresh: number }> {
  const kiln = await connect();
  let fresh = 0;
  for await (const result of kiln.function<typeof embedCached>(APP, "embedCached").map(corpus))
    if (!result.cached) fresh++;
  return { texts: corpus.length, fresh };
}
