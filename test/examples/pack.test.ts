/**
 * The component library as a dependency: `npm pack` the repo, put the tarball's package into a
 * temporary infra project's node_modules (its dependencies linked from this checkout's, so no
 * network), then run the project's own program under mocks and through its installed `kiln`.
 */
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Agent } from "../../runtime/agent/agent.js";
import { HANDLERS, removeDir, repoRoot, runMockedIn, writeFiles } from "./helpers.js";

let work: string;
let infra: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "kiln-pack-"));
  const packed = await execa(
    "npm",
    ["pack", "--ignore-scripts", "--silent", "--pack-destination", work],
    { cwd: repoRoot, timeout: 120_000 },
  );
  const tarball = join(work, packed.stdout.trim().split("\n").pop() ?? "");
  infra = join(work, "infra");
  await mkdir(join(infra, "node_modules"), { recursive: true });
  await execa("tar", ["-xzf", tarball, "-C", join(infra, "node_modules")]);
  await rename(join(infra, "node_modules", "package"), join(infra, "node_modules", "kiln"));
  for (const entry of await readdir(join(repoRoot, "node_modules"))) {
    if (entry === "kiln" || entry.startsWith(".")) continue;
    await symlink(join(repoRoot, "node_modules", entry), join(infra, "node_modules", entry), "dir");
  }
  await writeFiles(infra, {
    "package.json": JSON.stringify({
      name: "infra",
      private: true,
      type: "module",
      dependencies: { kiln: "file:kiln.tgz" },
    }),
    "Pulumi.yaml":
      "name: infra\nruntime:\n  name: nodejs\n  options:\n    typescript: false\n    nodeargs: --import kiln/register\nmain: index.ts\n",
    "Pulumi.dev.yaml": "config:\n  infra:maxContainers: '3'\n",
    "functions.ts": HANDLERS,
    "index.ts": `
import * as pulumi from "@pulumi/pulumi";
import { App, DistributedDict, GpuPool, ServerlessFunction } from "kiln";
const config = new pulumi.Config();
export const pool = new GpuPool("pool", { target: { kind: "local" } });
export const app = new App("infra-app", { pool });
export const square = new ServerlessFunction("square", { app, handler: "./functions.ts#square", maxContainers: config.getNumber("maxContainers") ?? 1 });
new DistributedDict("cache", { app });
export const specHash = app.specHash;
`,
  });
  await copyFile(
    join(repoRoot, "test", "components", "fixtures", "mock-runner.mjs"),
    join(infra, "mock-runner.mjs"),
  );
});

afterAll(async () => {
  await removeDir(work);
});

