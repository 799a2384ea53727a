/**
 * Starts real agents for end-to-end tests: in process (random port, temp state dir) or as a
 * child process (for kill -9), and deploys the fixture app through the public deploy path.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Agent, type AgentOptions } from "../../runtime/agent/agent.js";
import { connect, type Kiln } from "../../runtime/client/index.js";
import { deployApp } from "../../runtime/deploy/deploy.js";

export const fixturesDir = resolve(dirname(fileURLToPath(import.meta.url)), "fixtures");
export const repoRoot = resolve(fixturesDir, "..", "..", "..");

export async function fixtureSpec(): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(fixturesDir, "app.json"), "utf8")) as Record<
    string,
    unknown
  >;
}

export interface Harness {
  agent: Agent;
  kiln: Kiln;
  stateDir: string;
  close(): Promise<void>;
}

export async function startAgent(options: Partial<AgentOptions> = {}): Promise<Harness> {
  const stateDir = options.stateDir ?? (await mkdtemp(join(tmpdir(), "kiln-e2e-")));
  const agent = await Agent.start({ port: 0, ...options, stateDir });
  const kiln = await connect({ url: agent.url, token: agent.token });
  return {
    agent,
    kiln,
    stateDir,
    async close() {
      await agent.stop();
      if (!options.stateDir) await rm(stateDir, { recursive: true, force: true });
    },
  };
}

export async function deployFixture(
  kiln: Kiln,
  patch: (spec: Record<string, unknown>) => void = () => undefined,
) {
  const spec = await fixtureSpec();
  patch(spec);
  return deployApp(kiln.http, spec, fixturesDir);
}

/** An agent in its own process (built JS), for kill -9 tests. */
export interface ChildAgent {
  child: ChildProcess;
  url: string;
  token: string;
  exited: Promise<number | null>;
}

export async function startChildAgent(
  stateDir: string,
  port = 0,
  env: Record<string, string> = {},
): Promise<ChildAgent> {
  const script = join(repoRoot, "test", "e2e", "fixtures", "child-agent.mjs");
  const child = spawn(process.execPath, [script, stateDir, String(port)], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, ...env },
  });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const line = await new Promise<string>((resolveLine, reject) => {
    let buffer = "";
    const timer = setTimeout(
      () => reject(new Error("child agent did not start within 15 s")),
      15_000,
    );
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      buffer += chunk;
      const end = buffer.indexOf("\n");
      if (end >= 0) {
        clearTimeout(timer);
        resolveLine(buffer.slice(0, end));
      }
    });
    child.once("exit", (code) =>
      reject(new Error(`child agent exited with ${code} before starting`)),
    );
  });
  const { url, token } = JSON.parse(line) as { url: string; token: string };
  return { child, url, token, exited };
}

/** The port an URL listens on. */
export function portOf(url: string): number {
  return Number(new URL(url).port);
}

export function ensureBuilt(): void {
  execFileSync("test", ["-f", join(repoRoot, "dist", "runtime", "agent", "agent.js")]);
}
