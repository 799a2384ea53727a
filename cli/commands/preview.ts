/**
 * `kiln preview <program-dir>`: evaluate the Pulumi program without the Pulumi CLI and print what
 * deploying it would change on the agent: functions, dicts, queues and schedules added, removed or
 * changed, with each changed field (old -> new). Exit 0 either way; `--json` for machines.
 */
import type { Command } from "commander";
import { diffApps, formatAppDiff, viewOfInputs, type AppDiff } from "../../provider/diff.js";
import { TARGET_KINDS } from "../../components/targets.js";
import { check } from "../../provider/ops.js";
import { APP_DEPLOYMENT_TYPE, type AppDeploymentInputs } from "../../provider/state.js";
import { InvalidError } from "../../runtime/errors.js";
import { formatJson } from "../output.js";
import { evaluateProgram, type EvaluatedProgram } from "./program.js";
import { agentAnswers, diffAgainstAgent } from "./program-diff.js";

interface PreviewFlags {
  stack: string;
  json?: boolean;
}

export function registerPreview(program: Command): void {
  program
    .command("preview")
    .description(
      "show what deploying a Pulumi program's apps would change on their agents (no Pulumi CLI needed)",
    )
    .argument("<program-dir>", "the program: a folder with Pulumi.yaml or index.ts")
    .option("--stack <name>", "stack whose config (Pulumi.<stack>.yaml) the program reads", "dev")
    .option("--json", "print the diff as JSON")
    .action(async (dir: string, flags: PreviewFlags) => runPreview(dir, flags));
}

export interface AppPreview {
  app: string;
  endpoint: string;
  /** The agent's version of the app, or null when it is not deployed (or no agent answers). */
  version: number | null;
  /** Whether an agent answered. */
  reachable: boolean;
  diff: AppDiff;
}

/** Evaluate and diff every app of the program. */
export async function previewProgram(
  dir: string,
  stack: string,
  evaluator = "kiln preview",
): Promise<{
  program: EvaluatedProgram;
  apps: (AppPreview & { inputs: AppDeploymentInputs })[];
  notes: string[];
}> {
  const program = await evaluateProgram(dir, {
    stack,
    evaluator,
    preview: evaluator === "kiln preview",
  });
  const notes = [...program.notes];
  const engine = engineResources(program.resources);
  if (engine.length > 0)
    notes.push(
      `'pulumi up' creates or updates these ${engine.length} resources of the program's pools; kiln preview cannot (it runs without the Pulumi engine): ${engine.join(", ")}`,
    );
  const apps: (AppPreview & { inputs: AppDeploymentInputs })[] = [];
  for (const inputs of program.deployments) {
    await checkInputs(inputs);
    const provisioned = TARGET_KINDS[inputs.target as keyof typeof TARGET_KINDS]?.provisions;
    const unreachable =
      (inputs.target === "local" || provisioned) && !(await agentAnswers(inputs.endpoint));
    if (unreachable || (provisioned && !inputs.token)) {
      notes.push(
        !provisioned
          ? `no agent answers at ${inputs.endpoint}: showing app '${inputs.appName}' as new (start one with 'kiln agent')`
          : unreachable
            ? `no agent of the ${inputs.target} pool answers at ${inputs.endpoint}: showing app '${inputs.appName}' as new (its agents come with 'pulumi up'; give the target a url that reaches them to diff against them)`
            : `the ${inputs.target} pool's token is generated in the Pulumi state, which kiln preview does not read: showing app '${inputs.appName}' as new (give the target its token to diff against the agents)`,
      );
      apps.push({
        app: inputs.appName,
        endpoint: inputs.endpoint,
        version: null,
        reachable: false,
        diff: diffApps(null, viewOfInputs(inputs)),
        inputs,
      });
      continue;
    }
    const { diff, current } = await diffAgainstAgent(inputs);
    apps.push({
      app: inputs.appName,
      endpoint: inputs.endpoint,
      version: current?.version ?? null,
      reachable: true,
      diff,
      inputs,
    });
  }
  return { program, apps, notes };
}

/** What a pool provisions (`DaemonSet gpus-agents`): every resource but kiln's own and providers. */
function engineResources(resources: readonly { type: string; name: string }[]): string[] {
  return resources
    .filter(
      ({ type }) =>
        !type.startsWith("kiln:") &&
        type !== APP_DEPLOYMENT_TYPE &&
        !type.startsWith("pulumi:providers:"),
    )
    .map(({ type, name }) => `${type.slice(type.lastIndexOf(":") + 1)} ${name}`);
}

/** The provider's check, as `pulumi preview` runs it: every failure, then exit 2. */
export async function checkInputs(inputs: AppDeploymentInputs): Promise<void> {
  const { failures } = await check(undefined, inputs);
  if (failures.length > 0) {
    throw new InvalidError(`app '${inputs.appName}': ${failures.map((f) => f.reason).join("\n")}`, {
      details: { failures },
    });
  }
}

async function runPreview(dir: string, flags: PreviewFlags): Promise<void> {
  const { apps, notes } = await previewProgram(dir, flags.stack);
  if (flags.json) {
    process.stdout.write(
      `${formatJson({ apps: apps.map(({ inputs: _inputs, ...app }) => app), notes })}\n`,
    );
    return;
  }
  for (const note of notes) process.stderr.write(`note: ${note}\n`);
  const lines = apps.flatMap((app) =>
    formatAppDiff(app.diff, { endpoint: app.endpoint, version: app.version }),
  );
  process.stdout.write(`${lines.join("\n")}\n`);
}
