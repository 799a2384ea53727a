/**
 * `kiln usage [--app A] [--function F] [--since T]`: metered usage per function, from cgroup
 * accounting, as the store keeps it (every agent's; 90 days; see runtime/agent/usage-ledger.ts).
 */
import type { Command } from "commander";
import type { UsageTotals } from "../../runtime/protocol.js";
import { openKiln, withConnectionOptions, type ConnectionFlags } from "../connection.js";
import { formatJson, table } from "../output.js";

interface UsageFlags extends ConnectionFlags {
  app?: string;
  function?: string;
  since?: string;
  json?: boolean;
}

export function registerUsage(program: Command): void {
  withConnectionOptions(
    program
      .command("usage")
      .description(
        "metered usage per function, every agent's, kept 90 days: billed cpu = max(request, used), billed memory = max(request, disk/20, used), GPU seconds",
      )
      .option("--app <app>", "only this app")
      .option("--function <fn>", "only this function")
      .option("--since <time>", "only usage after this time (ISO date, or epoch ms)")
      .option("--json", "print JSON"),
  ).action(async (flags: UsageFlags) => {
    const kiln = await openKiln(flags);
    const { usage } = await kiln.http.request<{ usage: UsageTotals[] }>("GET", "/v1/usage", {
      query: { app: flags.app, function: flags.function, since: flags.since },
    });
    if (flags.json) {
      process.stdout.write(`${formatJson(usage)}\n`);
      return;
    }
    for (const line of formatUsage(usage)) process.stdout.write(`${line}\n`);
  });
}

function formatUsage(usage: readonly UsageTotals[]): string[] {
  if (usage.length === 0) return ["no usage recorded yet"];
  const rows = [
    ["FUNCTION", "CONTAINER-S", "CPU-S", "BILLED-CPU-S", "MEM-GIB-S", "BILLED-MEM-GIB-S", "GPU-S"],
  ];
  for (const u of usage) {
    rows.push([
      `${u.app}.${u.fn}`,
      u.containerSeconds.toFixed(1),
      u.cpuSeconds.toFixed(2),
      u.billedCpuSeconds.toFixed(2),
      (u.memoryMiBSeconds / 1024).toFixed(2),
      (u.billedMemoryMiBSeconds / 1024).toFixed(2),
      u.gpuSeconds.toFixed(1),
    ]);
  }
  return table(rows, { right: [1, 2, 3, 4, 5, 6] });
}
