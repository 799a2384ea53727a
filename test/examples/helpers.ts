/** Shared with the component tests: temp programs, the mock runner; plus running the built CLI. */
import { join } from "node:path";
import { execa } from "execa";
import { CLI, parseMockedRuns, type MockedRun } from "../components/helpers.js";

export {
  HANDLERS,
  makeProgram,
  program,
  removeDir,
  repoRoot,
  runMocked,
  writeFiles,
  CLI,
} from "../components/helpers.js";

/** Run a copy of the mock runner that lives in `project` (so it resolves the project's kiln). */
export async function runMockedIn(
  project: string,
  runner: string,
  programFile: string,
): Promise<MockedRun> {
  const result = await execa(process.execPath, [runner, programFile], {
    cwd: project,
    reject: false,
    timeout: 60_000,
    env: { KILN_URL: undefined, KILN_TOKEN: undefined, KILN_STATE_DIR: join(project, ".no-state") },
  });
  return parseMockedRuns(result, 1)[0]!;
}

/** `node dist/cli/main.js ...args` to completion (bounded), never throwing on a non-zero exit. */
export function kiln(
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string | undefined>; timeoutMs?: number } = {},
) {
  return execa(process.execPath, [CLI, ...args], {
    cwd: options.cwd,
    reject: false,
    timeout: options.timeoutMs ?? 60_000,
    env: {
      KILN_URL: undefined,
      KILN_TOKEN: undefined,
      KILN_STATE_DIR: join("/nonexistent", "kiln-state"),
      ...options.env,
    },
  });
}
