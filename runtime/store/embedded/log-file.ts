/**
 * The embedded store's durability: one append-only file of JSON lines (`store.log`) in the
 * store's directory, with group commit and compaction.
 *
 * - Group commit: `append` adds a record to an in-memory buffer; one `writeSync` per event-loop
 *   turn (setImmediate) writes the whole buffer, then resolves the promise every caller of that
 *   turn waits on. A call that resolved has its record in the file (survives `kill -9`); with
 *   `fsync` the flush also fsyncs (survives power loss).
 * - Replay: records are applied in order; a torn last line (a crash mid-write) is ignored and cut
 *   off, so later appends start on a clean line. A bad line followed by good ones is corruption.
 * - Compaction: once the file passes `compactBytes` and is more than twice the live state, the
 *   state is written as records to `store.log.tmp`, fsynced and renamed over `store.log`; the
 *   rename is atomic, so a crash leaves either the old or the new file, both complete.
 * - A `LOCK` file with the owner's pid keeps a second process from opening the same directory.
 *
 * Not promised: compaction runs synchronously and blocks the event loop for the time it takes to
 * serialize the live state.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { InternalError, UnavailableError, messageOf } from "../../errors.js";
import type { LogRecord } from "./state.js";

export const LOG_FILE = "store.log";
const TMP_FILE = "store.log.tmp";
const LOCK_FILE = "LOCK";
const CHUNK = 1 << 20;

/** Directories opened by a store in this process (a second open in the same process is refused too). */
const openDirs = new Set<string>();

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

export interface LogFileOptions {
  fsync: boolean;
  compactBytes: number;
  /** The live state as records, for compaction. */
  snapshot: () => Iterable<LogRecord>;
}

export class LogFile {
  private fd: number;
  private size: number;
  private nextCompactCheck = 0;
  private buffer: string[] = [];
  private waiting: Deferred | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private failure: unknown = null;
  private closed = false;

  private constructor(
    private readonly dir: string,
    private readonly options: LogFileOptions,
    fd: number,
    size: number,
  ) {
    this.fd = fd;
    this.size = size;
  }

  /** Lock `dir`, replay its log through `apply`, and open it for appending. */
  static open(dir: string, options: LogFileOptions, apply: (record: LogRecord) => void): LogFile {
    const abs = path.resolve(dir);
    fs.mkdirSync(abs, { recursive: true });
    lockDir(abs);
    try {
      fs.rmSync(path.join(abs, TMP_FILE), { force: true });
      const file = path.join(abs, LOG_FILE);
      const size = replay(file, apply);
      const fd = fs.openSync(file, "a");
      return new LogFile(abs, options, fd, size);
    } catch (error) {
      unlockDir(abs);
      throw error;
    }
  }

  /** Why the log cannot be written any more, if it cannot. */
  get error(): unknown {
    return this.failure;
  }

  append(record: LogRecord): void {
    this.buffer.push(JSON.stringify(record));
    if (!this.waiting) {
      this.waiting = deferred();
      this.immediate = setImmediate(() => this.flush());
    }
  }

  /** Resolves once everything appended so far is written; null when nothing is waiting. */
  barrier(): Promise<void> | null {
    return this.waiting?.promise ?? null;
  }

  /** Write the buffer now. */
  flush(): void {
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = null;
    const waiting = this.waiting;
    this.waiting = null;
    if (!waiting) return;
    const lines = this.buffer;
    this.buffer = [];
    if (this.failure) {
      waiting.reject(this.unavailable());
      return;
    }
    try {
      lines.push("");
      this.size += writeAll(this.fd, Buffer.from(lines.join("\n"), "utf8"));
      if (this.options.fsync) fs.fsyncSync(this.fd);
    } catch (error) {
      this.failure = error;
      waiting.reject(this.unavailable());
      return;
    }
    waiting.resolve();
    this.maybeCompact();
  }

