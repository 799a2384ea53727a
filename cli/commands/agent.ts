/** `kiln agent`: run the host daemon in the foreground until SIGINT / SIGTERM. */
import { resolve, join } from "node:path";
import type { Command } from "commander";
import { Agent, type AgentOptions } from "../../runtime/agent/agent.js";
import { TOKEN_FILE } from "../../runtime/agent/auth.js";
import { defaultStateDir } from "../../runtime/client/index.js";
import { UnavailableError } from "../../runtime/errors.js";
import type { LogLine } from "../../runtime/protocol.js";
import { KILN_VERSION } from "../../runtime/version.js";
import { parseArg, portArg, positiveNumberArg, urlArg } from "../args.js";
import { formatLogLine } from "../output.js";

interface AgentFlags {
  host: string;
  port: string;
  stateDir?: string;
  cpu?: string;
  redis?: string;
  drainGrace: string;
  advertiseUrl?: string;
}

export function registerAgent(program: Command): void {
  program
    .command("agent")
    .description("run a kiln agent (the host daemon) in the foreground; Ctrl-C stops it")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <port>", "port to listen on (0 picks a free one)", "7070")
    .option(
      "--state-dir <dir>",
      "token, store, bundles and logs (default: KILN_STATE_DIR, else ~/.kiln)",
    )
    .option("--cpu <cores>", "CPU cores to hand out to containers (default: all of the host's)")
    .option(
      "--redis <url>",
      "share a Redis server with other agents (default: KILN_REDIS_URL, else the embedded store)",
    )
    .option(
      "--advertise-url <url>",
      "the URL other agents and clients reach this one at, when it is not the listen address (--host 0.0.0.0 in a pod: http://<pod IP>:<port>)",
    )
    .option(
      "--drain-grace <seconds>",
      "on SIGTERM/SIGINT, how long running inputs may finish before they are handed back",
      "30",
    )
    .action(async (flags: AgentFlags) => runAgent(flags));
}

async function runAgent(flags: AgentFlags): Promise<void> {
  const port = parseArg(portArg, flags.port, "--port");
  const cpu =
    flags.cpu === undefined ? undefined : parseArg(positiveNumberArg(65_536), flags.cpu, "--cpu");
  const stateDir = resolve(flags.stateDir ?? defaultStateDir());
  const graceMs = parseArg(positiveNumberArg(86_400), flags.drainGrace, "--drain-grace") * 1000;
  const options: AgentOptions = { host: flags.host, port, stateDir, echoLogs: echo };
  if (cpu !== undefined) options.cpu = cpu;
  if (flags.redis !== undefined) options.redisUrl = flags.redis;
  if (flags.advertiseUrl !== undefined)
    options.advertiseUrl = parseArg(urlArg, flags.advertiseUrl, "--advertise-url");

  let agent: Agent;
  try {
    agent = await Agent.start(options);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") {
      throw new UnavailableError(
        `${flags.host}:${port} is already in use (another kiln agent?): pass --port`,
        { cause: error },
      );
    }
    throw error;
  }
  const token = process.env["KILN_TOKEN"]
    ? "token from KILN_TOKEN"
    : `token in ${join(stateDir, TOKEN_FILE)}`;
  process.stdout.write(
    `kiln agent ${KILN_VERSION} listening on ${agent.boundUrl}${agent.url === agent.boundUrl ? "" : `, advertised as ${agent.url}`} (${token}; state in ${stateDir})\n`,
  );
  process.stdout.write(`${agent.enforcementNotice}\n`);

  await new Promise<void>((done, fail) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        process.stderr.write(`kiln agent: ${signal} again, exiting without waiting\n`);
        process.exit(130);
      }
      stopping = true;
      process.stderr.write(
        `kiln agent: ${signal}, draining: no new inputs; running ones get up to ${graceMs / 1000} s, the rest go back to the queue (${signal} again to exit now)\n`,
      );
      agent.stop({ graceMs }).then(done, fail);
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
  process.stderr.write("kiln agent: stopped\n");
}

/** Worker output on the agent's terminal: `[app.fn call-id] text`, stderr lines to stderr. */
function echo(line: LogLine): void {
  const out = line.stream === "stderr" ? process.stderr : process.stdout;
  for (const text of formatLogLine(line, { ts: false, app: true })) out.write(`${text}\n`);
}
