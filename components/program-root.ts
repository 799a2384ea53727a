/**
 * Where handler paths are relative to when an App does not say (`root`): the directory of the
 * Pulumi program. `kiln preview/deploy/run` set it while they evaluate a program; under the Pulumi
 * CLI it is the directory of `main` in the project's Pulumi.yaml (the project directory when
 * `main` is not set).
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import * as pulumi from "@pulumi/pulumi";

// Global (not module) state, so that every copy of kiln in a process agrees.
const ROOT = Symbol.for("kiln.components.programRoot");
const EVALUATOR = Symbol.for("kiln.components.evaluator");

type Globals = { [ROOT]?: string; [EVALUATOR]?: string };

/** Set (or clear, with undefined) the program directory and the name of the evaluator (`kiln preview`). */
export function setProgramContext(context: { root: string; evaluator: string } | undefined): void {
  const globals = globalThis as Globals;
  if (context === undefined) {
    delete globals[ROOT];
    delete globals[EVALUATOR];
  } else {
    globals[ROOT] = context.root;
    globals[EVALUATOR] = context.evaluator;
  }
}

/** The kiln command evaluating the program without the Pulumi engine ("kiln preview"), or null under the engine. */
export function kilnEvaluator(): string | null {
  return (globalThis as Globals)[EVALUATOR] ?? null;
}

/** The program's directory: set by kiln, else from Pulumi.yaml's `main`, else the project (or current) directory. */
export function defaultProgramRoot(): string {
  const fromKiln = (globalThis as Globals)[ROOT];
  if (fromKiln !== undefined) return fromKiln;
  const projectDir = pulumiProjectDir();
  return mainDir(projectDir) ?? projectDir;
}

function pulumiProjectDir(): string {
  let root = "";
  try {
    root = pulumi.runtime.getRootDirectory();
  } catch {
    root = "";
  }
  return isAbsolute(root) && existsSync(root) ? root : process.cwd();
}

/** The directory `main:` in `<projectDir>/Pulumi.yaml` names, or null. */
export function mainDir(projectDir: string): string | null {
  for (const file of ["Pulumi.yaml", "Pulumi.yml"]) {
    const path = join(projectDir, file);
    if (!existsSync(path)) continue;
    const match = /^main:\s*["']?([^"'#\n]+?)["']?\s*(#.*)?$/m.exec(readFileSync(path, "utf8"));
    if (!match?.[1]) return null;
    const main = resolve(projectDir, match[1]);
    try {
      return statSync(main).isDirectory() ? main : dirname(main);
    } catch {
      return dirname(main);
    }
  }
  return null;
}
