/**
 * Evaluating a Pulumi program without the Pulumi CLI, for `kiln preview/deploy/run <program-dir>`:
 * the program runs in this process under Pulumi's mock runtime (`pulumi.runtime.setMocks`), with
 * the stack's config from `Pulumi.<stack>.yaml`; the inputs of every `AppDeployment` it declares
 * are collected, for the commands to drive the same provider code `pulumi up` runs.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { InvalidError } from "../../runtime/errors.js";
import { APP_DEPLOYMENT_TYPE, type AppDeploymentInputs } from "../../provider/state.js";
import { clearDeclaredApps, declaredApps } from "../../components/registry.js";
import { setProgramContext } from "../../components/program-context.js";

/** How long a program may take to declare and resolve its apps. */
const EVALUATION_TIMEOUT_MS = 120_000;
const MAIN_CANDIDATES = ["index.ts", "index.mts", "index.js", "index.mjs"];

export interface ProgramProject {
  /** The directory given (holding Pulumi.yaml, if any). */
  dir: string;
  /** The project's name: Pulumi.yaml's `name`, else the directory's name. */
  name: string;
  /** The program's main module (absolute). */
  main: string;
  /** The directory of `main`: where handler paths are relative to. */
  programDir: string;
  stack: string;
  /** `Pulumi.<stack>.yaml`, when it exists. */
  stackFile: string | null;
}

export interface StackConfig {
  /** `project:key` → value, as `pulumi.runtime.setAllConfig` takes them. */
  values: Record<string, string>;
  /** Encrypted (`secure:`) keys kiln cannot read without the Pulumi CLI; left out. */
  skipped: string[];
}

export interface EvaluatedProgram {
  project: ProgramProject;
  /** The resolved inputs of every AppDeployment, in declaration order. */
  deployments: AppDeploymentInputs[];
  /** Every resource the program registered: type and name. */
  resources: { type: string; name: string }[];
  /** Things worth saying (config kiln could not read). */
  notes: string[];
}

export interface EvaluateOptions {
  stack?: string;
  /** The command, for messages: "kiln preview". */
  evaluator: string;
  /** Pulumi's dry-run flag while the program runs. */
  preview: boolean;
}

/** Find the program in `dir`: Pulumi.yaml's `main`, else index.ts / index.js / package.json `main`. */
function findProject(dir: string, stack = "dev"): ProgramProject {
  const given = resolve(dir);
  if (!existsSync(given)) throw new InvalidError(`program ${dir}: no such directory`);
  const isFile = statSync(given).isFile();
  const projectDir = isFile ? dirname(given) : given;
  const yaml = readProjectFile(projectDir);
  let main: string | null = isFile ? given : null;
  if (main === null && typeof yaml?.["main"] === "string")
    main = mainModule(resolve(projectDir, yaml["main"]));
  main ??= mainModule(projectDir);
  if (main === null) {
    throw new InvalidError(
      `program ${dir}: no Pulumi program found: expected Pulumi.yaml with 'main', or one of ${MAIN_CANDIDATES.join(", ")} (or package.json 'main') in ${projectDir}`,
    );
  }
  const name = typeof yaml?.["name"] === "string" ? yaml["name"] : basename(projectDir);
  const stackFile =
    [`Pulumi.${stack}.yaml`, `Pulumi.${stack}.yml`]
      .map((f) => join(projectDir, f))
      .find((f) => existsSync(f)) ?? null;
  return { dir: projectDir, name, main, programDir: dirname(main), stack, stackFile };
}

function mainModule(path: string): string | null {
  if (!existsSync(path)) return null;
  if (statSync(path).isFile()) return path;
  for (const candidate of MAIN_CANDIDATES)
    if (existsSync(join(path, candidate))) return join(path, candidate);
  const pkg = join(path, "package.json");
  if (existsSync(pkg)) {
    const main = (JSON.parse(readFileSync(pkg, "utf8")) as { main?: unknown }).main;
    if (typeof main === "string" && existsSync(resolve(path, main))) return resolve(path, main);
  }
  return null;
}

let yamlLoad: ((text: string) => unknown) | undefined;
async function loadYaml(): Promise<(text: string) => unknown> {
  yamlLoad ??= (await import("js-yaml")).load;
  return yamlLoad;
}

