/**
 * Which agent a command talks to, resolved the way `connect()` does, one field at a time:
 * flags, then KILN_URL / KILN_TOKEN / KILN_STATE_DIR, then the defaults (http://127.0.0.1:7070,
 * the token file `<state-dir>/token`, state dir ~/.kiln).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { TOKEN_FILE } from "../runtime/agent/auth.js";
import {
  connect,
  DEFAULT_AGENT_URL,
  defaultStateDir,
  UnauthenticatedError,
  type ConnectOptions,
  type Kiln,
} from "../runtime/client/index.js";
import { nameArg, parseArg, urlArg } from "./args.js";

export interface ConnectionFlags {
  url?: string;
  token?: string;
  stateDir?: string;
}

/** Add `--url`, `--token` and `--state-dir` to a command that talks to an agent. */
export function withConnectionOptions(command: Command): Command {
  return command
    .option("--url <url>", `agent URL (default: KILN_URL, else ${DEFAULT_AGENT_URL})`)
    .option(
      "--token <token>",
      "bearer token (default: KILN_TOKEN, else the token file in the state dir)",
    )
    .option(
      "--state-dir <dir>",
      "the local agent's state dir, where its token file is (default: KILN_STATE_DIR, else ~/.kiln)",
    );
}

export function resolveConnection(
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv = process.env,
): Required<Pick<ConnectOptions, "url" | "stateDir">> & { token?: string } {
  const url = parseArg(
    urlArg,
    flags.url ?? env["KILN_URL"] ?? DEFAULT_AGENT_URL,
    flags.url ? "--url" : env["KILN_URL"] ? "KILN_URL" : "url",
  );
  const rawToken = flags.token ?? env["KILN_TOKEN"];
  const token =
    rawToken === undefined
      ? undefined
      : parseArg(nameArg, rawToken, flags.token !== undefined ? "--token" : "KILN_TOKEN");
  const stateDir = flags.stateDir ?? env["KILN_STATE_DIR"] ?? defaultStateDir();
  return token === undefined ? { url, stateDir } : { url, token, stateDir };
}

/** Resolve, then connect (which checks that the agent answers). */
export async function openKiln(flags: ConnectionFlags): Promise<Kiln> {
  const resolved = resolveConnection(flags);
  if (resolved.token === undefined) {
    const path = join(resolved.stateDir, TOKEN_FILE);
    if (!existsSync(path)) {
      throw new UnauthenticatedError(
        `no token: pass --token, set KILN_TOKEN, or point --state-dir (KILN_STATE_DIR) at the agent's state dir ` +
          `(${path} does not exist; 'kiln agent' writes it)`,
      );
    }
  }
  return connect(resolved);
}
