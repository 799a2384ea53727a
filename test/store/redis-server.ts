/**
 * A real `redis-server` for tests: started on a free loopback port with its own temporary
 * directory, stopped (and restartable on the same port and directory) by the test.
 *
 * `redisPresent()` says whether it is installed; where it is not, suites skip with a printed reason,
 * or fail where the run requires every component (CI installs it: `apt-get install redis-server`).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs/promises";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { present } from "../support/requirements.js";

export interface RedisServerOptions {
  /** Append-only file with `appendfsync everysec` (survives a restart). Default false: no persistence. */
  appendOnly?: boolean;
}

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** Whether the process is running. */
  readonly running: boolean;
  /** Stop the server (SIGTERM, then SIGKILL after a bound). The directory stays for `start`. */
  stop(): Promise<void>;
  /** Start it again on the same port and directory (with AOF, the data comes back). */
  start(): Promise<void>;
  /** Freeze the process (SIGSTOP): connections stay open, nothing answers. */
  pause(): void;
  /** Thaw it (SIGCONT). */
  resume(): void;
  /** Stop it and remove its directory. */
  dispose(): Promise<void>;
}

const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

let binary: string | null | undefined;

/** The redis-server command, or null when it is not installed. */
export function redisServerBinary(): string | null {
  if (binary === undefined) {
    const probe = spawnSync("redis-server", ["--version"], { encoding: "utf8" });
    binary = probe.status === 0 ? "redis-server" : null;
  }
  return binary;
}

/** Whether redis-server is here; see `present` for what happens when it is not. */
export function redisPresent(skipped?: string): boolean {
  return present(
    "redis-server",
    redisServerBinary() === null ? "not installed (apt-get install redis-server)" : null,
    skipped,
  );
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const command = redisServerBinary();
  if (!command) throw new Error("redis-server is not installed");
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "kiln-redis-"));
  const port = await freePort();
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    options.appendOnly ? "yes" : "no",
    "--appendfsync",
    "everysec",
    "--dir",
    dir,
    "--daemonize",
    "no",
    "--loglevel",
    "warning",
  ];
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();

  const start = async (): Promise<void> => {
    if (child) return;
    let output = "";
    const proc = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    proc.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    proc.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    let hasExited = false;
    exited = new Promise<void>((resolve) =>
      proc.on("exit", () => {
        hasExited = true;
        if (child === proc) child = null;
        resolve();
      }),
    );
    child = proc;
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!(await ping(port))) {
      if (hasExited) throw new Error(`redis-server exited before answering PING:\n${output}`);
      if (Date.now() > deadline) {
        proc.kill("SIGKILL");
        throw new Error(
          `redis-server did not answer PING within ${READY_TIMEOUT_MS} ms:\n${output}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    if (!proc) return;
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    get running() {
      return child !== null;
    },
    stop,
    start,
    pause: () => void child?.kill("SIGSTOP"),
    resume: () => void child?.kill("SIGCONT"),
    async dispose() {
      child?.kill("SIGCONT");
      await stop();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

/** True when a Redis server on `port` answers PING (bounded to one second). */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    let reply = "";
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 1000);
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      reply += chunk.toString();
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
    });
    socket.on("error", () => done(false));
  });
}
