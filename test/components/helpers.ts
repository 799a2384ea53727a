/**
 * Programs for the component, provider and example tests: temporary program folders that resolve
 * `kiln`, `@pulumi/pulumi` and `zod` like an infra repo with kiln installed, and a runner that
 * evaluates one under Pulumi's mock runtime in a fresh Node process (plain Node, kiln from dist/).
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const CLI = join(repoRoot, "dist", "cli", "main.js");
const RUNNER = join(repoRoot, "test", "components", "fixtures", "mock-runner.mjs");
/** What the runner prints before each program's result (test/components/fixtures/mock-runner.mjs). */
const RESULT_MARKER = "kiln-mock-run: ";

/** Write `files` into a new temp folder whose node_modules link kiln (this repo), @pulumi and zod. */
export async function makeProgram(
  files: Record<string, string>,
  options: { parent?: string } = {},
): Promise<string> {
  const dir = await mkdtemp(join(options.parent ?? tmpdir(), "kiln-program-"));
  await writeFiles(dir, files);
  await mkdir(join(dir, "node_modules"), { recursive: true });
  await symlink(repoRoot, join(dir, "node_modules", "kiln"), "dir");
  await symlink(
    join(repoRoot, "node_modules", "@pulumi"),
    join(dir, "node_modules", "@pulumi"),
    "dir",
  );
  await symlink(join(repoRoot, "node_modules", "zod"), join(dir, "node_modules", "zod"), "dir");
  return dir;
}

export async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
}

export async function removeDir(dir: string | undefined): Promise<void> {
  if (dir) await rm(dir, { recursive: true, force: true });
}

export interface Deployment {
  name: string;
  /** Top-level AppDeployment inputs that arrived as secrets. */
  secretInputs: string[];
  /** The `spec` input as registered (secret markers included). */
  specText: string;
  providerBytes: number;
  inputs: {
    appName: string;
    spec: {
      name: string;
      functions: Record<string, Record<string, unknown>>;
      dicts: Record<string, unknown>;
      queues: Record<string, unknown>;
      schedules: Record<string, Record<string, unknown>>;
    };
    secrets: Record<string, Record<string, string>>;
    bundles: Record<string, string>;
    root: string;
    endpoint: string;
    token: string;
    target: string;
    maxima: Record<string, number>;
    specHash: string;
  };
}

/** A Kubernetes object as registered: its inputs (secrets unwrapped) and which of them were secrets. */
export interface MockedObject {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  secretPaths: string[];
  /** The provider reference it was registered with (urn::id), null for the default one. */
  provider: string | null;
}

export interface MockedRun {
  resources: { type: string; name: string }[];
  objects: MockedObject[];
  deployments: Deployment[];
  exports: Record<string, { value?: unknown; secret?: boolean; urn?: string; type?: string }>;
  error: {
    name?: string;
    code?: string;
    message: string;
    issues?: { path: string; message: string }[];
  } | null;
}

type MockedOptions = {
  config?: Record<string, string>;
  preview?: boolean;
  cwd?: string;
  env?: Record<string, string | undefined>;
};

/** Evaluate `program` (a file) under mocks in a fresh process, with `cwd` its folder unless given. */
export async function runMocked(program: string, options: MockedOptions = {}): Promise<MockedRun> {
  const [run] = await runMockedMany([program], options);
  return run!;
}

/**
 * Evaluate `programs` one after another in one fresh process (each with fresh mocks, in its own
 * folder): a table of small programs loads Pulumi (about 1 s of CPU) once instead of per program.
 */
export async function runMockedMany(
  programs: readonly string[],
  options: MockedOptions = {},
): Promise<MockedRun[]> {
  const result = await execa(process.execPath, [RUNNER, ...programs], {
    cwd: options.cwd ?? dirname(programs[0]!),
    reject: false,
    timeout: 60_000,
    env: {
      KILN_TEST_CONFIG: JSON.stringify(options.config ?? {}),
      KILN_TEST_PREVIEW: options.preview ? "1" : "0",
      KILN_URL: undefined,
      KILN_TOKEN: undefined,
      KILN_STATE_DIR: join(tmpdir(), "kiln-no-state"),
      ...options.env,
    },
  });
  return parseMockedRuns(result, programs.length);
}

/** The runner's results (lines after its marker); throws with its output when they are not all there. */
export function parseMockedRuns(
  result: { stdout: string; stderr: string; exitCode?: number | undefined },
  programs: number,
): MockedRun[] {
  const lines = result.stdout.split("\n").filter((line) => line.startsWith(RESULT_MARKER));
  try {
    const runs = lines.map((line) => JSON.parse(line.slice(RESULT_MARKER.length)) as MockedRun);
    if (runs.length !== programs)
      throw new Error(`${runs.length} results for ${programs} programs`);
    return runs;
  } catch (error) {
    throw new Error(
      `mock runner failed (exit ${result.exitCode}, ${(error as Error).message}):\n${result.stdout}\n${result.stderr}`,
    );
  }
}

/** A program's source: the imports, a local pool and app named `app`, then `body`. */
export function program(
  body: string,
  options: { app?: string; pool?: string; imports?: string } = {},
): string {
  return [
    `import * as pulumi from "@pulumi/pulumi";`,
    `import { App, DistributedDict, DistributedQueue, GpuPool, Schedule, ServerlessFunction } from "kiln";`,
    options.imports ?? "",
    `export const pool = new GpuPool("pool", ${options.pool ?? `{ target: { kind: "endpoint", url: "http://127.0.0.1:9", token: pulumi.secret("test-token") } }`});`,
    `export const app = new App(${JSON.stringify(options.app ?? "demo")}, { pool });`,
    body,
  ].join("\n");
}

export const HANDLERS = `
export function square(x: number): number { return x * x; }
export function add(a: number, b: number): number { return a + b; }
export class Model { enter() {} embed(texts: string[]): number[][] { return texts.map((t) => [t.length]); } }
export async function* countdown(from: number) { for (let i = from; i > 0; i--) yield i; }
`;
