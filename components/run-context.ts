/**
 * What `kiln run <program-dir> <entry.ts>` hands the entry's `main(args, ctx)`: the client, bound
 * to the ephemeral apps it deployed for the run.
 *
 * ```ts
 * import type { RunContext } from "kiln";
 * export const args = z.object({ n: z.coerce.number().default(3) });
 * export async function main({ n }: z.infer<typeof args>, ctx: RunContext) {
 *   console.log(await ctx.function<typeof square>("square").remote(n));
 * }
 * ```
 */
import type { AnyHandler, FunctionCall, Kiln, RemoteFunction } from "../runtime/client/index.js";

export interface RunContext {
  /** The running name of the program's (first) app, e.g. `hello-run-3f9a2c`. */
  readonly app: string;
  /** Declared app name → running name, for programs with several apps. */
  readonly apps: Readonly<Record<string, string>>;
  /** The client, connected to the agent the run deployed to. */
  readonly kiln: Kiln;
  /** A function of the run's app (or of the declared app `app`). */
  function<F extends AnyHandler = (...args: unknown[]) => unknown>(
    name: string,
    app?: string,
  ): RemoteFunction<F>;
  /** A call by id. */
  functionCall<T = unknown>(id: string): FunctionCall<T>;
  /** Aborted when the run is interrupted (Ctrl-C): long loops can stop early. */
  readonly signal: AbortSignal;
}

/** What an entry module may export. */
export interface RunEntry {
  main(args: unknown, ctx: RunContext): unknown;
  /** A zod schema (or anything with `safeParse`) for the flags after `--`. */
  args?: { safeParse(value: unknown): { success: boolean; data?: unknown; error?: unknown } };
}
