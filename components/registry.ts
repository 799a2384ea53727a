/**
 * The Apps a program declared, for `kiln preview/deploy/run`, which evaluate the program without
 * the Pulumi engine and then wait for each App's deployment. Global, so every copy of kiln in the
 * process adds to the same list.
 */
import type { App } from "./app.js";

const APPS = Symbol.for("kiln.components.apps");

type Globals = { [APPS]?: App[] };

export function registerApp(app: App): void {
  const globals = globalThis as Globals;
  (globals[APPS] ??= []).push(app);
}

/** The Apps declared since the last `clearDeclaredApps()`. */
export function declaredApps(): readonly App[] {
  return (globalThis as Globals)[APPS] ?? [];
}

export function clearDeclaredApps(): void {
  (globalThis as Globals)[APPS] = [];
}
