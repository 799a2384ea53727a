/** `kiln deploy --spec app.json`: validate, bundle the handlers beside the spec, upload, apply. */
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type { Command } from "commander";
import { deployApp, type DeployResult } from "../../runtime/deploy/deploy.js";
import { InvalidError } from "../../runtime/errors.js";
import { compileAppSpec } from "../../runtime/spec/index.js";
import { openKiln, withConnectionOptions, type ConnectionFlags } from "../connection.js";
import { formatJson, oneLine } from "../output.js";

interface DeployFlags extends ConnectionFlags {
  spec: string;
  json?: boolean;
}

export function registerDeploy(program: Command): void {
  withConnectionOptions(
    program
      .command("deploy")
      .description("deploy (or update) an app from its JSON spec; handler paths are relative to the spec's folder")
      .requiredOption("--spec <file>", "the app spec, e.g. app.json")
      .option("--json", "print the result as JSON (progress goes to stderr)"),
  ).action(async (flags: DeployFlags) => runDeploy(flags));
}

async function runDeploy(flags: DeployFlags): Promise<void> {
  const path = resolve(flags.spec);
  const spec = await readSpec(path, flags.spec);
  // Spec errors need no agent: report them before connecting.
  try {
    compileAppSpec(spec);
  } catch (error) {
    if (error instanceof InvalidError) {
      throw new InvalidError(`invalid spec ${flags.spec}: ${oneLine(error.message)}`, { cause: error, details: error.details });
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

async function readSpec(path: string, shown: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InvalidError(`cannot read spec ${shown}: ${code === "ENOENT" ? "no such file" : (error as Error).message}`, { cause: error });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new InvalidError(`spec ${shown} is not valid JSON: ${(error as Error).message}`, { cause: error });
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
