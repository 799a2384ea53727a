/**
 * Floors: what each kiln measurement would cost with nothing but its transport.
 *
 * - HTTP echo: a plain `node:http` server on 127.0.0.1:0 answering a small JSON POST, called the
 *   way the kiln client calls (undici `request` on a keep-alive pool), request shaped like
 *   `.remote()`'s (bearer header, JSON body).
 * - Two-hop echo: the HTTP echo whose server, before answering, sends the input to an IPC echo
 *   child and waits for it: the two hops a `.remote()` makes (caller -> agent -> container),
 *   with no store and no scheduling.
 * - IPC echo: one child forked like a kiln worker (`serialization: "advanced"`, stdio piped, an
 *   IPC channel), echoing worker-protocol messages with a window of in-flight inputs, as the agent
 *   pipelines a map's inputs to a container with `maxInputs` slots.
 * - Fork: `fork()` of that trivial script until its first IPC message.
 */
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Pool } from "undici";
import type { FromWorker, ToWorker } from "../runtime/worker/protocol.js";
import { encode } from "../runtime/serde.js";

export type Progress = (done: number, total: number) => void;

/** The compiled echo child, whether this runs from dist/ or from source. */
export function echoChildPath(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith(".js")) return join(dirname(here), "ipc-echo-child.js");
  return resolve(dirname(here), "..", "dist", "bench", "ipc-echo-child.js");
}

// ---- HTTP echo ------------------------------------------------------------------------------

export interface HttpEcho {
  /** One round trip, shaped like `.remote()`'s request. */
  call(): Promise<void>;
  close(): void;
}

/** A plain `node:http` server on 127.0.0.1:0 answering a small JSON POST, and a caller for it. */
export async function startHttpEcho(): Promise<HttpEcho> {
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { args: string };
      const text = JSON.stringify({ callId: "fc-echo", outcome: { ok: true, value: body.args } });
      response.writeHead(200, {
        "content-type": "application/json; charset=utf-8",
        "content-length": Buffer.byteLength(text),
      });
      response.end(text);
    });
  });
  server.keepAliveTimeout = 65_000;
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  const base = `http://127.0.0.1:${port}/`;
  const pool = new Pool(new URL(base).origin, { keepAliveTimeout: 30_000 });
  return {
    async call(): Promise<void> {
      // What AgentHttp.request does for `.remote()`: URL, bearer header, JSON body, text, parse.
      const target = new URL("/v1/apps/bench/functions/noop/calls", base);
      const body = JSON.stringify({ args: encode([]), waitMs: 50_000 });
      const response = await pool.request({
        method: "POST",
        path: target.pathname + target.search,
        headers: { authorization: "Bearer floor", "content-type": "application/json" },
        body,
      });
      const text = await response.body.text();
      if (response.statusCode !== 200)
        throw new Error(`echo server answered ${response.statusCode}`);
      JSON.parse(text);
    },
    close(): void {
      void pool.close();
      server.closeAllConnections();
      server.close();
    },
  };
}

/** The two-hop echo: HTTP to a server that forwards each input to an IPC echo child and answers with its reply. */
export async function startTwoHopEcho(): Promise<HttpEcho> {
  const child = forkEcho();
  await firstMessage(child, 10_000);
  const waiting = new Map<string, (message: FromWorker) => void>();
  child.on("message", (message: FromWorker) => {
    if (message.t === "result") waiting.get(message.id)?.(message);
  });
  let next = 0;
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { args: string };
      const id = `two-hop.${next++}`;
      waiting.set(id, (message) => {
        waiting.delete(id);
        const text = JSON.stringify({
          callId: id,
          outcome:
            message.t === "result" && message.ok
              ? { ok: true, value: message.value }
              : { ok: false },
        });
        response.writeHead(200, {
          "content-type": "application/json; charset=utf-8",
          "content-length": Buffer.byteLength(text),
        });
        response.end(text);
      });
      const input: ToWorker = { t: "input", id, args: body.args, mode: "value" };
      child.send(input);
    });
  });
  server.keepAliveTimeout = 65_000;
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  const pool = new Pool(`http://127.0.0.1:${port}`, { keepAliveTimeout: 30_000 });
  return {
    async call(): Promise<void> {
      const response = await pool.request({
        method: "POST",
        path: "/v1/apps/bench/functions/noop/calls",
        headers: { authorization: "Bearer floor", "content-type": "application/json" },
        body: JSON.stringify({ args: encode([]), waitMs: 50_000 }),
      });
      const text = await response.body.text();
      if (response.statusCode !== 200)
        throw new Error(`two-hop echo server answered ${response.statusCode}`);
      JSON.parse(text);
    },
    close(): void {
      void pool.close();
      server.closeAllConnections();
      server.close();
      void stopChild(child);
    },
  };
}

