/** `kiln status`: the agent, then every app's functions: containers, queue, cold starts, failures. */
import type { Command } from "commander";
import type { AgentStatus, FunctionStatus } from "../../runtime/protocol.js";
import { openKiln, withConnectionOptions, type ConnectionFlags } from "../connection.js";
import { table } from "../output.js";

interface StatusFlags extends ConnectionFlags {
  json?: boolean;
}

export function registerStatus(program: Command): void {
  withConnectionOptions(
    program.command("status").description("show the agent, its apps and their functions").option("--json", "print the raw status as JSON"),
  ).action(async (flags: StatusFlags) => {
    const kiln = await openKiln(flags);
    const status = await kiln.status();
    process.stdout.write(flags.json ? `${JSON.stringify(status, null, 2)}\n` : `${formatStatus(status).join("\n")}\n`);
  });
}

const HEADER = ["FUNCTION", "STARTING", "READY", "DRAINING", "PENDING", "RUNNING", "SPAWN-PENDING", "COLD-STARTS", "START-FAILURES"];
const NUMERIC = [1, 2, 3, 4, 5, 6, 7, 8];

export function formatStatus(status: AgentStatus): string[] {
  const { agent } = status;
  const lines = [
    `agent ${agent.url}  version ${agent.version}  store ${agent.store}  cpu ${agent.capacity.cpuUsed}/${agent.capacity.cpu} used  id ${agent.id}  up since ${agent.startedAt}`,
  ];
  if (status.apps.length === 0) return [...lines, "", "no apps deployed"];

  // One table over every app so the columns line up from app to app; notes go under their row.
  const rows: string[][] = [HEADER];
  for (const app of status.apps) for (const fn of app.functions) rows.push(functionRow(fn));
  const aligned = table(rows, { right: NUMERIC, indent: "  " });
  let next = 1;
  for (const app of status.apps) {
    lines.push("", `app ${app.name}  version ${app.version}  deployed ${app.deployedAt}`, aligned[0] ?? "");
    for (const fn of app.functions) {
      lines.push(aligned[next++] ?? "");
      if (fn.blocked) lines.push(`      blocked: ${fn.blocked}`);
      if (fn.lastStartError) lines.push(`      last start error: ${fn.lastStartError.split("\n")[0] ?? ""}`);
    }
    if (app.functions.length === 0) lines.push("  (no functions)");
  }
  return lines;
}

function functionRow(fn: FunctionStatus): string[] {
  const count = (state: string) => String(fn.containers.filter((c) => c.state === state).length);
  return [
    fn.name,
    count("starting"),
    count("ready"),
    count("draining"),
    String(fn.queue.pending),
    String(fn.queue.running),
    String(fn.queue.spawnPending),
    String(fn.coldStarts),
    String(fn.startFailures),
  ];
}
