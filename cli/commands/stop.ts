/**
 * `kiln stop <app>`: stop an app; in-flight inputs get a grace period, queued ones fail, and its
 * dicts and queues are deleted with their data (asked for with --yes, or at a terminal's prompt).
 */
import { createInterface } from "node:readline/promises";
import type { Command } from "commander";
import { InvalidError } from "../../runtime/errors.js";
import type { CompiledAppSpec } from "../../runtime/spec/index.js";
import { integerArg, nameArg, parseArg } from "../args.js";
import { openKiln, withConnectionOptions, type ConnectionFlags } from "../connection.js";

interface StopFlags extends ConnectionFlags {
  grace?: string;
  yes?: boolean;
}

export function registerStop(program: Command): void {
  withConnectionOptions(
    program
      .command("stop")
      .description(
        "stop a deployed app: its containers drain and stop, queued inputs fail, and its dicts and queues are DELETED with their data",
      )
      .argument("<app>", "app name")
      .option(
        "--grace <seconds>",
        "how long in-flight inputs may run on (default: the agent's, 300)",
      )
      .option("-y, --yes", "delete the app's dicts and queues without asking"),
  ).action(async (app: string, flags: StopFlags) => {
    const appName = parseArg(nameArg, app, "<app>");
    const graceSeconds =
      flags.grace === undefined
        ? undefined
        : parseArg(integerArg(0, 86_400), flags.grace, "--grace");
    const kiln = await openKiln(flags);
    const path = `/v1/apps/${encodeURIComponent(appName)}`;
    const { spec } = await kiln.http.request<{ spec: CompiledAppSpec }>("GET", path);
    const data = dataOf(spec);
    if (data !== null && !flags.yes) await confirm(appName, data);
    const before = (await kiln.status()).apps.find((a) => a.name === appName);
    await kiln.http.request("DELETE", path, {
      query: { graceMs: graceSeconds === undefined ? undefined : graceSeconds * 1000 },
    });
    const deleted = data === null ? "" : `; deleted ${data} with their data`;
    if (!before) {
      process.stdout.write(`stopped app '${appName}'${deleted}\n`);
      return;
    }
    const containers = before.functions.reduce((sum, fn) => sum + fn.containers.length, 0);
    const inFlight = before.functions.reduce((sum, fn) => sum + fn.queue.running, 0);
    const queued = before.functions.reduce(
      (sum, fn) => sum + fn.queue.pending + fn.queue.spawnPending,
      0,
    );
    process.stdout.write(
      `stopped app '${appName}' version ${before.version}: ${before.functions.length} function(s)` +
        `${before.functions.length > 0 ? ` (${before.functions.map((f) => f.name).join(", ")})` : ""}, ` +
        `${containers} container(s), ${inFlight} input(s) were running, ${queued} queued${deleted}\n`,
    );
  });
}

/** "dict(s) a, b and queue(s) c", or null when the app holds no data. */
function dataOf(spec: CompiledAppSpec): string | null {
  const dicts = Object.keys(spec.dicts ?? {}).sort();
  const queues = Object.keys(spec.queues ?? {}).sort();
  const parts = [
    dicts.length > 0 ? `dict(s) ${dicts.join(", ")}` : null,
    queues.length > 0 ? `queue(s) ${queues.join(", ")}` : null,
  ].filter((part): part is string => part !== null);
  return parts.length === 0 ? null : parts.join(" and ");
}

/** At a terminal, ask; elsewhere (scripts, CI) refuse without --yes, saying so. */
async function confirm(app: string, data: string): Promise<void> {
  const what = `stopping '${app}' deletes its ${data} with their data`;
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw new InvalidError(`${what}; pass --yes to confirm`);
  }
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await prompt.question(`${what}. Type the app name to confirm: `);
    if (answer.trim() !== app) throw new InvalidError(`not confirmed: '${app}' was not stopped`);
  } finally {
    prompt.close();
  }
}
