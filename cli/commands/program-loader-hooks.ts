/**
 * Node module hooks (`module.register`) that let Node import a TypeScript Pulumi program, its
 * local modules and `kiln run` entries: `.ts`, `.mts` and `.tsx` files are compiled with esbuild
 * (types stripped, an inline source map), and TypeScript-style specifiers (`./functions.js` for
 * `./functions.ts`, or no extension) resolve to the `.ts` file. Runs on Node's loader thread.
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const TS_FILE = /\.(ts|mts|tsx)$/;

interface ResolveContext {
  parentURL?: string;
  conditions?: readonly string[];
}
type NextResolve = (
  specifier: string,
  context?: ResolveContext,
) => Promise<{ url: string; format?: string | null }>;
type NextLoad = (
  url: string,
  context?: unknown,
) => Promise<{ format: string; source?: string | ArrayBuffer | Uint8Array | null }>;

export async function resolve(
  specifier: string,
  context: ResolveContext,
  nextResolve: NextResolve,
) {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    const parent = context.parentURL;
    if (
      !parent?.startsWith("file:") ||
      !TS_FILE.test(new URL(parent).pathname) ||
      !/^\.{1,2}\//.test(specifier)
    )
      throw error;
    for (const candidate of tsCandidates(specifier)) {
      try {
        return await nextResolve(candidate, context);
      } catch {
        // try the next one
      }
    }
    throw error;
  }
}

/** `./a.js` → `./a.ts`, `./a.tsx`; `./a.mjs` → `./a.mts`; `./a` → `./a.ts`, `./a/index.ts`, `./a.js`. */
function tsCandidates(specifier: string): string[] {
  if (specifier.endsWith(".js"))
    return [`${specifier.slice(0, -3)}.ts`, `${specifier.slice(0, -3)}.tsx`];
  if (specifier.endsWith(".mjs")) return [`${specifier.slice(0, -4)}.mts`];
  if (/\.[A-Za-z0-9]+$/.test(specifier.split("/").pop() ?? "")) return [];
  return [
    `${specifier}.ts`,
    `${specifier}.tsx`,
    `${specifier}/index.ts`,
    `${specifier}.js`,
    `${specifier}/index.js`,
  ];
}

export async function load(url: string, context: unknown, nextLoad: NextLoad) {
  if (!url.startsWith("file:")) return nextLoad(url, context);
  const path = fileURLToPath(url);
  if (!TS_FILE.test(path)) return nextLoad(url, context);
  const { transform } = await import("esbuild");
  const source = await readFile(path, "utf8");
  const result = await transform(source, {
    loader: path.endsWith(".tsx") ? "tsx" : "ts",
    format: "esm",
    target: "node20",
    platform: "node",
    sourcemap: "inline",
    sourcefile: path,
    banner: commonJsGlobals(source),
  });
  return { format: "module", source: result.code, shortCircuit: true };
}

/** `__dirname`, `__filename` and `require` for TypeScript written for CommonJS, when it uses them without declaring them. */
function commonJsGlobals(source: string): string {
  const lines: string[] = [];
  const uses = (name: string) =>
    new RegExp(`\\b${name}\\b`).test(source) &&
    !new RegExp(`\\b(const|let|var|function|import)\\s+\\{?[^;]*\\b${name}\\b`).test(source);
  if (uses("require"))
    lines.push(
      `import { createRequire as __kilnCreateRequire } from "node:module"; const require = __kilnCreateRequire(import.meta.url);`,
    );
  if (uses("__filename") || uses("__dirname"))
    lines.push(
      `import { fileURLToPath as __kilnFileURLToPath } from "node:url"; const __filename = __kilnFileURLToPath(import.meta.url);`,
    );
  if (uses("__dirname"))
    lines.push(
      `import { dirname as __kilnDirname } from "node:path"; const __dirname = __kilnDirname(__filename);`,
    );
  return lines.join("\n");
}
