/** `kiln call <app> <fn> [json-args...]`: call a deployed function and print its result. */
import type { Command } from "commander";
import { jsonArg, nameArg, parseArg } from "../args.js";
import { openKiln, withConnectionOptions, type ConnectionFlags } from "../connection.js";
import { formatJson, formatValue } from "../output.js";

interface CallFlags extends ConnectionFlags {
  spawn?: boolean;
  str?: boolean;
  json?: boolean;
}

export function registerCall(program: Command): void {
  withConnectionOptions(
    program
      .command("call")
      .description(
        "call a deployed function; an argument that looks like JSON must be JSON (7, '[1,2]', '{\"a\":1}', big integers as BigInt), anything else is a plain string",
      )
      .argument("<app>", "app name")
      .argument("<fn>", "function name")
      .argument("[args...]", "positional arguments of the function")
      .option("--str", "send every argument as a string, as typed (no JSON)")
      .option("--spawn", "start the call and print its id instead of waiting for the result")
      .option(
        "--json",
        "print the result as JSON (BigInt as a string, Map as an object, Set as an array)",
      ),
  ).action(async (app: string, fn: string, rawArgs: string[], flags: CallFlags, command: Command) =>
    runCall(app, fn, rawArgs, flags, Boolean(command.optsWithGlobals()["verbose"])),
  );
}

async function runCall(
  app: string,
  fn: string,
  rawArgs: string[],
  flags: CallFlags,
  verbose: boolean,
): Promise<void> {
  const appName = parseArg(nameArg, app, "<app>");
  const fnName = parseArg(nameArg, fn, "<fn>");
  const args = flags.str
    ? rawArgs
    : rawArgs.map((raw, i) => parseArg(jsonArg, raw, `argument ${i + 1}`));
  const kiln = await openKiln(flags);
  const remote = kiln.function(appName, fnName);
  if (flags.spawn) {
    const call = await remote.spawn(...args);
    process.stdout.write(flags.json ? `${formatJson({ callId: call.id })}\n` : `${call.id}\n`);
    return;
  }
  const value = await remote.remote(...args);
  if (flags.json) process.stdout.write(`${formatJson(value)}\n`);
  else if (value !== undefined)
    process.stdout.write(`${formatValue(value, { stacks: verbose })}\n`);
}
