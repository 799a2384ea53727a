/**
 * The agent's bearer token: `KILN_TOKEN`, or a random token written to `<state-dir>/token`
 * (mode 0600) on first start, which the CLI and client read for a local agent.
 */
import { randomBytes, timingSafeEqual, createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

export const TOKEN_FILE = "token";

export async function loadOrCreateToken(
  stateDir: string,
  fromEnv: string | undefined,
): Promise<string> {
  if (fromEnv) return fromEnv;
  const path = join(stateDir, TOKEN_FILE);
  if (existsSync(path)) return (await readFile(path, "utf8")).trim();
  await mkdir(stateDir, { recursive: true });
  const token = `kiln_${randomBytes(24).toString("base64url")}`;
  await writeFile(path, `${token}\n`, { mode: 0o600, flag: "wx" }).catch(
    async (error: NodeJS.ErrnoException) => {
      if (error.code !== "EEXIST") throw error;
    },
  );
  await chmod(path, 0o600);
  return (await readFile(path, "utf8")).trim();
}

/**
 * A constant-time check of a presented `Authorization` header against `token`, whose digest is
 * computed once here rather than on every request.
 */
export function tokenMatcher(token: string): (header: string | undefined) => boolean {
  const expected = createHash("sha256").update(token).digest();
  return (header) => {
    // The scheme is case-insensitive (RFC 9110 §11.1), and one or more spaces follow it.
    const match = header === undefined ? null : /^bearer +(.+)$/is.exec(header);
    if (!match) return false;
    // Hash both sides so the comparison takes the same time whatever the lengths.
    const presented = createHash("sha256")
      .update(match[1] as string)
      .digest();
    return timingSafeEqual(presented, expected);
  };
}
