/**
 * The program a container runs: loads the bundled handler once, runs a class's `enter()` before
 * its first input and `exit()` on shutdown, then serves inputs sent by the agent over IPC.
 *
 * stdout and stderr are forwarded to the agent with the id of the input that wrote them
 * (AsyncLocalStorage), so logs are attributed per call even when inputs run concurrently.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { pathToFileURL } from "node:url";
import { inspect } from "node:util";
import { decode, encodeBounded } from "../serde.js";
import type { FromWorker, RemoteErrorInfo, ToWorker } from "./protocol.js";
import { WORKER_ENV } from "./protocol.js";
import { Outbox, unbatch, type Batch } from "./outbox.js";

type Handler = (...args: unknown[]) => unknown;

interface Loaded {
  handler: Handler;
  exit: (() => unknown) | null;
}

const currentInput = new AsyncLocalStorage<string>();

const outbox = new Outbox<FromWorker>((message, done) => {
  if (!process.send) return done(null);
  process.send(message, undefined, undefined, (error: Error | null) => done(error));
});

function send(message: FromWorker): void {
  outbox.post(message);
}

/**
 * What a thrown value becomes for the caller: any value, not only an Error (`throw null`,
 * `throw { code: 42 }`). Own enumerable fields that survive JSON travel as `fields`.
 */
