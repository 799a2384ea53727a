/**
 * Where handler paths are relative to when an App does not say (`root`): the directory of the
 * Pulumi program. `kiln preview/deploy/run` set it while they evaluate a program; under the Pulumi
 * CLI it is the directory of `main` in the project's Pulumi.yaml (the project directory when
 * `main` is not set).
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { programRootFromKiln } from "./program-context.js";

/** The program's directory: set by kiln, else from Pulumi.yaml's `main`, else the project (or current) directory. */
export function defaultProgramRoot(): string {
  const fromKiln = programRootFromKiln();
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
function mainDir(projectDir: string): string | null {
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
