/** `kiln status`: the agent, then every app's functions: containers, queue, cold starts, failures. */
import type { Command } from "commander";
import type { AgentStatus, FunctionStatus } from "../../runtime/protocol.js";
import { openKiln, withConnectionOptions, type ConnectionFlags } from "../connection.js";
import { gpuOffers } from "../../runtime/containers/gpu-offers.js";
import { formatHostGpus, oneLine, table } from "../output.js";

interface StatusFlags extends ConnectionFlags {
  json?: boolean;
}

export function registerStatus(program: Command): void {
  withConnectionOptions(
    program
      .command("status")
      .description("show the agent, its apps and their functions")
      .option("--json", "print the raw status as JSON"),
  ).action(async (flags: StatusFlags) => {
    const kiln = await openKiln(flags);
    const status = await kiln.status();
    process.stdout.write(
      flags.json ? `${JSON.stringify(status, null, 2)}\n` : `${formatStatus(status).join("\n")}\n`,
    );
  });
}

const HEADER = [
  "FUNCTION",
  "DESIRED",
  "STARTING",
  "BUSY",
  "IDLE",
  "DRAINING",
  "PENDING",
  "RUNNING",
  "SPAWN-PENDING",
  "COLD-STARTS",
  "START-FAILURES",
];
const NUMERIC = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

function formatStatus(status: AgentStatus): string[] {
  const { agent } = status;
  const lines = [
    `agent ${agent.url}  version ${agent.version}  store ${agent.store}  cpu ${agent.capacity.cpuUsed}/${agent.capacity.cpu} used  id ${agent.id}  up since ${agent.startedAt}`,
  ];
  const e = status.enforcement;
  const hosts = status.hosts ?? [];
  // This host's GPUs as they are held now; other hosts' as they last advertised them (<= 2 s ago).
  const own = e ? gpuOffers(e.gpus.devices) : hosts.find((h) => h.id === agent.id)?.gpus;
  if (hosts.length <= 1) {
    const gpus = formatHostGpus(own);
    if (gpus) lines.push(`host: ${gpus}`);
  }
  if (e) {
    const controllers = Object.entries(e.controllers)
      .map(([name, version]) => `${name} ${version}`)
      .join(", ");
    lines.push(
      `limits: ${e.enforcement === "fallback" ? `FALLBACK (rlimits + RSS polling): ${e.reason ?? ""}` : `${e.enforcement} (${controllers})`}` +
        `  scratch: ${e.disk.enforcement}${e.disk.pressure ? "  DISK PRESSURE" : ""}  gpus: ${e.gpus.free}/${e.gpus.total} free`,
    );
    if (e.disk.message && e.disk.pressure) lines.push(`  ${e.disk.message}`);
  }
  if (hosts.length > 1) {
    lines.push(`cluster: ${hosts.length} agents on store ${agent.store}`);
    for (const host of hosts) {
      const containers = Object.values(host.functions).reduce((n, f) => n + f.containers, 0);
      const busy = Object.values(host.functions).reduce((n, f) => n + f.busy, 0);
      const here = host.id === agent.id;
      const gpus = formatHostGpus(here ? own : host.gpus);
      lines.push(
        `  ${here ? "*" : " "} ${host.url}  cpu ${host.capacity.cpuUsed}/${host.capacity.cpu}  containers ${containers} (${busy} busy)` +
          `${gpus ? `  ${gpus}` : ""}${host.draining ? "  draining" : ""}`,
      );
    }
  }
  if (status.apps.length === 0) return [...lines, "", "no apps deployed"];

  // One table over every app so the columns line up from app to app; notes go under their row.
  const rows: string[][] = [HEADER];
  for (const app of status.apps) for (const fn of app.functions) rows.push(functionRow(fn));
  const aligned = table(rows, { right: NUMERIC, indent: "  " });
  let next = 1;
  for (const app of status.apps) {
    lines.push(
      "",
      `app ${app.name}  version ${app.version}  deployed ${app.deployedAt}`,
      aligned[0] ?? "",
    );
    for (const fn of app.functions) {
      lines.push(aligned[next++] ?? "");
      if (hosts.length > 1) {
        const spread = hosts.flatMap((h) => {
          const share = h.functions[`${app.name}.${fn.name}`];
          return share && share.containers > 0
            ? [`${h.url} ${share.containers} (${share.busy} busy)`]
            : [];
        });
        if (spread.length > 0) lines.push(`      on hosts: ${spread.join(", ")}`);
      }
      if (fn.scaling?.lastDecision)
        lines.push(
          `      scaling: ${fn.scaling.lastDecision.desired} wanted: ${fn.scaling.lastDecision.reason}`,
        );
      if (fn.blocked) lines.push(`      blocked: ${fn.blocked}`);
      if (fn.lastStartError)
        lines.push(`      last start error: ${fn.lastStartError.split("\n")[0] ?? ""}`);
    }
    if (app.functions.length === 0) lines.push("  (no functions)");
    for (const schedule of app.schedules ?? []) {
      const when = schedule.cron
        ? `cron "${schedule.cron}" ${schedule.timezone}`
        : `every ${schedule.periodS} s`;
      const last = schedule.runs[0];
      const lastText = last
        ? `last run ${last.tickAt} ${last.status}${last.error ? `: ${oneLine(last.error)}` : ""}`
        : "no runs yet";
      lines.push(
        `  schedule ${schedule.name} -> ${schedule.function}  ${when}  next ${schedule.nextTickAt ?? "(not firing: ephemeral app)"}  ${lastText}`,
      );
    }
  }
  return lines;
}

function functionRow(fn: FunctionStatus): string[] {
  const count = (state: string) => String(fn.containers.filter((c) => c.state === state).length);
  return [
    fn.name,
    String(fn.scaling?.desired ?? 0),
    count("starting"),
    String(fn.scaling?.busy ?? 0),
    String(fn.scaling?.idle ?? 0),
    count("draining"),
    String(fn.queue.pending),
    String(fn.queue.running),
    String(fn.queue.spawnPending),
    String(fn.coldStarts),
    String(fn.startFailures),
  ];
}