  /** Flush, close the file and release the directory. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    try {
      if (this.options.fsync && !this.failure) fs.fsyncSync(this.fd);
    } finally {
      fs.closeSync(this.fd);
      unlockDir(this.dir);
    }
  }

  private unavailable(): UnavailableError {
    return new UnavailableError(`store log write failed: ${messageOf(this.failure)}`, {
      cause: this.failure,
    });
  }

  private maybeCompact(): void {
    if (this.size < this.options.compactBytes || this.size < this.nextCompactCheck) return;
    const tmp = path.join(this.dir, TMP_FILE);
    const file = path.join(this.dir, LOG_FILE);
    let written: number;
    try {
      written = writeSnapshot(tmp, this.options.snapshot());
    } catch {
      fs.rmSync(tmp, { force: true });
      this.nextCompactCheck = this.size * 2;
      return;
    }
    if (written * 2 >= this.size) {
      // Mostly live data: not worth it yet. Look again when the log has doubled past the live size.
      fs.rmSync(tmp, { force: true });
      this.nextCompactCheck = written * 2 + 1;
      return;
    }
    try {
      fs.renameSync(tmp, file);
    } catch {
      fs.rmSync(tmp, { force: true });
      this.nextCompactCheck = this.size * 2;
      return;
    }
    try {
      fsyncDir(this.dir);
      fs.closeSync(this.fd);
      this.fd = fs.openSync(file, "a");
      this.size = written;
      // When the live state alone exceeds compactBytes, wait until the log has doubled again.
      this.nextCompactCheck = written * 2 + 1;
    } catch (error) {
      this.failure = error;
    }
  }
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {}); // a failed flush nobody waits for must not be an unhandled rejection
  return { promise, resolve, reject };
}

function writeAll(fd: number, data: Buffer): number {
  let offset = 0;
  while (offset < data.length) offset += fs.writeSync(fd, data, offset, data.length - offset);
  return data.length;
}

function writeSnapshot(file: string, records: Iterable<LogRecord>): number {
  const fd = fs.openSync(file, "w");
  try {
    let written = 0;
    let lines: string[] = [];
    let pending = 0;
    const write = (): void => {
      lines.push("");
      written += writeAll(fd, Buffer.from(lines.join("\n"), "utf8"));
      lines = [];
      pending = 0;
    };
    for (const record of records) {
      const line = JSON.stringify(record);
      lines.push(line);
      pending += line.length;
      if (pending >= CHUNK) write();
    }
    if (lines.length > 0) write();
    fs.fsyncSync(fd);
    return written;
  } finally {
    fs.closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Apply every complete record of `file`; cut a torn tail off. Returns the file's (new) size. */
function replay(file: string, apply: (record: LogRecord) => void): number {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw error;
  }
  let goodEnd = 0;
  let badAt = -1;
  try {
    for (const { line, end } of readLines(fd)) {
      if (line.length === 0) {
        if (badAt < 0) goodEnd = end;
        continue;
      }
      let record: LogRecord;
      try {
        record = JSON.parse(line.toString("utf8")) as LogRecord;
      } catch {
        if (badAt < 0) badAt = goodEnd;
        continue;
      }
      if (badAt >= 0) throw new InternalError(`store log ${file} is corrupt at byte ${badAt}`);
      apply(record);
      goodEnd = end;
    }
  } finally {
    fs.closeSync(fd);
  }
  if (fs.statSync(file).size !== goodEnd) fs.truncateSync(file, goodEnd);
  return goodEnd;
}

/** Lines of the file (without the newline), with the byte offset just past each; a last line without a newline is not yielded. */
function* readLines(fd: number): Generator<{ line: Buffer; end: number }> {
  const chunk = Buffer.alloc(CHUNK);
  let carry: Buffer[] = [];
  let position = 0;
  for (;;) {
    const n = fs.readSync(fd, chunk, 0, CHUNK, position);
    if (n === 0) return;
    const view = chunk.subarray(0, n);
    let start = 0;
    for (;;) {
      const newline = view.indexOf(10, start);
      if (newline < 0) {
        carry.push(Buffer.from(view.subarray(start)));
        break;
      }
      const piece = view.subarray(start, newline);
      const line = carry.length > 0 ? Buffer.concat([...carry, piece]) : piece;
      carry = [];
      yield { line, end: position + newline + 1 };
      start = newline + 1;
    }
    position += n;
  }
}

function lockDir(dir: string): void {
  if (openDirs.has(dir))
    throw new UnavailableError(`store directory ${dir} is already open in this process`);
  const file = path.join(dir, LOCK_FILE);
  try {
    fs.writeFileSync(file, String(process.pid), { flag: "wx" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    const pid = Number(fs.readFileSync(file, "utf8").trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
      throw new UnavailableError(`store directory ${dir} is in use by process ${pid}`);
    }
    fs.writeFileSync(file, String(process.pid));
  }
  openDirs.add(dir);
}

function unlockDir(dir: string): void {
  openDirs.delete(dir);
  const file = path.join(dir, LOCK_FILE);
  try {
    if (fs.readFileSync(file, "utf8").trim() === String(process.pid))
      fs.rmSync(file, { force: true });
  } catch {
    // already gone
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
