/**
 * A deployed function, by app and name: `.remote()`, `.spawn()`, `.map()`, `.starmap()`,
 * `.remoteGen()`.
 *
 * `.map()` streams: it keeps at most 1,000 inputs in flight (the per-map limit), sends more as
 * outputs arrive, and yields outputs in input order (or as completed with `orderOutputs: false`).
 * Breaking out of the loop drops the map's queued inputs.
 */
import { InvalidError, ResourceExhaustedError, fromWire, type KilnError } from "../errors.js";
import {
  MAX_WAIT_MS,
  type CallResponse,
  type MapInputsResponse,
  type MapOutput,
  type StreamItem,
} from "../protocol.js";
import { decode, encodeBounded, MAX_INLINE_PAYLOAD_BYTES } from "../serde.js";
import { MAX_MAP_INFLIGHT } from "../spec/limits.js";
import { FunctionCall, settle, waitOutcome } from "./function-call.js";
import type { AgentHttp } from "./http.js";

/** Any handler signature; the default when the caller does not name one. */
export type AnyHandler = (...args: never[]) => unknown;

/** What a handler's callers get back: the awaited return value. */
export type ResultOf<F extends AnyHandler> = Awaited<ReturnType<F>>;
/** What a generator handler yields. */
export type YieldOf<F extends AnyHandler> =
  ReturnType<F> extends AsyncIterable<infer Y>
    ? Y
    : ReturnType<F> extends Iterable<infer Y>
      ? Y
      : unknown;

export interface MapOptions {
  /** Yield outputs in input order (default true) or as they complete. */
  orderOutputs?: boolean;
  /** Yield errors in place of results instead of throwing the first (default false). */
  returnExceptions?: boolean;
}

type Iterables<A extends readonly unknown[]> = {
  [K in keyof A]: Iterable<A[K]> | AsyncIterable<A[K]>;
};

/** Keep one request's body well under the agent's body limit. */
const MAX_CHUNK_BYTES = 8 * 1024 * 1024;
const MAX_CHUNK_ITEMS = 1000;

export class RemoteFunction<F extends AnyHandler = (...args: unknown[]) => unknown> {
  constructor(
    private readonly http: AgentHttp,
    readonly app: string,
    readonly name: string,
  ) {}

  private get path(): string {
    return `/v1/apps/${encodeURIComponent(this.app)}/functions/${encodeURIComponent(this.name)}`;
  }

  /** Call the function and wait for its result. */
  async remote(...args: Parameters<F>): Promise<ResultOf<F>> {
    const response = await this.http.request<CallResponse>("POST", `${this.path}/calls`, {
      body: { args: encodeBounded(args, "the arguments"), waitMs: MAX_WAIT_MS },
    });
    const outcome = response.outcome ?? (await waitOutcome(this.http, response.callId, undefined));
    return settle<ResultOf<F>>(outcome);
  }

  /** Start the call and return at once; its result is kept for 24 h (`FunctionCall.get`). */
  async spawn(...args: Parameters<F>): Promise<FunctionCall<ResultOf<F>>> {
    const response = await this.http.request<CallResponse>("POST", `${this.path}/calls`, {
      body: { args: encodeBounded(args, "the arguments"), spawn: true },
    });
    return new FunctionCall<ResultOf<F>>(this.http, response.callId);
  }

  /** Call a generator handler and iterate over what it yields as it yields it. */
  async *remoteGen(...args: Parameters<F>): AsyncGenerator<YieldOf<F>, void, undefined> {
    const response = await this.http.request<CallResponse>("POST", `${this.path}/calls`, {
      body: { args: encodeBounded(args, "the arguments"), mode: "stream" },
    });
    const id = encodeURIComponent(response.callId);
    for (;;) {
      const { items } = await this.http.request<{ items: StreamItem[] }>(
        "GET",
        `/v1/calls/${id}/stream`,
        {
          query: { waitMs: MAX_WAIT_MS },
        },
      );
      for (const item of items) {
        if (item.t === "y") yield decode<YieldOf<F>>(item.v);
        else if (item.t === "end") return;
        else throw fromWire(item.error);
      }
    }
  }

  /**
   * Call the function once per input. With several iterables, their items are zipped into the
   * arguments (`add.map(xs, ys)` calls `add(x, y)`); the shortest one ends the map.
   */
  map<A extends Parameters<F>>(
    ...iterables: [...Iterables<A>]
  ): AsyncGenerator<ResultOf<F>, void, undefined>;
  map<A extends Parameters<F>>(
    ...args: [...Iterables<A>, MapOptions & { returnExceptions: true }]
  ): AsyncGenerator<ResultOf<F> | KilnError, void, undefined>;
  map<A extends Parameters<F>>(
    ...args: [...Iterables<A>, MapOptions]
  ): AsyncGenerator<ResultOf<F>, void, undefined>;
  map(...args: unknown[]): AsyncGenerator<unknown, void, undefined> {
    const last = args[args.length - 1];
    const hasOptions = args.length > 1 && isOptions(last);
    const options = (hasOptions ? last : {}) as MapOptions;
    const iterables = (hasOptions ? args.slice(0, -1) : args) as (
      Iterable<unknown> | AsyncIterable<unknown>
    )[];
    if (iterables.length === 0)
      throw new InvalidError("map() needs at least one iterable of inputs");
    return this.run(zip(iterables), options);
  }

