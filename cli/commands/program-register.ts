/**
 * `node --import kiln/register program.ts`: lets Node import TypeScript (the hooks in
 * program-loader-hooks.ts). The Pulumi CLI uses it through Pulumi.yaml
 * (`runtime.options.nodeargs: --import kiln/register`); `kiln preview/deploy/run` call
 * `registerTypeScript()` before they import a program.
 */
import { register } from "node:module";

const REGISTERED = Symbol.for("kiln.typescriptHooks");

/** Register the hooks once per process (also across copies of kiln). */
export function registerTypeScript(): void {
  const globals = globalThis as { [REGISTERED]?: boolean };
  if (globals[REGISTERED]) return;
  // Running from TypeScript source (the test runner), whose own loader already compiles TypeScript.
  if (import.meta.url.endsWith(".ts")) return;
  register(new URL("./program-loader-hooks.js", import.meta.url));
  globals[REGISTERED] = true;
  process.setSourceMapsEnabled(true);
}

registerTypeScript();