function readProjectFile(dir: string): Record<string, unknown> | null {
  for (const file of ["Pulumi.yaml", "Pulumi.yml"]) {
    const path = join(dir, file);
    if (!existsSync(path)) continue;
    // A small reader for the top-level scalars kiln needs (name, main); config defaults come from readConfigDefaults.
    const out: Record<string, unknown> = {};
    for (const line of readFileSync(path, "utf8").split("\n")) {
      const match = /^([A-Za-z_][A-Za-z0-9_]*):\s*["']?([^"'#]*?)["']?\s*(#.*)?$/.exec(line);
      if (match?.[1] && match[2]) out[match[1]] = match[2];
    }
    return out;
  }
  return null;
}

/** The stack's config: `Pulumi.<stack>.yaml` over Pulumi.yaml's defaults; keys without a namespace get the project's. */
async function readStackConfig(project: ProgramProject): Promise<StackConfig> {
  const load = await loadYaml();
  const values: Record<string, string> = {};
  const skipped: string[] = [];
  const key = (k: string) => (k.includes(":") ? k : `${project.name}:${k}`);
  const put = (k: string, v: unknown) => {
    if (v === undefined || v === null) return;
    if (typeof v === "object" && !Array.isArray(v) && "secure" in (v as object)) {
      skipped.push(key(k));
      return;
    }
    values[key(k)] = typeof v === "string" ? v : JSON.stringify(v);
  };
  for (const file of ["Pulumi.yaml", "Pulumi.yml"]) {
    const path = join(project.dir, file);
    if (!existsSync(path)) continue;
    const doc = load(readFileSync(path, "utf8")) as { config?: Record<string, unknown> } | null;
    for (const [k, v] of Object.entries(doc?.config ?? {})) {
      if (
        typeof v === "object" &&
        v !== null &&
        !Array.isArray(v) &&
        ("default" in v || "type" in v)
      )
        put(k, (v as { default?: unknown }).default);
      else put(k, (v as { value?: unknown })?.value ?? v);
    }
    break;
  }
  if (project.stackFile) {
    const doc = load(readFileSync(project.stackFile, "utf8")) as {
      config?: Record<string, unknown>;
    } | null;
    for (const [k, v] of Object.entries(doc?.config ?? {})) put(k, v);
  }
  return { values, skipped };
}

type PulumiModule = typeof import("@pulumi/pulumi");

/** Where `name` resolves from the program's folder (its own node_modules), or null. */
function resolveFromProgram(programDir: string, name: string): string | null {
  try {
    return pathToFileURL(createRequire(join(programDir, "noop.js")).resolve(name)).href;
  } catch {
    return null;
  }
}

/** `@pulumi/pulumi` as the program sees it (its own node_modules), else kiln's. */
async function pulumiFor(programDir: string): Promise<PulumiModule> {
  const url = resolveFromProgram(programDir, "@pulumi/pulumi");
  if (url !== null) {
    try {
      return (await import(url)) as PulumiModule;
    } catch {
      // fall back to kiln's own
    }
  }
  return import("@pulumi/pulumi");
}

/**
 * Load the program's `kiln` (its components, with zod) before the TypeScript loader is registered:
 * every module imported after that crosses to the loader's thread and back, which cost about
 * 0.3 s for kiln's few hundred modules. A program without its own kiln loads it itself later.
 */
async function preloadKiln(programDir: string): Promise<void> {
  const url = resolveFromProgram(programDir, "kiln");
  if (url !== null) await import(url);
}

/** Run the program under mocks and collect its AppDeployments' inputs. One evaluation at a time per process. */
export async function evaluateProgram(
  dir: string,
  options: EvaluateOptions,
): Promise<EvaluatedProgram> {
  const project = findProject(dir, options.stack);
  const config = await readStackConfig(project);
  const notes = config.skipped.map(
    (k) =>
      `config ${k} is encrypted: kiln cannot read it without the Pulumi CLI (set what it stands for in the environment, e.g. KILN_TOKEN)`,
  );
  // Pulumi, kiln's components and the TypeScript loader (a loader thread) load only when a program
  // is evaluated, in this order: what loads before the loader is registered does not go through it.
  const pulumi = await pulumiFor(project.programDir);
  await preloadKiln(project.programDir);
  (await import("./program-register.js")).registerTypeScript();
  const resources: EvaluatedProgram["resources"] = [];
  const deployments: { name: string; inputs: AppDeploymentInputs }[] = [];
  pulumi.runtime.setAllConfig(config.values);
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        resources.push({ type: args.type, name: args.name });
        if (args.type === APP_DEPLOYMENT_TYPE) {
          const marked: string[] = [];
          const { __provider: _provider, ...inputs } = unwrapSecrets(
            args.inputs,
            "",
            marked,
          ) as AppDeploymentInputs & { __provider?: unknown };
          inputs.secretPaths = secretSpecPaths(inputs.secretPaths, marked);
          deployments.push({ name: args.name, inputs });
          return { id: inputs.appName, state: { ...inputs, version: 0, digest: "" } };
        }
        // A pool's generated token lives in the Pulumi state, which kiln preview does not read.
        if (args.type === RANDOM_PASSWORD_TYPE)
          return { id: `${args.name}-id`, state: { ...args.inputs, result: "" } };
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call(args) {
        return args.inputs;
      },
    },
    project.name,
    project.stack,
    options.preview,
  );

  clearDeclaredApps();
  setProgramContext({ root: project.programDir, evaluator: options.evaluator });
  let failure: unknown;
  let fail: (reason: unknown) => void = () => undefined;
  // A component error inside an Output leaves its resource unregistered: every wait races with it.
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => undefined);
  const onRejection = (reason: unknown) => {
    failure ??= reason;
    fail(reason);
  };
  process.on("unhandledRejection", onRejection);
  try {
    try {
      await import(`${pathToFileURL(project.main).href}?kiln=${Date.now()}`);
    } catch (error) {
      throw programError(project, error);
    }
    const apps = declaredApps();
    const deadline = Date.now() + EVALUATION_TIMEOUT_MS;
    for (const app of apps) {
      const urn = app.deployment.urn as unknown as { promise(): Promise<string> };
      await bounded(
        Promise.race([urn.promise(), failed]),
        deadline,
        `the program's App ${JSON.stringify(app.root)} did not resolve`,
      ).catch((error: unknown) => {
        throw programError(project, failure ?? error);
      });
    }
    // Let registrations that failed beside the deployments report.
    await new Promise((r) => setImmediate(r));
    if (failure !== undefined) throw programError(project, failure);
  } finally {
    process.off("unhandledRejection", onRejection);
    setProgramContext(undefined);
  }
  if (deployments.length === 0) {
    throw new InvalidError(
      `program ${project.main} declares no App: nothing to deploy (declare a GpuPool, an App and its functions)`,
    );
  }
  return { project, deployments: deployments.map((d) => d.inputs), resources, notes };
}

