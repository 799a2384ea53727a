/**
 * Bundles handler files with esbuild into content-addressed artifacts (sha256 of the code).
 *
 * One artifact per handler file: functions that live in the same file share it. The bundle is
 * ESM for Node 20 with an inline source map (stack traces point at the user's source), built
 * with the program directory as working directory so the same code at two paths gives the same
 * hash.
 *
 * `kiln` and `kiln/*` (the client a handler uses to call other functions, dicts and queues) stay
 * imports: the agent's workers resolve them to the agent's own kiln (runtime/package-root.ts), the
 * way Modal's containers come with its client. Bundled, the client with zod and undici made every
 * such handler file 5.5 MB, bundled in 0.3 s and parsed at each cold start.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { InvalidError } from "../errors.js";

export interface Artifact {
  /** The handler file as written in the spec ("./functions.ts"). */
  file: string;
  sha256: string;
  code: string;
  /** Export names of the module, for checking `handler` references before anything runs. */
  exports: string[];
}

/** Imports left to the worker: kiln's own packages, which the agent provides. */
const PROVIDED_PACKAGES = ["kiln", "kiln/*"];

/** Lets CommonJS dependencies `require()` Node built-ins from inside the ESM bundle. */
const REQUIRE_SHIM =
  "import { createRequire as __kilnCreateRequire } from 'node:module'; const require = __kilnCreateRequire(import.meta.url);";

export async function bundleFile(baseDir: string, file: string): Promise<Artifact> {
  const { build } = await import("esbuild");
  if (isAbsolute(file))
    throw new InvalidError(`handler file ${file} must be relative to the spec or program`);
  const entry = resolve(baseDir, file);
  if (!existsSync(entry)) {
    throw new InvalidError(
      `handler file ${file} does not exist (looked for ${entry}); handler paths are relative to the spec or program`,
    );
  }
  let result;
  try {
    result = await build({
      absWorkingDir: baseDir,
      entryPoints: [entry],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      write: false,
      metafile: true,
      sourcemap: "inline",
      sourcesContent: true,
      outfile: "bundle.mjs",
      banner: { js: REQUIRE_SHIM },
      logLevel: "silent",
      legalComments: "none",
      external: PROVIDED_PACKAGES,
    });
  } catch (error) {
    const errors =
      (error as { errors?: { text: string; location?: { file: string; line: number } | null }[] })
        .errors ?? [];
    const lines = errors.map((e) =>
      e.location ? `${e.location.file}:${e.location.line}: ${e.text}` : e.text,
    );
    const problems = lines.length > 0 ? lines : [(error as Error).message];
    throw new InvalidError(
      problems.length === 1
        ? `cannot bundle ${file}: ${problems[0]}`
        : `cannot bundle ${file}:\n  ${problems.join("\n  ")}`,
      { cause: error },
    );
  }
  const output = result.outputFiles.find((f) => f.path.endsWith(".mjs"));
  if (!output) throw new InvalidError(`esbuild produced no output for ${file}`);
  const code = output.text;
  const meta = Object.values(result.metafile.outputs)[0];
  return {
    file,
    sha256: createHash("sha256").update(code).digest("hex"),
    code,
    exports: meta?.exports ?? [],
  };
}

/** Bundle every distinct handler file named by `handlers` ("./file.ts#export"). */
export async function bundleHandlers(
  baseDir: string,
  handlerFiles: Iterable<string>,
): Promise<Map<string, Artifact>> {
  const files = [...new Set(handlerFiles)];
  const artifacts = await Promise.all(files.map((file) => bundleFile(baseDir, file)));
  return new Map(artifacts.map((artifact) => [artifact.file, artifact]));
}
