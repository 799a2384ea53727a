/**
 * `kiln deploy --spec app.json`: validate, bundle the handlers beside the spec, upload, apply.
 * `kiln deploy <program-dir>`: evaluate the Pulumi program (no Pulumi CLI needed), show the diff
 * against the agent, then apply each app through the AppDeployment provider's code.
 */
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type { Command } from "commander";
import { deployApp, type DeployResult } from "../../runtime/deploy/deploy.js";
import { InvalidError, UnavailableError } from "../../runtime/errors.js";
import { compileAppSpec } from "../../runtime/spec/index.js";
import { formatAppDiff } from "../../provider/diff.js";
import { create, update } from "../../provider/ops.js";
import { openKiln, withConnectionOptions, type ConnectionFlags } from "../connection.js";
import { formatJson, oneLine } from "../output.js";
import { previewProgram } from "./preview.js";

interface DeployFlags extends ConnectionFlags {
  spec?: string;
  stack: string;
  json?: boolean;
}

export function registerDeploy(program: Command): void {
  withConnectionOptions(
    program
      .command("deploy")
      .description(
        "deploy (or update) apps: from a Pulumi program's folder (its AppDeployments, as 'pulumi up' would), " +
          "or from a JSON spec with --spec (handler paths relative to the spec's folder)",
      )
      .argument("[program-dir]", "a Pulumi program: a folder with Pulumi.yaml or index.ts")
      .option("--spec <file>", "the app spec, e.g. app.json (instead of a program)")
      .option(
        "--stack <name>",
        "with a program: the stack whose config (Pulumi.<stack>.yaml) it reads",
        "dev",
      )
      .option("--json", "print the result as JSON (progress goes to stderr)"),
  ).action(async (dir: string | undefined, flags: DeployFlags) => {
    if (dir !== undefined && flags.spec !== undefined)
      throw new InvalidError("give a program folder or --spec <file>, not both");
    if (dir !== undefined) {
      if (flags.url !== undefined || flags.token !== undefined || flags.stateDir !== undefined) {
        throw new InvalidError(
          "--url, --token and --state-dir go with --spec: a program's GpuPool says where its agent is (a local pool also reads KILN_URL / KILN_TOKEN)",
        );
      }
      return runProgramDeploy(dir, flags);
    }
    if (flags.spec === undefined)
      throw new InvalidError(
        "what to deploy: a program folder (kiln deploy examples/hello) or --spec <file>",
      );
    return runDeploy({ ...flags, spec: flags.spec });
  });
}

async function runDeploy(flags: DeployFlags & { spec: string }): Promise<void> {
  const path = resolve(flags.spec);
  const spec = await readSpec(path, flags.spec);
  // Spec errors need no agent: report them before connecting.
  try {
    compileAppSpec(spec);
  } catch (error) {
    if (error instanceof InvalidError) {
      throw new InvalidError(`invalid spec ${flags.spec}: ${oneLine(error.message)}`, {
        cause: error,
        details: error.details,
      });
    }
    throw error;
  }
  const kiln = await openKiln(flags);
  const progressOut = flags.json ? process.stderr : process.stdout;
  const result = await deployApp(kiln.http, spec, dirname(path), (event) => {
    progressOut.write(`${event.step.padEnd(6)}  ${event.detail}\n`);
  });
  if (flags.json) {
    process.stdout.write(`${formatJson(result)}\n`);
    return;
  }
  process.stdout.write(`${summary(result)}\n`);
}

async function runProgramDeploy(dir: string, flags: DeployFlags): Promise<void> {
  const { apps, notes } = await previewProgram(dir, flags.stack, "kiln deploy");
  const out = flags.json ? process.stderr : process.stdout;
  for (const note of notes) process.stderr.write(`note: ${note}\n`);
  const results = [];
  for (const app of apps) {
    if (!app.reachable) {
      throw new UnavailableError(
        `no agent answers at ${app.endpoint}: start one with 'kiln agent' (or point the GpuPool at one), then deploy again`,
        { details: { agentUnreachable: app.endpoint } },
      );
    }
    out.write(
      `${formatAppDiff(app.diff, { endpoint: app.endpoint, version: app.version }).join("\n")}\n`,
    );
    const progress = (event: { step: string; detail: string }) =>
      out.write(`${event.step.padEnd(6)}  ${event.detail}\n`);
    const { outs } =
      app.version === null
        ? await create(app.inputs, progress)
        : await update(app.app, app.inputs as never, app.inputs, progress);
    const changed = outs.version !== app.version;
    out.write(
      changed
        ? `deployed app '${outs.appName}' version ${outs.version} (spec ${outs.specHash.slice(0, 12)})\n`
        : `app '${outs.appName}' unchanged at version ${outs.version}\n`,
    );
    results.push({
      app: outs.appName,
      endpoint: outs.endpoint,
      version: outs.version,
      changed,
      specHash: outs.specHash,
      diff: app.diff,
    });
  }
  if (flags.json) process.stdout.write(`${formatJson({ apps: results, notes })}\n`);
}

async function readSpec(path: string, shown: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InvalidError(
      `cannot read spec ${shown}: ${code === "ENOENT" ? "no such file" : (error as Error).message}`,
      { cause: error },
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new InvalidError(`spec ${shown} is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

export function summary(result: DeployResult): string {
  const { app } = result;
  const uploaded = result.artifacts.filter((a) => a.uploaded).length;
  const bundles = `${uploaded} of ${result.artifacts.length} bundle(s) uploaded`;
  const head = result.changed
    ? `deployed app '${app.name}' version ${app.version} (${bundles})`
    : `app '${app.name}' unchanged at version ${app.version} (${bundles})`;
  return `${head}\n  functions: ${app.functions.join(", ")}`;
}
