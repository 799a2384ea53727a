/**
 * The built `kiln` command, run as a real process against a real agent started in process:
 * deploy, call, status, logs, stop, and the errors and exit codes people see.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Agent } from "../../runtime/agent/agent.js";
import { connect } from "../../runtime/client/index.js";
import { deployApp } from "../../runtime/deploy/deploy.js";
import type { AgentStatus } from "../../runtime/protocol.js";
import { openStore, type Store } from "../../runtime/store/index.js";
import { KILN_VERSION } from "../../runtime/version.js";
import { HELLO_SPEC, freePort, kiln, kilnChild, linesOf } from "./helpers.js";
import { NOT_HUNG_MS, waitFor } from "../support/wait.js";

let agent: Agent;
let stateDir: string;
let conn: string[];
let firstDeploy: Awaited<ReturnType<typeof kiln>>;

/** Start an agent whose sandbox host sees `gpus` as its devices (KILN_GPUS, read once at start). */
async function startWithGpus(gpus: string, start: () => Promise<Agent>): Promise<Agent> {
  const before = process.env["KILN_GPUS"];
  process.env["KILN_GPUS"] = gpus;
  try {
    return await start();
  } finally {
    if (before === undefined) delete process.env["KILN_GPUS"];
    else process.env["KILN_GPUS"] = before;
  }
}

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "kiln-cli-test-"));
  // No GPUs, even on a machine that has some: the status lines below say nothing about GPUs.
  agent = await startWithGpus("none", () => Agent.start({ stateDir, port: 0 }));
  conn = ["--url", agent.url, "--token", agent.token];
  firstDeploy = await kiln(["deploy", "--spec", HELLO_SPEC, ...conn]);
});

