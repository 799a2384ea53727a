/**
 * The Redis store's connections: one for commands (scripts registered on it), one subscriber, and
 * a small pool of blocking connections (one per waiting pop); their ioredis options, the server
 * version check, and how an ioredis failure becomes a kiln error (transient reply codes included).
 */
import { Redis, type RedisOptions } from "ioredis";
import {
  InternalError,
  InvalidError,
  UnavailableError,
  isKilnError,
  messageOf,
  type KilnError,
} from "../../errors.js";
import { positive } from "../checks.js";
import type { KeyLayout } from "./keys.js";
import { scriptDefinitions, type Script } from "./scripts.js";

/** Idle blocking connections kept for the next blocking pop. */
const MAX_IDLE_BLOCKING = 4;
/** How long `close` waits for blocked pops to unblock and connections to quit. */
export const CLOSE_GRACE_MS = 1000;

/** Reply-error codes that mean "the server cannot serve now", not "the request is wrong". */
const TRANSIENT_CODES = new Set([
  "LOADING",
  "BUSY",
  "MASTERDOWN",
  "READONLY",
  "TRYAGAIN",
  "CLUSTERDOWN",
  "NOREPLICAS",
  "OOM",
  "NOAUTH",
]);

const DEFAULT_COMMAND_TIMEOUT_MS = 5000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

export interface ConnectionOptions {
  url: string;
  /** A command without a reply after this many ms fails with UnavailableError. */
  commandTimeoutMs: number;
  /** Give up a connection attempt after this many ms. */
  connectTimeoutMs: number;
}

/** The store's connection options, checked, with their defaults (5000 ms each). */
export function connectionSettings(options: {
  url: string;
  commandTimeoutMs?: number | undefined;
  connectTimeoutMs?: number | undefined;
}): ConnectionOptions {
  return {
    url: options.url,
    commandTimeoutMs: positive(
      "commandTimeoutMs",
      options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    ),
    connectTimeoutMs: positive(
      "connectTimeoutMs",
      options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    ),
  };
}

/** Run a script on the command connection, its reply parsed by its builder. */
export type RunScript = <I, R>(script: Script<I, R>, input: I) => Promise<R>;

export class Connections {
  readonly url: string;
  readonly commandTimeoutMs: number;
  /** Made by {@link connect}. */
  cmd!: Redis;
  sub!: Redis;
  /** Redis >= 7: BLMPOP pops up to `max` atomically; older servers BLPOP one, then LPOP the rest. */
  hasBlmpop = false;
  /** Set when the store starts closing: failures then say "store is closed". */
  closed = false;
  /** The last connection error ioredis reported (ECONNREFUSED ...), for messages. */
  private lastConnectionError: string | null = null;
  private readonly idleBlocking: Redis[] = [];

  constructor(
    private readonly options: ConnectionOptions,
    private readonly layout: KeyLayout,
  ) {
    this.url = options.url;
    this.commandTimeoutMs = options.commandTimeoutMs;
  }

  /** Make and connect both, and check the server's version (6.2 or later). */
  async connect(): Promise<void> {
    this.cmd = new Redis(this.url, {
      ...this.baseOptions(),
      commandTimeout: this.commandTimeoutMs,
      scripts: scriptDefinitions(),
    });
    this.sub = new Redis(this.url, { ...this.baseOptions(), autoResubscribe: true });
    // Errors surface on the calls; without a listener ioredis would print every reconnect failure.
    this.cmd.on("error", (error: unknown) => (this.lastConnectionError = messageOf(error)));
    this.cmd.on("ready", () => (this.lastConnectionError = null));
    this.sub.on("error", () => {});
    await Promise.all([this.cmd.connect(), this.sub.connect()]);
    const info = await this.cmd.info("server");
    const version = /redis_version:(\d+)\.(\d+)/.exec(info);
    const [major, minor] = version ? [Number(version[1]), Number(version[2])] : [0, 0];
    if (major < 6 || (major === 6 && minor < 2)) {
      throw new UnavailableError(
        `Redis at ${redact(this.url)} is version ${major}.${minor}; kiln needs Redis 6.2 or later`,
      );
    }
    this.hasBlmpop = major >= 7;
  }

  /** Both the command and the subscriber connection are up now. */
  get ready(): boolean {
    return this.cmd.status === "ready" && this.sub.status === "ready";
  }

  run: RunScript = async (script, input) => {
    const { keys, args } = script.build(this.layout, input);
    // defineCommand (the `scripts` option) adds a method per script; TypeScript does not see them.
    const command: unknown = Reflect.get(this.cmd, script.command);
    if (typeof command !== "function")
      throw new InternalError(`redis store: script ${script.file} is not registered`);
    const call = (): Promise<unknown> =>
      Reflect.apply(command, this.cmd, [keys.length, ...keys, ...args]);
    return script.reply(await this.exec(call), input);
  };

