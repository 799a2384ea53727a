/**
 * `kiln run` through the built CLI: an entry's main(args, ctx) against an ephemeral app, `::fn`
 * with flags, logs streamed per function, the app removed at the end and on SIGINT (unless
 * --detach), and an embedded agent when none answers.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { existsSync, readFileSync } from "node:fs";
import { waitFor } from "../support/wait.js";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Agent } from "../../runtime/agent/agent.js";
import { freePort } from "../cli/helpers.js";
import { parameterNames, parseFlags, ephemeralName } from "../../cli/commands/run.js";
import { CLI, kiln, makeProgram, program, removeDir } from "./helpers.js";

const FUNCTIONS = `
import { connect } from "kiln/client";
export function square(x: number): number { console.log("squaring " + x); return x * x; }
export function add(a: number, b = 0): number { return a + b; }
export function area({ width, height }: { width: number; height: number }): number { return width * height; }
export async function* countdown(from: number) { for (let i = from; i > 0; i--) yield i; }
export async function slow(ms: number): Promise<string> { await new Promise((r) => setTimeout(r, ms)); return "slept"; }
export async function viaClient(x: number): Promise<number> { return (await connect()).function<(x: number) => number>(process.env["KILN_APP"] ?? "", "square").remote(x); }
`;
const INDEX = program(
  `
const square = new ServerlessFunction("square", { app, handler: "./functions.ts#square" });
for (const name of ["add", "area", "countdown", "slow", "viaClient"]) new ServerlessFunction(name, { app, handler: "./functions.ts#" + name });
new Schedule("nightly", { app, function: square, cron: "0 3 * * *" });
`,
  { pool: `{ target: { kind: "local" } }`, app: "runner" },
);
const MAIN = `
import { z } from "zod";
import type { RunContext } from "kiln";
export const args = z.object({ n: z.number().int().min(1), label: z.string().default("sum") });
export async function main({ n, label }: z.infer<typeof args>, ctx: RunContext) {
  const square = ctx.function<(x: number) => number>("square");
  let total = 0;
  for await (const y of square.map(Array.from({ length: n }, (_, i) => i + 1))) total += y;
  console.log(label + " " + total + " on " + ctx.app);
  return { total };
}
`;
const HANG = `
import type { RunContext } from "kiln";
export async function main(_args: unknown, ctx: RunContext) {
  console.log("started " + ctx.app);
  await ctx.function<(ms: number) => string>("slow").remote(60_000);
}
`;

let agent: Agent;
let stateDir: string;
let dir: string;
let env: Record<string, string>;

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "kiln-run-test-"));
  agent = await Agent.start({ stateDir, port: 0, token: `tok-${randomUUID()}` });
  env = { KILN_URL: agent.url, KILN_TOKEN: agent.token };
  dir = await makeProgram({
    "index.ts": INDEX,
    "functions.ts": FUNCTIONS,
    "main.ts": MAIN,
    "hang.ts": HANG,
  });
});

afterAll(async () => {
  await agent?.stop();
  await removeDir(stateDir);
  await removeDir(dir);
});

const runApps = () =>
  agent.apps
    .list()
    .map((a) => a.name)
    .filter((name) => name.startsWith("runner-run-"));

describe("kiln run <program-dir> <entry>", () => {
  it("deploys an ephemeral app, runs main with the flags, streams the logs, removes the app", async () => {
    const result = await kiln(
      ["run", dir, join(dir, "main.ts"), "--", "--n", "3", "--label", "total"],
      { env },
    );
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/^total 14 on runner-run-[0-9a-f]{6}\n\{ total: 14 \}$/);
    expect(result.stderr).toMatch(
      /kiln run: note: schedules do not fire in ephemeral apps; not deployed: nightly/,
    );
    expect(result.stderr).toMatch(
      /kiln run: deployed app 'runner' as 'runner-run-[0-9a-f]{6}' on /,
    );
    expect(result.stderr).toContain("[square] squaring 2");
    expect(result.stderr).toMatch(/kiln run: removed app 'runner-run-[0-9a-f]{6}'/);
    expect(runApps()).toEqual([]);
    // Its logs went with it, on disk and in memory.
    const ephemeral = /as '(runner-run-[0-9a-f]{6})'/.exec(result.stderr)?.[1] ?? "";
    const logFile = join(stateDir, "logs", `${ephemeral}.jsonl`);
    expect(existsSync(logFile) ? readFileSync(logFile, "utf8") : "").toBe("");
    expect(existsSync(logFile)).toBe(false);
    expect(await agent.logs.tail(ephemeral, undefined, 100)).toEqual([]);
  });

  it("checks the flags with the entry's zod schema before deploying anything: exit 2 naming the flag", async () => {
    const result = await kiln(["run", dir, join(dir, "main.ts"), "--", "--n", "zero"], { env });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/error \(InvalidError\): entry flags: --n: /);
    expect(result.stderr).not.toContain("deployed app");
    expect(runApps()).toEqual([]);
  });

  it("::fn calls one function: named flags map to its parameters, positional ones are JSON", async () => {
    const square = await kiln(["run", dir, "::square", "--x", "3"], { env });
    expect(square.stdout).toBe("9");
    expect(square.exitCode).toBe(0);
    const add = await kiln(["run", dir, "::add", "2", "5"], { env });
    expect(add.stdout).toBe("7");
    // A handler module that imports kiln/client: loaded here for its parameters, and in its container.
    const viaClient = await kiln(["run", dir, "::viaClient", "--x", "4"], { env });
    expect(viaClient.stdout, viaClient.stderr).toBe("16");
    expect(runApps()).toEqual([]);
  });

  it("::fn takes an object parameter's fields as flags, and streams a generator's values", async () => {
    const area = await kiln(["run", dir, "::area", "--width", "3", "--height", "4"], { env });
    expect(area.stdout).toBe("12");
    const countdown = await kiln(["run", dir, "::countdown", "--from", "3"], { env });
    expect(countdown.stdout).toBe("3\n2\n1");
    expect(runApps()).toEqual([]);
  });

  it("::fn refuses a flag that is no parameter (exit 2) and a function the program lacks (exit 1), before deploying anything", async () => {
    const wrong = await kiln(["run", dir, "::square", "--y", "3"], { env });
    expect(wrong.exitCode, wrong.stderr).toBe(2);
    expect(wrong.stderr).toContain("--y: not a parameter of square (its parameters: x)");
    const missing = await kiln(["run", dir, "::nope"], { env });
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain(
      "the program has no function 'nope'; its functions: add, area, countdown, slow, square, viaClient",
    );
    for (const result of [wrong, missing]) expect(result.stderr).not.toContain("deployed app");
    expect(runApps()).toEqual([]);
  });

  it("--detach leaves the app running", async () => {
    const result = await kiln(["run", dir, "::square", "--x", "2", "--detach"], { env });
    expect(result.exitCode).toBe(0);
    const left = runApps();
    expect(left).toHaveLength(1);
    expect(result.stderr).toContain(
      `left app '${left[0]}' running (--detach); stop it with 'kiln stop ${left[0]}'`,
    );
    await agent.apps.delete(left[0]!, 0);
  });

  it("Ctrl-C (SIGINT) while main runs removes the app and exits 130", async () => {
    const child = execa(process.execPath, [CLI, "run", dir, join(dir, "hang.ts")], {
      reject: false,
      timeout: 60_000,
      env: { ...env, KILN_STATE_DIR: stateDir },
    });
    let out = "";
    child.stdout?.on("data", (chunk: Buffer) => (out += chunk.toString()));
    await waitFor("main to start", () => out.includes("started"), { intervalMs: 50 });
    expect(out).toMatch(/started runner-run-[0-9a-f]{6}/);
    expect(runApps()).toHaveLength(1);
    child.kill("SIGINT");
    const result = await child;
    expect(result.exitCode).toBe(130);
    expect(result.stderr).toContain("kiln run: SIGINT: stopping and removing the run's apps");
    expect(result.stderr).toMatch(/kiln run: removed app 'runner-run-[0-9a-f]{6}'/);
    expect(runApps()).toEqual([]);
  });

  it("with a local pool and no agent answering, it starts an embedded agent for the run and says so", async () => {
    const port = await freePort();
    const result = await kiln(["run", dir, "::square", "--x", "5"], {
      env: { KILN_URL: `http://127.0.0.1:${port}` },
    });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe("25");
    expect(result.stderr).toContain(
      `kiln run: no agent answers at http://127.0.0.1:${port}: started an embedded agent for this run at http://127.0.0.1:`,
    );
    const detached = await kiln(["run", dir, "::square", "--x", "5", "--detach"], {
      env: { KILN_URL: `http://127.0.0.1:${port}` },
    });
    expect(detached.exitCode).toBe(2);
    expect(detached.stderr).toContain("--detach needs an agent that outlives the run");
  });
});

describe("flags and parameters", () => {
  it("parseFlags: --k v, --k=v, bare flags, --no-x, positional JSON, kebab to camel", () => {
    expect(
      parseFlags([
        "[1,2]",
        "--n",
        "5",
        "--name=bob",
        "--dry-run",
        "--no-cache",
        "text",
        "--max-items",
        "3",
      ]),
    ).toEqual({
      named: { n: 5, name: "bob", dryRun: true, cache: false, maxItems: 3 },
      positional: [[1, 2], "text"],
    });
    expect(parseFlags(["--verbose"])).toEqual({ named: { verbose: true }, positional: [] });
    expect(parseFlags(["--", "--x", "1"])).toEqual({ named: { x: 1 }, positional: [] });
    expect(parseFlags(["--s", '"7"'])).toEqual({ named: { s: "7" }, positional: [] });
    expect(parseFlags([])).toEqual({ named: {}, positional: [] });
  });

  it("parameterNames reads functions, methods, arrows, defaults and destructuring", () => {
    expect(parameterNames("function square(x) { return x * x; }")).toEqual(["x"]);
    expect(parameterNames("async function* gen(from, step = (1 + 1), ...rest) {}")).toEqual([
      "from",
      "step",
      "rest",
    ]);
    expect(parameterNames("embed(texts, options = { a: [1, 2] }) {}")).toEqual([
      "texts",
      "options",
    ]);
    expect(parameterNames("x => x * 2")).toEqual(["x"]);
    expect(parameterNames("({ width, height }) => width * height")).toBe("object");
  });

  it("ephemeral names stay valid app names", () => {
    expect(ephemeralName("hello", "abc123")).toBe("hello-run-abc123");
    const long = ephemeralName("a".repeat(63), "abc123");
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long.endsWith("-run-abc123")).toBe(true);
  });
});
