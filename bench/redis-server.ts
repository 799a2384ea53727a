/**
 * A throwaway `redis-server` for the Redis rows of `npm run bench`: a free loopback port, its own
 * temp directory, no persistence (no RDB snapshots, no AOF), stopped and removed at the end.
 * (test/store/redis-server.ts does the same for the test suites; the build does not include test/.)
 */
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { connect as netConnect, createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface BenchRedis {
  url: string;
  port: number;
  version: string;
  stop(): Promise<void>;
}

/** The installed redis-server's version ("7.0.15"), or null when there is none. */
export function redisServerVersion(): string | null {
  const probe = spawnSync("redis-server", ["--version"], { encoding: "utf8" });
  if (probe.status !== 0) return null;
  return /v=(\S+)/.exec(probe.stdout)?.[1] ?? "unknown";
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolveClosed) => server.close(() => resolveClosed()));
  return port;
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolvePing) => {
    const socket = netConnect({ host: "127.0.0.1", port });
    let reply = "";
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolvePing(ok);
    };
    const timer = setTimeout(() => done(false), 1_000);
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk: Buffer) => {
      reply += chunk.toString();
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
    });
    socket.on("error", () => done(false));
  });
}

export async function startBenchRedis(readyTimeoutMs = 10_000): Promise<BenchRedis> {
  const version = redisServerVersion();
  if (version === null)
    throw new Error(
      "redis-server is not installed (apt-get install redis-server): the Redis rows need it",
    );
  const dir = await mkdtemp(join(tmpdir(), "kiln-bench-redis-"));
  const port = await freePort();
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    dir,
    "--daemonize",
    "no",
    "--loglevel",
    "warning",
  ];
  const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, "exit");
  // If this process ends without stop() (the watchdog's process.exit, an uncaught error), the
  // server must not outlive it.
  const onExit = (): void => {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  };
  process.once("exit", onExit);
  const stop = async (): Promise<void> => {
    process.off("exit", onExit);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = performance.now() + readyTimeoutMs;
  while (!(await ping(port))) {
    if (child.exitCode !== null || performance.now() > deadline) {
      await stop();
      throw new Error(
        `redis-server on port ${port} did not answer PING within ${readyTimeoutMs} ms:\n${output}`,
      );
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 20));
  }
  return { url: `redis://127.0.0.1:${port}`, port, version, stop };
}