function errorInfo(error: unknown): RemoteErrorInfo {
  const fields = fieldsOf(error);
  const invalid = isObject(error) && error["invalid"] === true;
  const info: RemoteErrorInfo =
    error instanceof Error
      ? { name: error.name, message: error.message, ...(error.stack ? { stack: error.stack } : {}) }
      : {
          name: "NonErrorThrown",
          message: `the handler threw ${inspect(error, { depth: 4, breakLength: Infinity })}, not an Error`,
        };
  if (fields) info.fields = fields;
  if (invalid) info.invalid = true;
  return info;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

/** The thrown value's own fields (besides an Error's name, message and stack) as JSON, if any. */
function fieldsOf(error: unknown): Record<string, unknown> | undefined {
  if (!isObject(error) || Array.isArray(error)) return undefined;
  const own = Object.entries(error).filter(
    ([key]) => !["name", "message", "stack", "invalid"].includes(key),
  );
  if (own.length === 0) return undefined;
  try {
    return JSON.parse(JSON.stringify(Object.fromEntries(own))) as Record<string, unknown>;
  } catch {
    return undefined; // cycles, BigInt: the message still describes the value
  }
}

function captureOutput(stream: "stdout" | "stderr"): void {
  const target = process[stream];
  target.write = ((chunk: string | Uint8Array, encoding?: unknown, callback?: unknown): boolean => {
    const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
    send({ t: "log", id: currentInput.getStore() ?? null, stream, text });
    const done = typeof encoding === "function" ? encoding : callback;
    if (typeof done === "function") (done as () => void)();
    return true;
  }) as typeof target.write;
}

async function load(): Promise<Loaded> {
  const bundle = required(WORKER_ENV.bundle);
  const exportName = required(WORKER_ENV.exportName);
  const method = process.env[WORKER_ENV.method] || null;
  const module = (await import(pathToFileURL(bundle).href)) as Record<string, unknown>;
  const exported = module[exportName];
  if (exported === undefined) {
    const names = Object.keys(module).filter((name) => name !== "default");
    throw new Error(
      `the bundle has no export '${exportName}'; it exports: ${names.join(", ") || "(nothing)"}`,
    );
  }
  if (method === null) {
    if (typeof exported !== "function")
      throw new Error(`export '${exportName}' is a ${typeof exported}, not a function`);
    return { handler: exported as Handler, exit: null };
  }
  if (typeof exported !== "function") throw new Error(`export '${exportName}' is not a class`);
  const instance = new (exported as new () => Record<string, unknown>)();
  const fn = instance[method];
  if (typeof fn !== "function") {
    throw new Error(`class '${exportName}' has no method '${method}'`);
  }
  const enter = instance["enter"];
  if (typeof enter === "function") await (enter as () => unknown).call(instance);
  const exit = instance["exit"];
  return {
    handler: (fn as Handler).bind(instance),
    exit: typeof exit === "function" ? () => (exit as () => unknown).call(instance) : null,
  };
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`worker started without ${name}`);
  return value;
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> | Iterable<unknown> {
  if (value === null || typeof value !== "object") return false;
  const candidate = value as Record<symbol, unknown>;
  const isGenerator =
    typeof candidate[Symbol.asyncIterator] === "function" ||
    (typeof candidate[Symbol.iterator] === "function" &&
      Object.prototype.toString.call(value) === "[object Generator]");
  return isGenerator;
}

async function run(
  loaded: Loaded,
  id: string,
  args: string,
  mode: "value" | "stream",
): Promise<void> {
  try {
    const decoded = decode<unknown[]>(args);
    const output = await currentInput.run(id, async () => {
      const returned = loaded.handler(...decoded);
      if (isAsyncIterable(returned)) {
        if (mode !== "stream") {
          throw Object.assign(new Error("this handler is a generator: call it with remoteGen()"), {
            invalid: true,
          });
        }
        for await (const item of returned as AsyncIterable<unknown>) {
          send({ t: "yield", id, value: encodeBounded(item, "a yielded value") });
        }
        return undefined;
      }
      if (mode === "stream") {
        throw Object.assign(new Error("this handler is not a generator: call it with remote()"), {
          invalid: true,
        });
      }
      return await returned;
    });
    send({ t: "result", id, ok: true, value: encodeBounded(output, "the result") });
  } catch (error) {
    send({ t: "result", id, ok: false, error: errorInfo(error) });
  }
}

/**
 * Run one dynamic batch: the handler receives one list per parameter (`embed(texts)` for inputs
 * `embed(t1)`, `embed(t2)` ...) and must return a list with one result per input, in order.
 */
async function runBatch(loaded: Loaded, id: string, items: string[]): Promise<void> {
  try {
    const inputs = items.map((args) => decode<unknown[]>(args));
    const arity = Math.max(1, ...inputs.map((args) => args.length));
    const columns = Array.from({ length: arity }, (_, p) => inputs.map((args) => args[p]));
    const returned = await currentInput.run(id, async () => await loaded.handler(...columns));
    if (!Array.isArray(returned) || returned.length !== items.length) {
      const got = Array.isArray(returned)
        ? `${returned.length} results`
        : `a ${returned === null ? "null" : typeof returned}`;
      throw Object.assign(
        new Error(
          `the batched handler returned ${got} for a batch of ${items.length} inputs; it must return a list with one result per input, in order`,
        ),
        { name: "BatchResultError" },
      );
    }
    send({
      t: "batch-result",
      id,
      ok: true,
      values: returned.map((value, i) => encodeBounded(value, `result ${i} of the batch`)),
    });
  } catch (error) {
    send({ t: "batch-result", id, ok: false, error: errorInfo(error) });
  }
}

async function main(): Promise<void> {
  captureOutput("stdout");
  captureOutput("stderr");
  const started = performance.now();
  let loaded: Loaded;
  try {
    loaded = await load();
  } catch (error) {
    // Exit once the message is out, whatever timers the handler's module left behind.
    outbox.post({ t: "start-failed", error: errorInfo(error) }, () => process.exit(1));
    return;
  }
  process.on("message", (arrived: Batch<ToWorker>) => {
    for (const message of unbatch(arrived)) receive(loaded, message);
  });
  process.on("disconnect", () => process.exit(0));
  send({ t: "ready", loadMs: performance.now() - started });
}

function receive(loaded: Loaded, message: ToWorker): void {
  if (message.t === "input") {
    void run(loaded, message.id, message.args, message.mode);
  } else if (message.t === "batch") {
    void runBatch(loaded, message.id, message.items);
  } else if (message.t === "shutdown") {
    void (async () => {
      try {
        await loaded.exit?.();
      } finally {
        process.disconnect?.();
        process.exit(0);
      }
    })();
  }
}

void main();
