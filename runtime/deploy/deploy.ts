/**
 * Deploy an app to an agent: compile the spec here (errors before anything is uploaded), bundle
 * each handler file, upload the artifacts the agent does not have yet, then apply the spec.
 * Used by `kiln deploy`, the demo, and (later) the Pulumi provider.
 */
import type { AppSummary } from "../protocol.js";
import { compileAppSpec } from "../spec/index.js";
import type { AgentHttp } from "../client/http.js";
import { bundleHandlers, type Artifact } from "./bundle.js";

export interface DeployResult {
  app: AppSummary;
  /** False when the agent already ran exactly this spec and code. */
  changed: boolean;
  artifacts: { file: string; sha256: string; bytes: number; uploaded: boolean }[];
}

export interface DeployProgress {
  (event: { step: "bundle" | "upload" | "apply"; detail: string }): void;
}

export interface DeployOptions {
  /** `kiln run`'s apps: their schedules do not fire, and their logs go with them. */
  ephemeral?: boolean;
}

export async function deployApp(
  http: AgentHttp,
  spec: unknown,
  baseDir: string,
  progress: DeployProgress = () => undefined,
  options: DeployOptions = {},
): Promise<DeployResult> {
  const compiled = compileAppSpec(spec);
  const files = Object.values(compiled.functions).map((fn) => fn.handler.file);
  progress({ step: "bundle", detail: `${new Set(files).size} handler file(s)` });
  const artifacts = await bundleHandlers(baseDir, files);
  const uploaded: DeployResult["artifacts"] = [];
  for (const artifact of artifacts.values()) {
    uploaded.push({
      file: artifact.file,
      sha256: artifact.sha256,
      bytes: Buffer.byteLength(artifact.code),
      uploaded: await upload(http, artifact),
    });
    progress({ step: "upload", detail: `${artifact.file} (${artifact.sha256.slice(0, 12)})` });
  }
  const bundles = Object.fromEntries([...artifacts.values()].map((a) => [a.file, a.sha256]));
  progress({ step: "apply", detail: compiled.name });
  const result = await http.request<{ app: AppSummary; changed: boolean }>(
    "PUT",
    `/v1/apps/${encodeURIComponent(compiled.name)}`,
    {
      body: { spec, bundles, ...(options.ephemeral ? { ephemeral: true } : {}) },
    },
  );
  return { ...result, artifacts: uploaded };
}

async function upload(http: AgentHttp, artifact: Artifact): Promise<boolean> {
  const { exists } = await http.request<{ exists: boolean }>(
    "GET",
    `/v1/artifacts/${artifact.sha256}`,
  );
  if (exists) return false;
  await http.request("PUT", `/v1/artifacts/${artifact.sha256}`, {
    body: { code: artifact.code, exports: artifact.exports },
  });
  return true;
}
