/** Exposing a function over HTTP. */
import { z } from "zod";

export const WebEndpointSchema = z
  .strictObject({
    method: z.enum(["GET", "POST"]),
    /** Reachable without the bearer token. Default false. */
    public: z.boolean().default(false),
  })
  .nullish()
  .transform((value) => value ?? null);

export type WebEndpointInput = z.input<typeof WebEndpointSchema>;
export type CompiledWebEndpoint = z.output<typeof WebEndpointSchema>;