const RANDOM_PASSWORD_TYPE = "random:index/randomPassword:RandomPassword";

/** Pulumi's wire marker of a secret value; the mock monitor hands secrets over still wrapped in it. */
const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

/**
 * The value with every secret marker replaced by the value it wraps; the path of each marker
 * (`spec.schedules.nightly`, `secrets`) is added to `marked`, so that what was secret stays known.
 */
function unwrapSecrets(value: unknown, path = "", marked: string[] = []): unknown {
  const at = (key: string | number) => (path === "" ? String(key) : `${path}.${key}`);
  if (Array.isArray(value)) return value.map((v, i) => unwrapSecrets(v, at(i), marked));
  if (typeof value !== "object" || value === null) return value;
  const record = value as Record<string, unknown>;
  if (record[SECRET_SIG_KEY] === SECRET_SIG) {
    marked.push(path);
    return unwrapSecrets(record["value"], path, marked);
  }
  return Object.fromEntries(
    Object.entries(record).map(([k, v]) => [k, unwrapSecrets(v, at(k), marked)]),
  );
}

/**
 * The spec paths to show as [secret]: the components' own list (precise: field by field), with
 * every marker found inside `spec` added; a `spec` marked secret as a whole (a program whose kiln
 * does not list its secret paths) makes all of it secret ("").
 */
function secretSpecPaths(declared: unknown, marked: readonly string[]): string[] {
  const paths = new Set(
    Array.isArray(declared) ? declared.filter((p): p is string => typeof p === "string") : [],
  );
  for (const path of marked) {
    if (path.startsWith("spec.")) paths.add(path.slice("spec.".length));
    else if (path === "spec" && !Array.isArray(declared)) paths.add("");
  }
  return [...paths].sort();
}

async function bounded<T>(promise: Promise<T>, deadline: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new InvalidError(`${what} within ${EVALUATION_TIMEOUT_MS / 1000} s`)),
      Math.max(0, deadline - Date.now()),
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Component errors (InvalidError, with the field path) pass as they are; anything else names the program. */
function programError(project: ProgramProject, error: unknown): Error {
  const code = (error as { code?: unknown })?.code;
  if (
    error instanceof Error &&
    typeof code === "string" &&
    /^[A-Z_]+$/.test(code) &&
    "details" in error
  )
    return error;
  const message = error instanceof Error ? error.message : String(error);
  return new InvalidError(`program ${project.main} failed: ${message}`, { cause: error });
}
