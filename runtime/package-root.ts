/**
 * Where kiln's own package is installed (the folder of its package.json): `dist/runtime/` when
 * built, `runtime/` under the test runner. Handler bundles leave `kiln` and `kiln/*` imports out
 * (runtime/deploy/bundle.ts); the agent lets its workers resolve them to this package.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let root: string | undefined;

export function kilnPackageRoot(): string {
  if (root !== undefined) return root;
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const manifest = join(dir, "package.json");
    if (
      existsSync(manifest) &&
      (JSON.parse(readFileSync(manifest, "utf8")) as { name?: unknown }).name === "kiln"
    )
      return (root = dir);
    if (dirname(dir) === dir)
      throw new Error(
        `kiln's package.json is not above ${fileURLToPath(import.meta.url)}: reinstall kiln`,
      );
  }
}