afterAll(async () => {
  await agent?.stop();
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

describe("kiln deploy", () => {
  it("shows bundle / upload / apply progress, then the app, its version and functions", () => {
    expect(firstDeploy.stderr).toBe("");
    expect(firstDeploy.exitCode).toBe(0);
    const out = firstDeploy.stdout;
    expect(out).toMatch(/^bundle\s+1 handler file\(s\)$/m);
    expect(out).toMatch(/^upload\s+\.\/functions\.ts \([0-9a-f]{12}\)$/m);
    expect(out).toMatch(/^apply\s+hello$/m);
    expect(out).toContain("deployed app 'hello' version 1 (1 of 1 bundle(s) uploaded)");
    expect(out).toContain(
      "functions: add, countdown, embed, fail, rich, slow, square, sumOfSquares",
    );
  });

  it("says 'unchanged' when the agent already runs this spec and code", async () => {
    const again = await kiln(["deploy", "--spec", HELLO_SPEC, ...conn]);
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toContain(
      "app 'hello' unchanged at version 1 (0 of 1 bundle(s) uploaded)",
    );
  });

  it("--json prints the deploy result as JSON, progress on stderr", async () => {
    const result = await kiln(["deploy", "--spec", HELLO_SPEC, "--json", ...conn]);
    expect(result.exitCode).toBe(0);
    const parsed = JSON.parse(result.stdout) as { app: { name: string }; changed: boolean };
    expect(parsed.app.name).toBe("hello");
    expect(parsed.changed).toBe(false);
    expect(result.stderr).toContain("apply");
  });

  it("refuses a bad spec with exit 2 and one line naming the field path", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kiln-cli-spec-"));
    try {
      const spec = join(dir, "app.json");
      await writeFile(
        spec,
        JSON.stringify({
          name: "bad",
          functions: { f: { handler: "./f.ts#f", memory: [256, 128] } },
        }),
      );
      const result = await kiln(["deploy", "--spec", spec, ...conn]);
      expect(result.exitCode).toBe(2);
      expect(linesOf(result.stderr)).toHaveLength(1);
      expect(result.stderr).toMatch(
        /^error \(InvalidError\): invalid spec .*app\.json: functions\.f\.memory: /,
      );
      expect(result.stdout).toBe("");

      await writeFile(spec, "{ not json");
      const notJson = await kiln(["deploy", "--spec", spec, ...conn]);
      expect(notJson.exitCode).toBe(2);
      expect(notJson.stderr).toContain("is not valid JSON");

      const missing = await kiln(["deploy", "--spec", join(dir, "nope.json"), ...conn]);
      expect(missing.exitCode).toBe(2);
      expect(missing.stderr).toContain("no such file");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("kiln call", () => {
  it("passes JSON arguments and prints the result", async () => {
    const result = await kiln(["call", "hello", "square", "7", ...conn]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe("49");
    const negative = await kiln(["call", "hello", "add", "-3", "10", ...conn]);
    expect(negative.stdout).toBe("7");
  });

  it("passes an argument that is not JSON as a plain string", async () => {
    const result = await kiln(["call", "hello", "embed", "kiln fires fast", ...conn]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/vector: \[ 1, 2, 4 \]/);
    // --str sends text that looks like JSON as the text itself.
    const asText = await kiln(["call", "hello", "embed", "--str", "[1, 2]", ...conn]);
    expect(asText.exitCode).toBe(0);
    expect(asText.stdout).toMatch(/vector: \[ 0, 0 \]/); // as JSON, text.split would throw
  });

  it("prints values JSON cannot show readably (Map, Set, BigInt, Date, Uint8Array)", async () => {
    const result = await kiln(["call", "hello", "rich", ...conn]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain("Map(2) { 'a' => 1, 'b' => 2 }");
    expect(result.stdout).toContain("Set(2) { 'x', 'y' }");
    expect(result.stdout).toContain("big: 1180591620717411303424n");
    expect(result.stdout).toContain("when: 2026-11-23T00:00:00.000Z");
    expect(result.stdout).toContain("Uint8Array(3) [ 1, 2, 3 ]");
    expect(result.stdout).toContain("carried, not thrown");
    expect(result.stdout).not.toMatch(/^\s+at /m); // carried errors show one line
  });

  it("--json prints JSON", async () => {
    const result = await kiln(["call", "hello", "rich", "--json", ...conn]);
    expect(result.exitCode).toBe(0);
    const value = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(value).toMatchObject({
      when: "2026-11-23T00:00:00.000Z",
      counts: { a: 1, b: 2 },
      tags: ["x", "y"],
      big: "1180591620717411303424",
      bytes: [1, 2, 3],
      nothing: null,
      error: { name: "TypeError", message: "carried, not thrown" },
    });
  });

  it("an unknown function exits 1 with one line naming the functions that exist", async () => {
    const result = await kiln(["call", "hello", "nope", ...conn]);
    expect(result.exitCode).toBe(1);
    expect(linesOf(result.stderr)).toEqual([
      "error (NotFoundError): app 'hello' has no function 'nope'; its functions: add, countdown, embed, fail, rich, slow, square, sumOfSquares",
    ]);
  });

  it("an unknown app exits 1 naming the deployed apps", async () => {
    const result = await kiln(["call", "ghost", "square", "1", ...conn]);
    expect(result.exitCode).toBe(1);
    expect(linesOf(result.stderr)).toEqual([
      "error (NotFoundError): app 'ghost' is not deployed; deployed apps: hello",
    ]);
  });

  it("a handler that throws exits 1 with the remote error; --verbose adds the remote stack", async () => {
    const result = await kiln(["call", "hello", "fail", "cli", ...conn]);
    expect(result.exitCode).toBe(1);
    expect(linesOf(result.stderr)).toEqual(["error (RemoteError): RangeError: refusing: cli"]);
    const verbose = await kiln(["call", "hello", "fail", "cli", "--verbose", ...conn]);
    expect(verbose.exitCode).toBe(1);
    expect(verbose.stderr).toContain("--- remote stack ---");
    expect(verbose.stderr).toMatch(/^\s+at /m);
  });

  it("--spawn prints the call id, whose result can be fetched later", async () => {
    const result = await kiln(["call", "hello", "slow", "50", "--spawn", ...conn]);
    expect(result.exitCode).toBe(0);
    const id = result.stdout.trim();
    expect(id).toMatch(/^\S+$/);
    const client = await connect({ url: agent.url, token: agent.token });
    expect(await client.functionCall(id).get({ timeoutMs: NOT_HUNG_MS })).toBe("slept 50 ms");
  });
});

describe("kiln status", () => {
  it("prints the agent line and an aligned table of the app's functions", async () => {
    // square has run (earlier tests): call it again so its container is surely within its
    // scale-down window (60 s), however slow the box made the tests in between.
    const client = await connect({ url: agent.url, token: agent.token });
    expect(await client.function("hello", "square").remote(2)).toBe(4);
    await waitFor("square's pool to count its warm container", async () => {
      const status = await client.status();
      const square = status.apps
        .find((a) => a.name === "hello")
        ?.functions.find((f) => f.name === "square");
      return square !== undefined && square.scaling.desired >= 1 && square.scaling.idle >= 1;
    });
    const result = await kiln(["status", ...conn]);
    expect(result.exitCode).toBe(0);
    const lines = result.stdout.split("\n");
    expect(lines[0]).toMatch(
      new RegExp(
        `^agent ${agent.url}  version ${KILN_VERSION}  store embedded  cpu [\\d.]+/\\d+ used`,
      ),
    );
    expect(result.stdout).toMatch(/^app hello {2}version 1 {2}deployed \S+$/m);
    const header = lines.find((line) => line.includes("FUNCTION"));
    expect(header).toMatch(
      /FUNCTION\s+DESIRED\s+STARTING\s+BUSY\s+IDLE\s+DRAINING\s+PENDING\s+RUNNING\s+SPAWN-PENDING\s+COLD-STARTS\s+START-FAILURES/,
    );
    for (const fn of [
      "square",
      "add",
      "embed",
      "countdown",
      "fail",
      "rich",
      "sumOfSquares",
      "slow",
    ]) {
      const row = lines.find((line) => line.trimStart().startsWith(`${fn} `));
      expect(row, fn).toBeDefined();
      expect(row).toMatch(/^ {2}\S+(\s+\d+){10}$/);
      expect(row?.length).toBe(header?.length); // numbers right-aligned under their headers
    }
    expect(lines.find((line) => line.trimStart().startsWith("square "))).toMatch(
      /^ {2}square\s+[12]\s+0\s+0\s+[12]\s+0\s+0\s+0\s+0\s+[12]\s+0$/,
    );
    // A host without GPUs: no host line, nothing about GPUs beyond the limits line's count.
    expect(result.stdout).not.toMatch(/^host:/m);
    expect(result.stdout).not.toContain("GPUs");
  });

  it("--json prints the raw status", async () => {
    const result = await kiln(["status", "--json", ...conn]);
    expect(result.exitCode).toBe(0);
    const status = JSON.parse(result.stdout) as AgentStatus;
    expect(status.agent.url).toBe(agent.url);
    const hello = status.apps.find((app) => app.name === "hello");
    expect(hello?.functions.map((fn) => fn.name).sort()).toEqual([
      "add",
      "countdown",
      "embed",
      "fail",
      "rich",
      "slow",
      "square",
      "sumOfSquares",
    ]);
  });
});

describe("kiln status: each host's GPUs", () => {
  let root: string;
  let store: Store;
  let gpuAgent: Agent;
  let plainAgent: Agent | undefined;
  const status = async (on: Agent) => {
    const result = await kiln(["status", "--url", on.url, "--token", on.token]);
    expect(result.exitCode, result.stderr).toBe(0);
    return result.stdout.split("\n");
  };
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "kiln-cli-gpus-"));
    // One store for both agents (as Redis would be): each sees the other in its cluster view.
    store = await openStore({ kind: "embedded", dir: join(root, "store") });
    gpuAgent = await startWithGpus("A100-80GB:2", () =>
      Agent.start({ stateDir: join(root, "gpu"), port: 0, store, token: "gpu-test" }),
    );
    // One warm container holding one of the two A100s.
    await writeFile(
      join(root, "held.ts"),
      'export function held(): string {\n  return "held";\n}\n',
    );
    const spec = join(root, "app.json");
    await writeFile(
      spec,
      JSON.stringify({
        name: "gpus",
        functions: { held: { handler: "./held.ts#held", gpu: "A100", minContainers: 1 } },
      }),
    );
    const deployed = await kiln([
      "deploy",
      "--spec",
      spec,
      "--url",
      gpuAgent.url,
      "--token",
      gpuAgent.token,
    ]);
    expect(deployed.exitCode, deployed.stderr).toBe(0);
    const client = await connect({ url: gpuAgent.url, token: gpuAgent.token });
    await waitFor(
      "the warm container to hold a GPU",
      async () => (await client.status()).enforcement.gpus.free === 1,
      30_000,
    );
  });

  afterAll(async () => {
    await plainAgent?.stop();
    await gpuAgent?.stop();
    await store?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it("a single agent: a host line with its GPUs by type, free and in use", async () => {
    const lines = await status(gpuAgent);
    expect(lines.filter((line) => line.startsWith("host:"))).toEqual([
      "host: GPUs 2 x A100-80GB (1 free, 1 in use)",
    ]);
    expect(lines.some((line) => line.startsWith("cluster:"))).toBe(false);
  });

  it("a cluster: each host line names its GPUs with how many are free and in use, through any agent; none for a host without", async () => {
    plainAgent = await startWithGpus("none", () =>
      Agent.start({ stateDir: join(root, "plain"), port: 0, store, token: "gpu-test" }),
    );
    const plain = plainAgent;
    await waitFor(
      "both hosts in the cluster view",
      async () => (await status(plain)).some((line) => line.startsWith("cluster: 2 agents")),
      20_000,
    );
    const hostLine = (lines: string[], agentUrl: string) =>
      lines.find((line) => line.slice(4).startsWith(`${agentUrl}  `));

    const throughPlain = await status(plain);
    expect(throughPlain.some((line) => line.startsWith("host:"))).toBe(false);
    // The other host's allocation as it advertised it.
    expect(hostLine(throughPlain, gpuAgent.url)).toMatch(
      new RegExp(
        `^ {4}${escape(gpuAgent.url)} {2}cpu \\S+ {2}containers 1 \\(\\d busy\\) {2}GPUs 2 x A100-80GB \\(1 free, 1 in use\\)$`,
      ),
    );
    expect(hostLine(throughPlain, plain.url)).toMatch(
      new RegExp(`^ {2}\\* ${escape(plain.url)} {2}cpu \\S+ {2}containers 0 \\(0 busy\\)$`),
    );

    const throughGpu = await status(gpuAgent);
    expect(hostLine(throughGpu, gpuAgent.url)).toMatch(
      new RegExp(
        `^ {2}\\* ${escape(gpuAgent.url)} {2}cpu \\S+ {2}containers 1 \\(\\d busy\\) {2}GPUs 2 x A100-80GB \\(1 free, 1 in use\\)$`,
      ),
    );
    expect(hostLine(throughGpu, plain.url)).not.toContain("GPUs");
  });
});

describe("kiln logs", () => {
  it("shows the handler's output as 'ts [fn call-id] text' after an embed call", async () => {
    await kiln(["call", "hello", "embed", "kiln", ...conn]);
    let stdout = "";
    await waitFor("the Embedder line in kiln logs", async () => {
      stdout = (await kiln(["logs", "hello", "embed", ...conn])).stdout;
      return stdout.includes("Embedder loaded its vocabulary");
    });
    expect(stdout).toMatch(
      /^\d{4}-\d\d-\d\dT\S+Z \[embed( \S+)?\] Embedder loaded its vocabulary$/m,
    );
    expect(stdout).toMatch(/^\S+ \[embed\] \(system\) container \S+ ready in \d+ ms$/m);
    for (const line of linesOf(stdout)) expect(line).toMatch(/^\S+Z \[embed[ \]]/); // only that function
  });

  it("--tail limits the lines", async () => {
    const result = await kiln(["logs", "hello", "--tail", "1", ...conn]);
    expect(result.exitCode).toBe(0);
    expect(linesOf(result.stdout)).toHaveLength(1);
  });

  it("--follow streams new lines until Ctrl-C, then exits 0", async () => {
    const child = kilnChild(["logs", "hello", "add", "--follow", ...conn]);
    let stdout = "";
    child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    try {
      const call = await kiln(["call", "hello", "add", "1", "2", ...conn]);
      expect(call.stdout).toBe("3");
      await waitFor("the add container line in the followed logs", () =>
        /\[add\] \(system\) container \S+ ready/.test(stdout),
      );
    } finally {
      child.kill("SIGINT");
    }
    const result = await child;
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toBe("");
  });

  it("an unknown app exits 1", async () => {
    const result = await kiln(["logs", "ghost", ...conn]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain("error (NotFoundError): app 'ghost' is not deployed");
  });
});

describe("errors and usage", () => {
  it("a wrong token exits 4 (the agent refuses) with one authentication line and no stack", async () => {
    const result = await kiln(["status", "--url", agent.url, "--token", "wrong"]);
    expect(result.exitCode).toBe(4);
    expect(linesOf(result.stderr)).toHaveLength(1);
    expect(result.stderr).toMatch(/^error \(UnauthenticatedError\): missing or wrong bearer token/);
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });

  it("no token anywhere says where one comes from", async () => {
    const result = await kiln(["status", "--url", agent.url]);
    expect(result.exitCode).toBe(4);
    expect(result.stderr).toMatch(
      /^error \(UnauthenticatedError\): no token: pass --token, set KILN_TOKEN/,
    );
  });

  it("KILN_URL and KILN_TOKEN are used when no flag is given", async () => {
    const result = await kiln(["call", "hello", "square", "3"], {
      env: { KILN_URL: agent.url, KILN_TOKEN: agent.token },
    });
    expect(result.stdout).toBe("9");
  });

  it("an unreachable agent exits 4 saying so", async () => {
    const port = await freePort();
    const result = await kiln(["status", "--url", `http://127.0.0.1:${port}`, "--token", "t"]);
    expect(result.exitCode).toBe(4);
    expect(linesOf(result.stderr)).toEqual([
      expect.stringMatching(/^error \(UnavailableError\): cannot reach the kiln agent at/),
    ]);
  });

  it("bad flags and values exit 2", async () => {
    const unknownCommand = await kiln(["launch"]);
    expect(unknownCommand.exitCode).toBe(2);
    expect(unknownCommand.stderr).toContain("error: unknown command 'launch'");
    const unknownFlag = await kiln(["status", "--bogus"]);
    expect(unknownFlag.exitCode).toBe(2);
    expect(unknownFlag.stderr).toContain("error: unknown option '--bogus'");
    const missingArg = await kiln(["call", "hello"]);
    expect(missingArg.exitCode).toBe(2);
    const missingSpec = await kiln(["deploy"]);
    expect(missingSpec.exitCode).toBe(2);
    expect(missingSpec.stderr).toContain("--spec");
    const badPort = await kiln(["agent", "--port", "70000"]);
    expect(badPort.exitCode).toBe(2);
    expect(badPort.stderr).toBe(
      "error (InvalidError): --port: must be at most 65535 (got '70000')",
    );
    const badTail = await kiln(["logs", "hello", "--tail", "many", ...conn]);
    expect(badTail.exitCode).toBe(2);
    expect(badTail.stderr).toContain("--tail: expected a whole number");
    const badUrl = await kiln(["status", "--url", "not a url", "--token", "t"]);
    expect(badUrl.exitCode).toBe(2);
    const badJson = await kiln(["call", "hello", "square", '{"x":', ...conn]);
    expect(badJson.exitCode).toBe(2);
    expect(badJson.stderr).toContain("argument 1: looks like JSON but is not");
  });

  it("--version prints the version", async () => {
    const result = await kiln(["--version"]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe(KILN_VERSION);
  });
});

describe("kiln stop", () => {
  it("stops the app, says what was stopped, and status no longer lists it", async () => {
    const result = await kiln(["stop", "hello", "--grace", "5", ...conn]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(
      /^stopped app 'hello' version 1: 8 function\(s\) \(.*square.*\), \d+ container\(s\)/,
    );
    const status = await kiln(["status", ...conn]);
    expect(status.exitCode).toBe(0);
    expect(status.stdout).not.toContain("app hello");
    expect(status.stdout).toContain("no apps deployed");
    const again = await kiln(["stop", "hello", ...conn]);
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toContain("error (NotFoundError): app 'hello' is not deployed");
  });

  it("an app with dicts or queues is stopped only with --yes (no terminal to ask), and says what it deleted", async () => {
    const client = await connect({ url: agent.url, token: agent.token });
    const spec = { name: "withdata", dicts: { cache: {} }, queues: { jobs: {} } };
    await deployApp(client.http, spec, tmpdir());
    await client.dict("withdata", "cache").put("k", 1);
    const refused = await kiln(["stop", "withdata", ...conn]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toBe(
      "error (InvalidError): stopping 'withdata' deletes its dict(s) cache and queue(s) jobs with their data; pass --yes to confirm",
    );
    expect(await client.dict("withdata", "cache").get("k")).toBe(1);
    const stopped = await kiln(["stop", "withdata", "--yes", ...conn]);
    expect(stopped.exitCode, stopped.stderr).toBe(0);
    expect(stopped.stdout).toMatch(
      /^stopped app 'withdata' version 1: 0 function\(s\), .*; deleted dict\(s\) cache and queue\(s\) jobs with their data$/,
    );
  });
});
