/**
 * The AppDeployment provider's work, imported by its methods at call time (`kiln/provider/ops`)
 * so that the serialized provider captures nothing: check validates with `compileAppSpec`, diff
 * compares old outputs with new inputs, create/update bundle the handlers, upload the artifacts
 * the agent lacks and apply the spec, delete stops the app (in-flight inputs finish).
 */
import { AgentHttp } from "../runtime/client/http.js";
import { deployApp, type DeployOptions, type DeployProgress } from "../runtime/deploy/deploy.js";
import { UnauthenticatedError } from "../runtime/errors.js";
import { diffApps, viewOfInputs, type AppDiff } from "./diff.js";
import { appSpecHash, usedBundles } from "./hash.js";
import {
  agentSpec,
  baseUrl,
  inputProblems,
  validateInputs,
  type AppDeploymentInputs,
  type AppDeploymentOutputs,
} from "./state.js";

export interface CheckFailure {
  property: string;
  reason: string;
}

/** Validate the new inputs; every problem becomes a failure naming the input and the field path. */
export async function check(
  _olds: unknown,
  news: AppDeploymentInputs,
): Promise<{ inputs: AppDeploymentInputs; failures: CheckFailure[] }> {
  const failures = inputProblems(news).map(({ property, issue }) => ({
    property,
    reason: `${issue.path}: ${issue.message}`,
  }));
  return { inputs: news, failures };
}

/** The app-level diff of old outputs against new inputs (null when the old outputs cannot be read). */
function describeDiff(
  olds: AppDeploymentOutputs | AppDeploymentInputs,
  news: AppDeploymentInputs,
): AppDiff | null {
  let oldView;
  try {
    oldView = viewOfInputs(olds);
  } catch {
    return null;
  }
  return diffApps(oldView, viewOfInputs(news), { secretPaths: news.secretPaths });
}

/**
 * Old outputs against new inputs. A new app name or agent replaces the deployment; everything
 * else (scaling, code, resources, env, secrets) updates it in place, which the agent applies
 * without dropping in-flight inputs.
 */
export async function diff(
  _id: string,
  olds: AppDeploymentOutputs,
  news: AppDeploymentInputs,
): Promise<{
  changes: boolean;
  replaces: string[];
  stables: string[];
  deleteBeforeReplace: boolean;
}> {
  const described = describeDiff(olds, news);
  if (described === null)
    return { changes: true, replaces: [], stables: [], deleteBeforeReplace: false };
  const replaces = described.replaces.map((change) => change.field);
  const changes = described.changed || olds.token !== news.token || olds.target !== news.target;
  return { changes, replaces, stables: [], deleteBeforeReplace: false };
}

/** Bundle, upload and apply; the outputs are the inputs with the bundles as deployed and the agent's version. */
export async function create(
  inputs: AppDeploymentInputs,
  progress?: DeployProgress,
  options: DeployOptions = {},
): Promise<{ id: string; outs: AppDeploymentOutputs }> {
  return { id: inputs.appName, outs: await apply(inputs, progress, options) };
}

export async function update(
  _id: string,
  _olds: AppDeploymentOutputs,
  news: AppDeploymentInputs,
  progress?: DeployProgress,
): Promise<{ outs: AppDeploymentOutputs }> {
  return { outs: await apply(news, progress) };
}

/** Stop the app on its agent: in-flight inputs get `graceMs` (the agent's default, 300 s, when absent); queued ones fail. Gone already is fine. */
export async function remove(
  id: string,
  props: Pick<AppDeploymentOutputs, "appName" | "endpoint" | "token">,
  options: { graceMs?: number } = {},
): Promise<void> {
  const http = agentHttp(props);
  const name = props.appName || id;
  try {
    await http.request("DELETE", `/v1/apps/${encodeURIComponent(name)}`, {
      query: { graceMs: options.graceMs },
    });
  } catch (error) {
    if ((error as { code?: string }).code === "NOT_FOUND") return;
    throw error;
  }
}

/** The app as the agent has it now (`pulumi refresh`); no id when it is gone. */
export async function read(
  id: string,
  props: AppDeploymentOutputs,
): Promise<{ id?: string; props?: AppDeploymentOutputs }> {
  const http = agentHttp(props);
  try {
    const app = await http.request<{ version: number; digest: string }>(
      "GET",
      `/v1/apps/${encodeURIComponent(props.appName || id)}`,
    );
    return { id, props: { ...props, version: app.version, digest: app.digest } };
  } catch (error) {
    if ((error as { code?: string }).code === "NOT_FOUND") return {};
    throw error;
  }
}

async function apply(
  inputs: AppDeploymentInputs,
  progress?: DeployProgress,
  options: DeployOptions = {},
): Promise<AppDeploymentOutputs> {
  const compiled = validateInputs(inputs);
  const result = await deployApp(
    agentHttp(inputs),
    agentSpec(inputs),
    inputs.root,
    progress,
    options,
  );
  const bundles = usedBundles(
    compiled,
    Object.fromEntries(result.artifacts.map((a) => [a.file, a.sha256])),
  );
  return {
    ...inputs,
    bundles,
    specHash: appSpecHash(compiled, bundles),
    version: result.app.version,
    digest: result.app.digest,
  };
}

/** The agent's HTTP API for a deployment's endpoint and token. */
export function agentHttp(props: Pick<AppDeploymentInputs, "endpoint" | "token">): AgentHttp {
  if (!props.token) {
    throw new UnauthenticatedError(
      `no token for the agent at ${props.endpoint}: start one with 'kiln agent' (it writes <state-dir>/token), ` +
        "set KILN_TOKEN, or 'pulumi config set --secret kiln:token <token>'",
    );
  }
  return new AgentHttp(baseUrl(props.endpoint), props.token);
}
