/** Running the built `kiln` as a real process, free ports, and bounded waits for the CLI tests. */
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa, type Options } from "execa";

export const CLI = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));
export const HELLO_SPEC = fileURLToPath(new URL("../../examples/hello/app.json", import.meta.url));

/** An empty state dir for KILN_STATE_DIR, so no test ever reads ~/.kiln. */
const isolatedStateDir = mkdtempSync(join(tmpdir(), "kiln-cli-empty-"));

/** The environment a CLI process gets: no KILN_* from the developer's shell, plus `env`. */
export function cliEnv(
  env: Record<string, string | undefined> = {},
): Record<string, string | undefined> {
  return { KILN_URL: undefined, KILN_TOKEN: undefined, KILN_STATE_DIR: isolatedStateDir, ...env };
}

/** Run `node dist/cli/main.js ...args` to completion (bounded); never throws on a non-zero exit. */
export function kiln(
  args: readonly string[],
  options: { env?: Record<string, string | undefined>; timeoutMs?: number } = {},
) {
  return execa(process.execPath, [CLI, ...args], {
    reject: false,
    timeout: options.timeoutMs ?? 30_000,
    env: cliEnv(options.env),
  } satisfies Options);
}

/** Start `kiln ...args` as a long-running child (agent, logs --follow). */
export function kilnChild(args: readonly string[], env: Record<string, string | undefined> = {}) {
  return execa(process.execPath, [CLI, ...args], {
    reject: false,
    env: cliEnv(env),
    timeout: 120_000,
  });
}

/** A port nothing listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The non-empty lines of a process's output. */
export function linesOf(text: string): string[] {
  return text.split("\n").filter((line) => line.trim() !== "");
}
