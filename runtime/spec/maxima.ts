/**
 * Per-container maxima of a pool (the largest container its hosts can run). A function asking for
 * more fails at creation: `functions.embed.cpu: request 8 exceeds the pool maximum of 4 cores`.
 */
import { z } from "zod";
import {
  MAX_CPU,
  MAX_EPHEMERAL_DISK_MIB,
  MAX_GPUS_PER_CONTAINER,
  MAX_MEMORY_MIB,
} from "./limits.js";

const positive = z.number().positive();

export const MaximaSchema = z.strictObject({
  /** Cores per container. Replaces kiln's own ceiling of 64 cores. */
  cpu: positive.optional(),
  /** MiB per container. Replaces kiln's own ceiling of 1,048,576 MiB. */
  memoryMiB: positive.optional(),
  /** GPUs per container; 0 for a CPU-only pool. Never more than 8. */
  gpusPerContainer: z.number().int().min(0).optional(),
  /** Ephemeral disk per container in MiB. Never more than 3,145,728. */
  ephemeralDiskMiB: positive.optional(),
});

export type Maxima = z.infer<typeof MaximaSchema>;

/** The upper bound one resource is checked against. */
export interface Ceiling {
  max: number;
  /** True when `max` is the pool's maximum rather than kiln's own ceiling. */
  pool: boolean;
}

/** The upper bound of each resource request. */
export interface Ceilings {
  cpu: Ceiling;
  memoryMiB: Ceiling;
  gpusPerContainer: Ceiling;
  ephemeralDiskMiB: Ceiling;
}

/** CPU and memory: the pool's maximum replaces kiln's ceiling. GPUs and disk: the lower of the two. */
export function resolveCeilings(maxima: Maxima = {}): Ceilings {
  const capped = (pool: number | undefined, hard: number): Ceiling =>
    pool !== undefined && pool < hard ? { max: pool, pool: true } : { max: hard, pool: false };
  return {
    cpu: maxima.cpu === undefined ? { max: MAX_CPU, pool: false } : { max: maxima.cpu, pool: true },
    memoryMiB:
      maxima.memoryMiB === undefined
        ? { max: MAX_MEMORY_MIB, pool: false }
        : { max: maxima.memoryMiB, pool: true },
    gpusPerContainer: capped(maxima.gpusPerContainer, MAX_GPUS_PER_CONTAINER),
    ephemeralDiskMiB: capped(maxima.ephemeralDiskMiB, MAX_EPHEMERAL_DISK_MIB),
  };
}
