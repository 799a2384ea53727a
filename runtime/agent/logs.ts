/**
 * Worker output and pool events, per app: the last lines in memory for `kiln logs`, every line
 * appended to `<state-dir>/logs/<app>.jsonl`, and live followers for `--follow`.
 */
import { createWriteStream, existsSync, mkdirSync, type WriteStream } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import type { LogLine } from "../protocol.js";

const MEMORY_LINES_PER_APP = 5_000;

export type LogInput = Omit<LogLine, "ts">;

export class LogBook {
  private readonly recent = new Map<string, LogLine[]>();
  private readonly files = new Map<string, WriteStream>();
  private readonly followers = new Map<string, Set<(line: LogLine) => void>>();
  private readonly dir: string | null;

  constructor(
    dir: string | null,
    private readonly echo: ((line: LogLine) => void) | null = null,
  ) {
    this.dir = dir;
    if (dir) mkdirSync(join(dir, "logs"), { recursive: true });
  }

  append(input: LogInput): void {
    const line: LogLine = { ts: new Date().toISOString(), ...input };
    let lines = this.recent.get(line.app);
    if (!lines) this.recent.set(line.app, (lines = []));
    lines.push(line);
    if (lines.length > MEMORY_LINES_PER_APP) lines.splice(0, lines.length - MEMORY_LINES_PER_APP);
    this.file(line.app)?.write(`${JSON.stringify(line)}\n`);
    for (const follower of this.followers.get(line.app) ?? []) follower(line);
    this.echo?.(line);
  }

  /** The last `tail` lines of an app (optionally one function), from memory or, after a restart, the file. */
  async tail(app: string, fn: string | undefined, tail: number): Promise<LogLine[]> {
    let lines = this.recent.get(app) ?? [];
    if (lines.length === 0 && this.dir) {
      const path = this.path(app);
      if (existsSync(path)) {
        const text = await readFile(path, "utf8");
        lines = text
          .split("\n")
          .slice(-MEMORY_LINES_PER_APP - 1)
          .filter((l) => l.trim() !== "")
          .flatMap((l) => {
            try {
              return [JSON.parse(l) as LogLine];
            } catch {
              return [];
            }
          });
      }
    }
    const selected = fn ? lines.filter((l) => l.function === fn) : lines;
    return tail === 0 ? [] : selected.slice(-tail);
  }

  follow(app: string, listener: (line: LogLine) => void): () => void {
    let set = this.followers.get(app);
    if (!set) this.followers.set(app, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Forget an app's lines, in memory and on disk (an ephemeral app's logs go with it). */
  async drop(app: string): Promise<void> {
    this.recent.delete(app);
    const stream = this.files.get(app);
    this.files.delete(app);
    if (stream) await new Promise<void>((resolve) => stream.end(resolve));
    if (this.dir) await rm(this.path(app), { force: true });
  }

  async close(): Promise<void> {
    await Promise.all(
      [...this.files.values()].map((f) => new Promise<void>((resolve) => f.end(resolve))),
    );
    this.files.clear();
  }

  private path(app: string): string {
    return join(this.dir ?? "", "logs", `${app}.jsonl`);
  }

  private file(app: string): WriteStream | null {
    if (!this.dir) return null;
    let stream = this.files.get(app);
    if (!stream) {
      stream = createWriteStream(this.path(app), { flags: "a" });
      stream.on("error", () => undefined);
      this.files.set(app, stream);
    }
    return stream;
  }
}
