/**
 * `kiln init <dir>`: a new project that works at once: package.json (kiln and the packages the
 * program imports, pinned to the versions this kiln was built with), tsconfig, Pulumi.yaml, a
 * program with a pool, an app and a function, a `kiln run` entry, and a test.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import type { Command } from "commander";
import { InvalidError } from "../../runtime/errors.js";
import { kilnPackageRoot } from "../../runtime/package-root.js";
import { nameArg, parseArg } from "../args.js";

interface InitFlags {
  name?: string;
  kiln?: string;
}

export function registerInit(program: Command): void {
  program
    .command("init")
    .description(
      "create a new kiln project in <dir>: a Pulumi program, a function, a run entry, a test",
    )
    .argument("<dir>", "the project folder (created; must be empty if it exists)")
    .option("--name <app>", "the app's name (default: the folder's name)")
    .option(
      "--kiln <spec>",
      "how package.json depends on kiln (default: file:<this kiln's folder>; e.g. a tarball path or a version)",
    )
    .action(async (dir: string, flags: InitFlags) => {
      const target = resolve(dir);
      if (existsSync(target) && readdirSync(target).length > 0) {
        throw new InvalidError(
          `${dir} is not empty: kiln init writes a new project into an empty folder`,
        );
      }
      const app = parseArg(nameArg, flags.name ?? appNameFrom(basename(target)), "--name");
      const files = projectFiles(app, flags.kiln ?? `file:${kilnPackageRoot()}`);
      await mkdir(target, { recursive: true });
      for (const [file, text] of Object.entries(files)) await writeFile(join(target, file), text);
      process.stdout.write(
        `created ${Object.keys(files).length} files in ${dir} (app '${app}'). Next:\n` +
          `  cd ${dir}\n  npm install\n  npx kiln run . ./main.ts -- --n 5   # deploys the app, runs main, removes it\n` +
          `  npm test                           # the project's own test\n`,
      );
    });
}

/** A folder name as an app name: lower-case letters, digits and dashes. */
function appNameFrom(folder: string): string {
  const name = folder
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "");
  return name === "" ? "my-app" : name.slice(0, 63);
}

/** The versions this kiln was built with, for the packages the new project imports itself. */
function pinnedVersions(): (name: string) => string {
  const manifest = JSON.parse(readFileSync(join(kilnPackageRoot(), "package.json"), "utf8")) as {
    dependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
  };
  return (name) => {
    const range = manifest.dependencies?.[name] ?? manifest.devDependencies?.[name];
    if (range === undefined) throw new Error(`kiln's package.json does not list ${name}`);
    return range;
  };
}

function projectFiles(app: string, kilnSpec: string): Record<string, string> {
  const pinned = pinnedVersions();
  const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
  return {
    "package.json": json({
      name: app,
      private: true,
      type: "module",
      scripts: {
        test: "node --import kiln/register --test functions.test.ts",
        typecheck: "tsc -p .",
        preview: "kiln preview .",
        deploy: "kiln deploy .",
      },
      dependencies: {
        kiln: kilnSpec,
        "@pulumi/pulumi": pinned("@pulumi/pulumi"),
        zod: pinned("zod"),
      },
      devDependencies: {
        typescript: pinned("typescript"),
        "@types/node": pinned("@types/node"),
      },
    }),
    "tsconfig.json": json({
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        skipLibCheck: true,
        noEmit: true,
        types: ["node"],
        allowImportingTsExtensions: true,
      },
      include: ["*.ts"],
    }),
    "Pulumi.yaml":
      `name: ${app}\n` +
      "runtime:\n  name: nodejs\n  options:\n    # TypeScript in an ESM package: kiln's loader compiles it.\n" +
      '    typescript: false\n    nodeargs: "--import kiln/register"\nmain: index.ts\n',
    "index.ts": `/**
 * The app, as a Pulumi program: \`kiln preview .\` shows what would change, \`kiln deploy .\` (or
 * \`pulumi up\`) deploys it, \`kiln run . ./main.ts\` runs it once under a temporary name.
 */
import { App, GpuPool, ServerlessFunction } from "kiln";

// The agent on this machine (\`kiln agent\`; \`kiln run\` starts one for the run if none answers).
const pool = new GpuPool("pool", { target: { kind: "local" } });
const app = new App("${app}", { pool });
new ServerlessFunction("square", { app, handler: "./functions.ts#square", maxContainers: 4 });
`,
    "functions.ts": `/** The handlers: plain functions; kiln runs each in its own containers. */
export function square(x: number): number {
  return x * x;
}
`,
    "main.ts": `/** \`kiln run . ./main.ts -- --n 5\`: calls the deployed app, then kiln removes it. */
import { z } from "zod";
import type { RunContext } from "kiln";
import type * as handlers from "./functions.js";

/** The flags main takes (checked before anything is deployed). */
export const args = z.object({ n: z.coerce.number().int().min(1).max(1000).default(5) });

export async function main({ n }: z.infer<typeof args>, ctx: RunContext): Promise<number> {
  const square = ctx.function<typeof handlers.square>("square");
  let total = 0;
  for await (const value of square.map(Array.from({ length: n }, (_, i) => i + 1))) total += value;
  console.log(\`the squares of 1..\${n} add up to \${total}\`);
  return total;
}
`,
    "functions.test.ts": `/** \`npm test\`: the handlers are plain functions, tested as such. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { square } from "./functions.ts";

test("square", () => {
  assert.equal(square(7), 49);
});
`,
    ".gitignore": "node_modules/\n",
  };
}