  /** Like `map`, with each item already a list of arguments: `add.starmap([[1, 2], [3, 4]])`. */
  starmap(
    inputs: Iterable<Parameters<F>> | AsyncIterable<Parameters<F>>,
    options: MapOptions & { returnExceptions: true },
  ): AsyncGenerator<ResultOf<F> | KilnError, void, undefined>;
  starmap(
    inputs: Iterable<Parameters<F>> | AsyncIterable<Parameters<F>>,
    options?: MapOptions,
  ): AsyncGenerator<ResultOf<F>, void, undefined>;
  starmap(
    inputs: Iterable<unknown[]> | AsyncIterable<unknown[]>,
    options: MapOptions = {},
  ): AsyncGenerator<unknown, void, undefined> {
    return this.run(toAsync(inputs), options);
  }

  /** Send a chunk of inputs; a limit reached (429) means "none accepted now", not a failure. */
  private async submit(
    mapPath: string,
    items: { idx: number; args: string }[],
  ): Promise<MapInputsResponse> {
    try {
      return await this.http.request<MapInputsResponse>("POST", `${mapPath}/inputs`, {
        body: { items },
      });
    } catch (error) {
      if (error instanceof ResourceExhaustedError) return { accepted: 0 };
      throw error;
    }
  }

  private async *run(
    inputs: AsyncIterator<unknown[]>,
    options: MapOptions,
  ): AsyncGenerator<unknown, void, undefined> {
    const ordered = options.orderOutputs ?? true;
    const returnExceptions = options.returnExceptions ?? false;
    const { mapId } = await this.http.request<{ mapId: string }>("POST", `${this.path}/maps`);
    const mapPath = `/v1/maps/${encodeURIComponent(mapId)}`;
    const unsent: { idx: number; args: string }[] = [];
    const buffered = new Map<number, MapOutput>();
    const seen = new Set<number>();
    let nextIdx = 0; // next input index to read
    let nextOut = 0; // next output index to yield (ordered)
    let exhausted = false;
    let received = 0;
    let finished = false;
    try {
      for (;;) {
        // Send while the window has room.
        while (nextIdx - unsent.length - received < MAX_MAP_INFLIGHT) {
          const room = MAX_MAP_INFLIGHT - (nextIdx - unsent.length - received);
          while (!exhausted && unsent.length < room) {
            const next = await inputs.next();
            if (next.done) {
              exhausted = true;
              break;
            }
            unsent.push({
              idx: nextIdx,
              args: encodeBounded(next.value, `the arguments of input ${nextIdx}`),
            });
            nextIdx += 1;
          }
          if (unsent.length === 0) break;
          const chunk = takeChunk(unsent, room);
          const response = await this.submit(mapPath, chunk);
          unsent.unshift(...chunk.slice(response.accepted));
          if (response.accepted < chunk.length) break; // a limit: wait for outputs before sending more
        }
        const inFlight = nextIdx - unsent.length - received;
        if (exhausted && unsent.length === 0 && inFlight === 0) break;
        const { outputs } = await this.http.request<{ outputs: MapOutput[] }>(
          "GET",
          `${mapPath}/outputs`,
          {
            query: { waitMs: inFlight === 0 ? 1000 : MAX_WAIT_MS, max: MAX_MAP_INFLIGHT },
          },
        );
        for (const output of outputs) {
          if (seen.has(output.idx)) continue; // a redelivered duplicate
          seen.add(output.idx);
          received += 1;
          if (ordered) buffered.set(output.idx, output);
          else yield unpack(output, returnExceptions);
        }
        if (ordered) {
          for (let out = buffered.get(nextOut); out !== undefined; out = buffered.get(nextOut)) {
            buffered.delete(nextOut);
            nextOut += 1;
            yield unpack(out, returnExceptions);
          }
        }
      }
      finished = true;
    } finally {
      // Finished: just drop the map's keys. Abandoned: also drop its queued inputs.
      await this.http
        .request("DELETE", mapPath, { query: { submitted: finished ? 0 : nextIdx } })
        .catch(() => undefined);
    }
  }
}

function unpack(output: MapOutput, returnExceptions: boolean): unknown {
  if (output.ok) return decode(output.value);
  const error = fromWire(output.error);
  if (returnExceptions) return error;
  throw error;
}

function takeChunk(
  unsent: { idx: number; args: string }[],
  room: number,
): { idx: number; args: string }[] {
  let bytes = 0;
  let n = 0;
  const max = Math.min(room, MAX_CHUNK_ITEMS, unsent.length);
  while (n < max) {
    const size = (unsent[n]?.args.length ?? 0) + 32;
    if (n > 0 && bytes + size > MAX_CHUNK_BYTES) break;
    bytes += size;
    n += 1;
  }
  return unsent.splice(0, n);
}

function isOptions(value: unknown): value is MapOptions {
  return (
    typeof value === "object" &&
    value !== null &&
    !(Symbol.iterator in value) &&
    !(Symbol.asyncIterator in value)
  );
}

function toAsync<T>(source: Iterable<T> | AsyncIterable<T>): AsyncIterator<T> {
  if (Symbol.asyncIterator in source) return (source as AsyncIterable<T>)[Symbol.asyncIterator]();
  const it = (source as Iterable<T>)[Symbol.iterator]();
  return { next: async () => it.next() };
}

async function* zipGen(
  sources: (Iterable<unknown> | AsyncIterable<unknown>)[],
): AsyncGenerator<unknown[]> {
  const iterators = sources.map(toAsync);
  for (;;) {
    const items = await Promise.all(iterators.map((it) => it.next()));
    if (items.some((item) => item.done)) return;
    yield items.map((item) => item.value);
  }
}

function zip(sources: (Iterable<unknown> | AsyncIterable<unknown>)[]): AsyncIterator<unknown[]> {
  return zipGen(sources);
}

export { MAX_INLINE_PAYLOAD_BYTES };
