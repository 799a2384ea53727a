/** The `kiln` command tree (commander), and `run(argv)`, which turns every failure into an exit code. */
import { Command, CommanderError } from "commander";
import { KILN_VERSION } from "../runtime/version.js";
import { registerAgent } from "./commands/agent.js";
import { registerCall } from "./commands/call.js";
import { registerDeploy } from "./commands/deploy.js";
import { registerLogs } from "./commands/logs.js";
import { registerPreview } from "./commands/preview.js";
import { registerRun } from "./commands/run.js";
import { registerStatus } from "./commands/status.js";
import { registerStop } from "./commands/stop.js";
import { registerUsage } from "./commands/usage.js";
import { exitCodeFor, reportError } from "./output.js";

export function createProgram(): Command {
  const program = new Command("kiln")
    .description("kiln: self-hosted serverless functions (agent, deploy, preview, run, call, status, logs, stop)")
    .version(KILN_VERSION, "-V, --version", "print kiln's version")
    .option("--verbose", "print the stack of errors")
    .configureHelp({ showGlobalOptions: true })
    // Set before the subcommands are added, so they inherit it: usage errors throw, run() exits 2.
    .exitOverride();
  registerAgent(program);
  registerDeploy(program);
  registerPreview(program);
  registerRun(program);
  registerCall(program);
  registerStatus(program);
  registerLogs(program);
  registerStop(program);
  registerUsage(program);
  return program;
}

/** Parse and run; resolves with the exit code (0, 1 for failures, 2 for usage errors). */
export async function run(argv: readonly string[]): Promise<number> {
  const program = createProgram();
  try {
    await program.parseAsync([...argv]);
    return 0;
  } catch (error) {
    // Commander has already printed its own message (unknown command, bad flag, help, version).
    if (!(error instanceof CommanderError)) {
      reportError(error, Boolean(program.opts()["verbose"]) || argv.includes("--verbose"));
    }
    return exitCodeFor(error);
  }
}
