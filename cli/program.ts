/**
 * The `kiln` command tree (commander), and `run(argv)`, which turns every failure into an exit code.
 * Only the command being run is loaded (its module pulls in what it needs: the agent, Pulumi,
 * esbuild), so `kiln call` or `kiln status` does not pay for `kiln agent` or `kiln deploy`.
 */
import { Command, CommanderError } from "commander";
import { KILN_VERSION } from "../runtime/version.js";
import { exitCodeFor, reportError } from "./output.js";

type Register = (program: Command) => void;

/** Every command, in the order help lists them, and how to load its definition. */
const COMMANDS: Record<string, () => Promise<Register>> = {
  init: async () => (await import("./commands/init.js")).registerInit,
  agent: async () => (await import("./commands/agent.js")).registerAgent,
  deploy: async () => (await import("./commands/deploy.js")).registerDeploy,
  preview: async () => (await import("./commands/preview.js")).registerPreview,
  run: async () => (await import("./commands/run.js")).registerRun,
  call: async () => (await import("./commands/call.js")).registerCall,
  status: async () => (await import("./commands/status.js")).registerStatus,
  logs: async () => (await import("./commands/logs.js")).registerLogs,
  stop: async () => (await import("./commands/stop.js")).registerStop,
  usage: async () => (await import("./commands/usage.js")).registerUsage,
};

/** Options of `kiln` itself that take no value, so the first other word is the command's name. */
const GLOBAL_FLAGS = new Set(["--verbose", "-V", "--version", "-h", "--help"]);

/**
 * Which commands `argv` needs: the one it names; none for a bare `--version`; all of them for
 * help, no command, or a name that is no command (commander then suggests the closest).
 */
export function commandsFor(argv: readonly string[]): string[] {
  const words = argv.slice(2);
  const name = words.find((word) => !GLOBAL_FLAGS.has(word));
  if (name !== undefined && Object.hasOwn(COMMANDS, name)) return [name];
  if (name === undefined && words.some((word) => word === "-V" || word === "--version")) return [];
  return Object.keys(COMMANDS);
}

export async function createProgram(
  commands: readonly string[] = Object.keys(COMMANDS),
): Promise<Command> {
  const program = new Command("kiln")
    .description(
      "kiln: self-hosted serverless functions (init, agent, deploy, preview, run, call, status, logs, stop, usage)",
    )
    .version(KILN_VERSION, "-V, --version", "print kiln's version")
    .option("--verbose", "print the stack of errors")
    .configureHelp({ showGlobalOptions: true })
    // Set before the subcommands are added, so they inherit it: usage errors throw, run() exits 2.
    .exitOverride();
  const registers = await Promise.all(commands.map((name) => COMMANDS[name]!()));
  for (const register of registers) register(program);
  return program;
}

/** Parse and run; resolves with the exit code (0, 1 for failures, 2 for usage errors). */
export async function run(argv: readonly string[]): Promise<number> {
  const program = await createProgram(commandsFor(argv));
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
