/** `kiln stop <app>`: stop an app; in-flight inputs get a grace period, queued ones fail. */
import type { Command } from "commander";
import { integerArg, nameArg, parseArg } from "../args.js";
import { openKiln, withConnectionOptions, type ConnectionFlags } from "../connection.js";

interface StopFlags extends ConnectionFlags {
  grace?: string;
}

export function registerStop(program: Command): void {
  withConnectionOptions(
    program
      .command("stop")
      .description("stop a deployed app: its containers drain and stop, queued inputs fail")
      .argument("<app>", "app name")
      .option(
        "--grace <seconds>",
        "how long in-flight inputs may run on (default: the agent's, 300)",
      ),
  ).action(async (app: string, flags: StopFlags) => {
    const appName = parseArg(nameArg, app, "<app>");
    const graceSeconds =
      flags.grace === undefined
        ? undefined
        : parseArg(integerArg(0, 86_400), flags.grace, "--grace");
    const kiln = await openKiln(flags);
    const before = (await kiln.status()).apps.find((a) => a.name === appName);
    await kiln.http.request("DELETE", `/v1/apps/${encodeURIComponent(appName)}`, {
      query: { graceMs: graceSeconds === undefined ? undefined : graceSeconds * 1000 },
    });
    if (!before) {
      process.stdout.write(`stopped app '${appName}'\n`);
      return;
    }
    const containers = before.functions.reduce((sum, fn) => sum + fn.containers.length, 0);
    const inFlight = before.functions.reduce((sum, fn) => sum + fn.queue.running, 0);
    const queued = before.functions.reduce(
      (sum, fn) => sum + fn.queue.pending + fn.queue.spawnPending,
      0,
    );
    process.stdout.write(
      `stopped app '${appName}' version ${before.version}: ${before.functions.length} function(s) (${before.functions.map((f) => f.name).join(", ")}), ` +
        `${containers} container(s), ${inFlight} input(s) were running, ${queued} queued\n`,
    );
  });
}