  async exec<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw this.fail(error);
    }
  }

  /** The kiln error for an ioredis failure. */
  fail(error: unknown): KilnError {
    if (isKilnError(error)) return error;
    const message = messageOf(error);
    if (this.closed && !(error instanceof Error && error.name === "ReplyError")) {
      return new UnavailableError("store is closed", { cause: error });
    }
    if (error instanceof Error && error.name === "ReplyError") {
      if (message.includes("WRONGTYPE"))
        return new InvalidError(
          `key holds the wrong kind of value (a string used as a list, or a list as a string): ${message}`,
          { cause: error },
        );
      const invalid = /KILN_INVALID (.*)/.exec(message);
      if (invalid)
        return new InvalidError(invalid[1]!.split(" script:")[0]!.trim(), { cause: error });
      const code = message.split(" ")[0] ?? "";
      if (TRANSIENT_CODES.has(code))
        return new UnavailableError(`Redis at ${redact(this.url)} is unavailable: ${message}`, {
          cause: error,
        });
      return new InternalError(`Redis at ${redact(this.url)}: ${message}`, { cause: error });
    }
    // ioredis says "Stream isn't writeable ..." or "Connection is closed." while disconnected;
    // the connection error behind it (ECONNREFUSED ...) says more.
    const disconnected = /Stream isn't writeable|Connection is closed/.test(message);
    const reason = disconnected
      ? `not connected${this.lastConnectionError ? ` (${this.lastConnectionError})` : ""}`
      : message;
    return new UnavailableError(`Redis at ${redact(this.url)} is unavailable: ${reason}`, {
      cause: error,
    });
  }

  /** Every key matching the SCAN pattern `match`, each once. */
  async scan(match: string): Promise<string[]> {
    const found = new Set<string>();
    let cursor = "0";
    do {
      const [next, batch] = await this.exec(() =>
        this.cmd.scan(cursor, "MATCH", match, "COUNT", 1000),
      );
      for (const key of batch) found.add(key);
      cursor = next;
    } while (cursor !== "0");
    return [...found];
  }

  /** A connection for one blocking pop: an idle one from the pool, or a new one. */
  async acquireBlocking(): Promise<Redis> {
    while (this.idleBlocking.length > 0) {
      const conn = this.idleBlocking.pop()!;
      if (conn.status === "ready") return conn;
      conn.disconnect();
    }
    // No reconnects: a broken blocking connection is dropped and a fresh one made for the next pop.
    const conn = new Redis(this.url, { ...this.baseOptions(), retryStrategy: () => null });
    conn.on("error", () => {});
    try {
      await conn.connect();
    } catch (error) {
      conn.disconnect();
      throw error;
    }
    return conn;
  }

  /** Back to the pool after a pop (or dropped, when broken, closing or the pool is full). */
  releaseBlocking(conn: Redis, healthy: boolean): void {
    if (
      healthy &&
      !this.closed &&
      conn.status === "ready" &&
      this.idleBlocking.length < MAX_IDLE_BLOCKING
    ) {
      this.idleBlocking.push(conn);
    } else {
      void quit(conn);
    }
  }

  /** Drop both connections at once (a failed open: either may not have been made). */
  disconnect(): void {
    this.cmd?.disconnect();
    this.sub?.disconnect();
  }

  /** Quit every connection but the blocking ones in use (bounded). */
  async quit(): Promise<void> {
    const conns = [this.cmd, this.sub, ...this.idleBlocking.splice(0)];
    await Promise.all(conns.map((conn) => quit(conn)));
  }

  private baseOptions(): RedisOptions {
    return {
      lazyConnect: true,
      enableOfflineQueue: false,
      // Commands in flight when the connection drops fail at once instead of waiting for a reconnect.
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      connectTimeout: this.options.connectTimeoutMs,
      // A dropped connection's socket is destroyed this soon if the server does not close it (frozen).
      disconnectTimeout: 200,
      retryStrategy: (times) =>
        Math.min(50 * 2 ** Math.min(times, 10), 2000) + Math.floor(Math.random() * 100),
    };
  }
}

/** A WRONGTYPE reply: the request is wrong (a string used as a list), whatever else happens. */
export function isWrongType(error: unknown): boolean {
  return (
    error instanceof Error && error.name === "ReplyError" && messageOf(error).includes("WRONGTYPE")
  );
}

/** Quit politely when connected (bounded), then drop the socket. */
async function quit(conn: Redis): Promise<void> {
  if (conn.status === "ready")
    await withTimeout(
      conn.quit().catch(() => {}),
      CLOSE_GRACE_MS,
    );
  conn.disconnect();
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString().replace(/\/$/, "");
  } catch {
    return "<invalid url>";
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Wait for `promise`, at most `ms`. */
export async function withTimeout(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