describe("kiln installed from its tarball", () => {
  it("ships dist (components, provider, CLI, TypeScript loader) and the README, not the sources or tests", async () => {
    const files = await readdir(join(infra, "node_modules", "kiln"));
    expect(files.sort()).toEqual(expect.arrayContaining(["README.md", "dist", "package.json"]));
    expect(files).not.toContain("test");
    expect(files).not.toContain("components");
    const dist = await readdir(join(infra, "node_modules", "kiln", "dist"));
    expect(dist).toEqual(expect.arrayContaining(["components", "provider", "cli", "runtime"]));
  });

  it("the infra project's program runs under mocks with the installed components", async () => {
    const run = await runMockedIn(infra, join(infra, "mock-runner.mjs"), join(infra, "index.ts"));
    expect(run.error).toBeNull();
    expect(run.resources.map((r) => r.type)).toEqual(
      expect.arrayContaining([
        "kiln:index:GpuPool",
        "kiln:index:App",
        "kiln:index:ServerlessFunction",
        "kiln:index:DistributedDict",
        "pulumi-nodejs:dynamic/kiln:AppDeployment",
      ]),
    );
    expect(run.deployments[0]?.inputs.root).toBe(infra);
    expect(run.deployments[0]?.providerBytes).toBeGreaterThan(0);
    expect(String(run.exports["specHash"]?.value)).toMatch(/^[0-9a-f]{64}$/);
  });

  it("its installed kiln previews the program, reading the stack's config", async () => {
    const cli = join(infra, "node_modules", "kiln", "dist", "cli", "main.js");
    const preview = (env: Record<string, string>) =>
      execa(process.execPath, [cli, "preview", ".", "--json"], {
        cwd: infra,
        reject: false,
        timeout: 60_000,
        env: { KILN_STATE_DIR: join(work, "state"), ...env },
      });
    const stateDir = await mkdtemp(join(tmpdir(), "kiln-pack-agent-"));
    const agent = await Agent.start({ stateDir, port: 0, token: "t" });
    try {
      const result = await preview({ KILN_URL: agent.url, KILN_TOKEN: "t" });
      expect(result.stderr).toBe("");
      expect(result.exitCode).toBe(0);
      const parsed = JSON.parse(result.stdout) as {
        apps: { app: string; reachable: boolean; diff: { entries: unknown[] } }[];
      };
      expect(parsed.apps[0]?.app).toBe("infra-app");
      expect(parsed.apps[0]?.reachable).toBe(true);
      expect(parsed.apps[0]?.diff.entries).toEqual([
        { kind: "function", name: "square", action: "add", fields: [] },
        { kind: "dict", name: "cache", action: "add", fields: [] },
      ]);
    } finally {
      await agent.stop();
      await removeDir(stateDir);
    }

    // A local pool whose agent does not answer is an error naming the URL (exit 4), never "new".
    const unreachable = await preview({ KILN_URL: "http://127.0.0.1:9", KILN_TOKEN: "t" });
    expect(unreachable.exitCode).toBe(4);
    expect(unreachable.stdout).toBe("");
    expect(unreachable.stderr).toBe(
      "error (UnavailableError): no agent answers at http://127.0.0.1:9 (app 'infra-app'): start one with 'kiln agent' (or point the GpuPool at one, KILN_URL), then preview again",
    );

    // --stack prod reads Pulumi.prod.yaml: its maxContainers 0 fails the function, with the field path.
    await writeFiles(infra, { "Pulumi.prod.yaml": "config:\n  infra:maxContainers: '0'\n" });
    const prod = await execa(
      process.execPath,
      [
        join(infra, "node_modules", "kiln", "dist", "cli", "main.js"),
        "preview",
        ".",
        "--stack",
        "prod",
      ],
      {
        cwd: infra,
        reject: false,
        timeout: 60_000,
        env: {
          KILN_URL: "http://127.0.0.1:9",
          KILN_TOKEN: "t",
          KILN_STATE_DIR: join(work, "state"),
        },
      },
    );
    expect(prod.exitCode).toBe(2);
    expect(prod.stderr).toMatch(
      /ServerlessFunction "square": maxContainers: 0 is below the minimum 1/,
    );
  });
});

describe("kiln init, with the installed kiln", () => {
  it("scaffolds a project whose kiln run, test and typecheck work at once", async () => {
    const cli = join(infra, "node_modules", "kiln", "dist", "cli", "main.js");
    const project = join(work, "my_Project");
    const init = await execa(process.execPath, [cli, "init", project], { reject: false });
    expect(init.exitCode, init.stderr).toBe(0);
    expect(init.stdout).toContain("app 'my-project'");
    const manifest = JSON.parse(await readFile(join(project, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
    };
    expect(Object.keys(manifest.dependencies).sort()).toEqual(["@pulumi/pulumi", "kiln", "zod"]);
    // As npm install would leave it (without the network): kiln, and its dependencies.
    await mkdir(join(project, "node_modules"));
    await symlink(
      join(infra, "node_modules", "kiln"),
      join(project, "node_modules", "kiln"),
      "dir",
    );
    for (const entry of ["@pulumi", "zod", "typescript", "@types"]) {
      await symlink(
        join(repoRoot, "node_modules", entry),
        join(project, "node_modules", entry),
        "dir",
      );
    }
    const env = { KILN_URL: "http://127.0.0.1:9", KILN_STATE_DIR: join(work, "init-state") };
    const run = await execa(process.execPath, [cli, "run", ".", "./main.ts", "--", "--n", "5"], {
      cwd: project,
      reject: false,
      env,
    });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toBe("the squares of 1..5 add up to 55\n55");
    expect(run.stderr).toContain("started an embedded agent for this run");
    const test = await execa("npm", ["test"], { cwd: project, reject: false });
    expect(test.exitCode, test.stdout + test.stderr).toBe(0);
    expect(test.stdout).toContain("# pass 1");
    const typecheck = await execa(
      process.execPath,
      [join(repoRoot, "node_modules", "typescript", "bin", "tsc"), "-p", "."],
      { cwd: project, reject: false },
    );
    expect(typecheck.exitCode, typecheck.stdout).toBe(0);
    // A folder that is not empty is refused, naming what to do.
    const again = await execa(process.execPath, [cli, "init", project], { reject: false });
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toContain(
      "is not empty: kiln init writes a new project into an empty folder",
    );
  });
});
