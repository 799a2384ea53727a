/**
 * GPU requests: `"A100:2"`, `"H100"`, `"A100-80GB:1"`, `"any"`, `"any:2"`, or an ordered fallback
 * list of them. Compiled to `{ options: [{ type: "A100", count: 2 }, ...] }` (first that fits wins),
 * or null for no GPU.
 */
import { z } from "zod";
import { type Range, rangeProblem } from "./checks.js";
import { DEFAULT_GPU_COUNT } from "./limits.js";
import type { Ceilings } from "./maxima.js";

/** The GPU type that matches any GPU. */
export const ANY_GPU = "any";

const GPU_PATTERN = /^([A-Za-z0-9][A-Za-z0-9_-]*)(?::([0-9]+))?$/;
const EXPECTED = `expected "TYPE" or "TYPE:COUNT", e.g. "A100:2", "H100", "any"`;

/** One acceptable GPU configuration: a type (upper-cased, or "any") and a count. */
export interface GpuOption {
  type: string;
  count: number;
}

const GpuInputSchema = z.union([z.string(), z.array(z.string())], {
  error: `expected a GPU string or a list of them (${EXPECTED})`,
});

/** Parse one GPU string, or say what is wrong with it. */
export function parseGpuOption(text: string, countRange: Range): GpuOption | string {
  const match = GPU_PATTERN.exec(text.trim());
  if (match === null) return `${JSON.stringify(text)} is not a GPU request (${EXPECTED})`;
  const [, rawType = "", rawCount] = match;
  const count = rawCount === undefined ? DEFAULT_GPU_COUNT : Number(rawCount);
  const problem = rangeProblem(count, countRange, `${JSON.stringify(text)}: count `);
  if (problem !== null) return problem;
  const type = rawType.toLowerCase() === ANY_GPU ? ANY_GPU : rawType.toUpperCase();
  return { type, count };
}

/** The `gpu` field: a string, a fallback list, or null/absent for none. */
export function gpuSchema(ceiling: Ceilings["gpusPerContainer"]) {
  const countRange: Range = { min: 1, integer: true, ...ceiling, unit: " GPUs" };
  const list = (value: string | string[]) => (typeof value === "string" ? [value] : value);
  return GpuInputSchema.nullish()
    .superRefine((value, ctx) => {
      if (value === null || value === undefined) return;
      if (Array.isArray(value) && value.length === 0) {
        ctx.addIssue({
          code: "custom",
          input: value,
          message: `an empty list: give at least one GPU option, or null for none`,
        });
      }
      list(value).forEach((text, index) => {
        const parsed = parseGpuOption(text, countRange);
        if (typeof parsed === "string") {
          ctx.addIssue({
            code: "custom",
            input: text,
            message: parsed,
            path: Array.isArray(value) ? [index] : [],
          });
        }
      });
    })
    .transform((value) => {
      if (value === null || value === undefined) return null;
      const options = list(value).map((text) => parseGpuOption(text, countRange) as GpuOption);
      return { options };
    });
}