/** The HTTP echo floor on its own: `count` sequential round trips after `warmup`. */
export async function httpEchoFloor(options: {
  warmup: number;
  count: number;
  deadlineMs: number;
  progress: Progress;
}): Promise<number[]> {
  const echo = await startHttpEcho();
  try {
    const deadline = performance.now() + options.deadlineMs;
    for (let i = 0; i < options.warmup && performance.now() < deadline; i++) await echo.call();
    const samples: number[] = [];
    for (let i = 0; i < options.count && performance.now() < deadline; i++) {
      const started = performance.now();
      await echo.call();
      samples.push(performance.now() - started);
      if ((i + 1) % 500 === 0) options.progress(i + 1, options.count);
    }
    return samples;
  } finally {
    echo.close();
  }
}

// ---- IPC echo -------------------------------------------------------------------------------

function forkEcho(): ChildProcess {
  return fork(echoChildPath(), [], {
    execArgv: [],
    serialization: "advanced",
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
}

/** Resolves with the child's first message, or rejects if it exits or stays silent too long. */
function firstMessage(child: ChildProcess, timeoutMs: number): Promise<FromWorker> {
  return new Promise<FromWorker>((resolveFirst, rejectFirst) => {
    const timer = setTimeout(
      () => rejectFirst(new Error(`echo child sent nothing within ${timeoutMs} ms`)),
      timeoutMs,
    );
    child.once("message", (message: FromWorker) => {
      clearTimeout(timer);
      resolveFirst(message);
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      rejectFirst(new Error(`echo child exited (code ${code}) before its first message`));
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGKILL");
  await exited;
}

export interface IpcEchoResult {
  messages: number;
  ms: number;
  perSecond: number;
}

export async function ipcEchoFloor(options: {
  warmup: number;
  count: number;
  window: number;
  deadlineMs: number;
  progress: Progress;
}): Promise<IpcEchoResult> {
  const child = forkEcho();
  try {
    await firstMessage(child, 10_000);
    const deadline = performance.now() + options.deadlineMs;
    await pump(child, options.warmup, options.window, deadline, () => undefined);
    const started = performance.now();
    const received = await pump(child, options.count, options.window, deadline, options.progress);
    const elapsed = performance.now() - started;
    return { messages: received, ms: elapsed, perSecond: (received / elapsed) * 1000 };
  } finally {
    await stopChild(child);
  }
}

/** Echo `count` inputs through `child`, keeping `window` in flight; resolves with how many came back. */
function pump(
  child: ChildProcess,
  count: number,
  window: number,
  deadline: number,
  progress: Progress,
): Promise<number> {
  if (count === 0) return Promise.resolve(0);
  let sent = 0;
  let received = 0;
  const send = (i: number): void => {
    const message: ToWorker = { t: "input", id: `map-echo.${i}`, args: encode([i]), mode: "value" };
    child.send(message, (error) => {
      if (error) child.kill("SIGKILL");
    });
  };
  return new Promise<number>((resolveDone, rejectDone) => {
    const finish = (error: Error | null): void => {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
      if (error) rejectDone(error);
      else resolveDone(received);
    };
    const onMessage = (message: FromWorker): void => {
      if (message.t !== "result") return;
      received += 1;
      if (received % 2500 === 0) progress(received, count);
      if (sent < count) send(sent++);
      if (received === count) finish(null);
    };
    const onExit = (): void => finish(new Error("IPC echo child exited"));
    const timer = setTimeout(
      () => finish(new Error(`IPC echo: ${received}/${count} back when the deadline passed`)),
      Math.max(0, deadline - performance.now()),
    );
    child.on("message", onMessage);
    child.once("exit", onExit);
    while (sent < Math.min(window, count)) send(sent++);
  });
}

// ---- fork -----------------------------------------------------------------------------------

/** fork() to the first IPC message, `samples` times; one child at a time. */
export async function forkFloor(options: {
  samples: number;
  progress: Progress;
}): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < options.samples; i++) {
    const started = performance.now();
    const child = forkEcho();
    try {
      await firstMessage(child, 10_000);
      samples.push(performance.now() - started);
    } finally {
      await stopChild(child);
    }
    options.progress(i + 1, options.samples);
  }
  return samples;
}

/** `n` forks at once, timed to the last one's first IPC message: the floor of a burst's cold starts. */
export async function parallelForkFloor(n: number): Promise<number> {
  const started = performance.now();
  const children = Array.from({ length: n }, () => forkEcho());
  try {
    await Promise.all(children.map((child) => firstMessage(child, 20_000)));
    return performance.now() - started;
  } finally {
    await Promise.all(children.map((child) => stopChild(child)));
  }
}
