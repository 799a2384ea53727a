/** AppDeployment inputs built by hand (what an App would register), for the provider tests. */
import { bundleFile } from "../../runtime/deploy/bundle.js";
import { compileAppSpec, type AppSpecInput } from "../../runtime/spec/index.js";
import { appSpecHash, usedBundles } from "../../provider/hash.js";
import { agentSpec, type AppDeploymentInputs } from "../../provider/state.js";

export const HANDLERS_V1 = `export function square(x: number): number { return x * x; }\nexport function add(a: number, b: number): number { return a + b; }\n`;
export const HANDLERS_V2 = `export function square(x: number): number { return x * x + 0; }\nexport function add(a: number, b: number): number { return b + a; }\n`;

/** Inputs for `spec` with its bundles built from `root`, as an App computes them. */
export async function deploymentInputs(
  root: string,
  endpoint: string,
  token: string,
  spec: AppSpecInput,
  extra: Partial<AppDeploymentInputs> = {},
): Promise<AppDeploymentInputs> {
  const secrets = extra.secrets ?? {};
  const compiled = compileAppSpec(agentSpec({ spec, secrets }));
  const files = [...new Set(Object.values(compiled.functions).map((fn) => fn.handler.file))];
  const bundles = Object.fromEntries(
    await Promise.all(
      files.map(async (file) => [file, (await bundleFile(root, file)).sha256] as const),
    ),
  );
  return {
    appName: spec.name,
    spec,
    secrets,
    bundles,
    root,
    endpoint,
    token,
    target: "endpoint",
    maxima: {},
    specHash: appSpecHash(compiled, usedBundles(compiled, bundles)),
    ...extra,
  };
}

export function helloSpec(name = "prov-test", square: Record<string, unknown> = {}): AppSpecInput {
  return {
    name,
    functions: {
      square: { handler: "./functions.ts#square", maxContainers: 1, ...square },
      add: { handler: "./functions.ts#add" },
    },
    dicts: { cache: {} },
  } as AppSpecInput;
}
