/** `kiln logs <app> [fn]`: the last lines of an app's (or one function's) logs; `--follow` streams. */
import type { Command } from "commander";
import { UnavailableError } from "../../runtime/errors.js";
import type { LogLine } from "../../runtime/protocol.js";
import { integerArg, nameArg, parseArg } from "../args.js";
import { openKiln, withConnectionOptions, type ConnectionFlags } from "../connection.js";
import { formatLogLine } from "../output.js";

interface LogsFlags extends ConnectionFlags {
  follow?: boolean;
  tail?: string;
}

export function registerLogs(program: Command): void {
  withConnectionOptions(
    program
      .command("logs")
      .description("print an app's logs: 'ts [fn call-id] text'; system lines read '(system)'")
      .argument("<app>", "app name")
      .argument("[fn]", "only this function")
      .option("-f, --follow", "keep printing new lines until Ctrl-C")
      .option("--tail <lines>", "how many of the last lines to print first (default 200)"),
  ).action(async (app: string, fn: string | undefined, flags: LogsFlags) =>
    runLogs(app, fn, flags),
  );
}

async function runLogs(app: string, fn: string | undefined, flags: LogsFlags): Promise<void> {
  const appName = parseArg(nameArg, app, "<app>");
  const fnName = fn === undefined ? undefined : parseArg(nameArg, fn, "[fn]");
  const tail =
    flags.tail === undefined ? undefined : parseArg(integerArg(0, 100_000), flags.tail, "--tail");
  const kiln = await openKiln(flags);
  const path = `/v1/apps/${encodeURIComponent(appName)}/logs`;
  const query = { function: fnName, tail };
  if (!flags.follow) {
    const { lines } = await kiln.http.request<{ lines: LogLine[] }>("GET", path, { query });
    for (const line of lines) print(line);
    return;
  }

  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const response = await kiln.http.stream(path, { ...query, follow: true }, abort.signal);
    if (!response.body)
      throw new UnavailableError("the agent answered the log stream with no body");
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const chunk of response.body) {
      buffered += decoder.decode(chunk as Uint8Array, { stream: true });
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const text = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (text !== "") print(JSON.parse(text) as LogLine); // empty lines are keep-alive pings
      }
    }
    if (!abort.signal.aborted)
      throw new UnavailableError(
        "the agent closed the log stream (stopped, or the app was stopped)",
      );
  } catch (error) {
    if (abort.signal.aborted) return; // Ctrl-C: a normal end
    throw error;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

function print(line: LogLine): void {
  for (const text of formatLogLine(line, { ts: true, app: false }))
    process.stdout.write(`${text}\n`);
}
