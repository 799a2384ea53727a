/**
 * `kiln preview <program-dir>`: evaluate the Pulumi program without the Pulumi CLI and print what
 * deploying it would change on the agent: functions, dicts, queues and schedules added, removed or
 * changed, with each changed field (old -> new); `--json` for machines. Exit 0, or 7 with
 * `--expect-no-changes` when anything would change; 4 when a local or endpoint pool's agent does
 * not answer or refuses the token; 2 for a program or argument error.
 */
import type { Command } from "commander";
import { diffApps, formatAppDiff, viewOfInputs, type AppDiff } from "../../provider/diff.js";
import { TARGET_KINDS } from "../../components/targets.js";
import { check } from "../../provider/ops.js";
import { APP_DEPLOYMENT_TYPE, type AppDeploymentInputs } from "../../provider/state.js";
import { InvalidError, UnavailableError } from "../../runtime/errors.js";
import { EXIT_CHANGES, ExitError, formatJson } from "../output.js";
import { evaluateProgram, type EvaluatedProgram } from "./program.js";
import { agentAnswers, diffAgainstAgent } from "./program-diff.js";

interface PreviewFlags {
  stack: string;
  json?: boolean;
  expectNoChanges?: boolean;
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
    .option(
      "--expect-no-changes",
      "exit 7 when anything would change (after printing the diff), 0 when nothing would",
    )
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
      (inputs.target === "local" || provisioned || inputs.target === "endpoint") &&
      !(await agentAnswers(inputs.endpoint));
    // A local or endpoint pool's agent is there to be asked: not answering is an error, never "new".
    if (unreachable && !provisioned) {
      throw new UnavailableError(
        inputs.target === "local"
          ? `no agent answers at ${inputs.endpoint} (app '${inputs.appName}'): start one with 'kiln agent' (or point the GpuPool at one, KILN_URL), then ${evaluator.replace(/^kiln /, "")} again`
          : `no agent answers at ${inputs.endpoint} (app '${inputs.appName}', the pool's endpoint target): is it running, and does the url reach it?`,
        { details: { agentUnreachable: inputs.endpoint } },
      );
    }
    if (unreachable || (provisioned && !inputs.token)) {
      notes.push(
        unreachable
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
  } else {
    for (const note of notes) process.stderr.write(`note: ${note}\n`);
    const lines = apps.flatMap((app) =>
      formatAppDiff(app.diff, { endpoint: app.endpoint, version: app.version }),
    );
    process.stdout.write(`${lines.join("\n")}\n`);
  }
  const changed = apps.filter((app) => app.diff.changed).map((app) => app.app);
  if (flags.expectNoChanges && changed.length > 0) {
    throw new ExitError(
      `--expect-no-changes: ${changed.length === 1 ? "app" : "apps"} ${changed.map((a) => `'${a}'`).join(", ")} would change`,
      EXIT_CHANGES,
    );
  }
}
