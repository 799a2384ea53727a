/** Dynamic batching: up to `maxBatchSize` inputs, waiting at most `waitMs` for a batch to fill. */
import { z } from "zod";
import { boundedInt } from "./checks.js";
import { MAX_BATCH_SIZE, MAX_BATCH_WAIT_MS, MIN_BATCH_SIZE, MIN_BATCH_WAIT_MS } from "./limits.js";

export const BatchingSchema = z
  .strictObject({
    /** Most inputs in one call of the handler, 1..1000. */
    maxBatchSize: boundedInt(MIN_BATCH_SIZE, MAX_BATCH_SIZE),
    /** How long the first input of a batch waits for more, in ms, 0..600000. */
    waitMs: boundedInt(MIN_BATCH_WAIT_MS, MAX_BATCH_WAIT_MS, " ms"),
  })
  .nullish()
  .transform((value) => value ?? null);

export type BatchingInput = z.input<typeof BatchingSchema>;
export type CompiledBatching = z.output<typeof BatchingSchema>;
