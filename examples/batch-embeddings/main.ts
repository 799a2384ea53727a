/**
 * `kiln run examples/batch-embeddings examples/batch-embeddings/main.ts -- --n 40`: embeds n
 * sentences at once (they ride in a few batches), then again through the cache, and prints the
 * closest pair.
 */
import { z } from "zod";
import type { RunContext } from "kiln";
import type { Embedder, embedCached } from "./embeddings.js";

export const args = z.object({
  /** How many sentences to embed. */
  n: z.coerce.number().int().min(2).max(500).default(40),
});

const WORDS = [
  "kiln",
  "fires",
  "functions",
  "fast",
  "batches",
  "fill",
  "quickly",
  "cache",
  "remembers",
  "vectors",
];

function sentence(i: number): string {
  return Array.from({ length: 4 }, (_, k) => WORDS[(i * 7 + k * 3) % WORDS.length]).join(" ");
}

function cosine(a: number[], b: number[]): number {
  return a.reduce((sum, x, i) => sum + x * (b[i] ?? 0), 0);
}

export async function main({ n }: z.infer<typeof args>, ctx: RunContext): Promise<void> {
  const texts = Array.from({ length: n }, (_, i) => sentence(i));
  const embed = ctx.function<(text: string) => ReturnType<Embedder["embed"]>[number]>("embed");
  const started = performance.now();
  const results = await Promise.all(texts.map((text) => embed.remote(text)));
  const sizes = results.map((r) => r.batchSize);
  console.log(
    `embedded ${n} texts in ${(performance.now() - started).toFixed(0)} ms; largest batch ${Math.max(...sizes)}, batches seen ${new Set(sizes).size}+`,
  );

  const cached = ctx.function<typeof embedCached>("embedCached");
  let hits = 0;
  for await (const result of cached.map(texts.slice(0, 5))) if (result.cached) hits++;
  for await (const result of cached.map(texts.slice(0, 5))) if (result.cached) hits++;
  console.log(`through the cache twice: ${hits} of 10 were hits`);

  let best = { i: 0, j: 1, score: -Infinity };
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      if (texts[i] === texts[j]) continue;
      const score = cosine(results[i]?.vector ?? [], results[j]?.vector ?? []);
      if (score > best.score) best = { i, j, score };
    }
  }
  console.log(
    `closest pair (cosine ${best.score.toFixed(3)}): "${texts[best.i]}" ~ "${texts[best.j]}"`,
  );
}
