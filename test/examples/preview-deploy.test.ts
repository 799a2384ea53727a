/**
 * `kiln preview <program-dir>` and `kiln deploy <program-dir>` through the built CLI against a real
 * agent: a new app, no change right after a deploy, the diff of a change (snapshot), JSON, and the
 * errors people see.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Agent } from "../../runtime/agent/agent.js";
import { kiln, makeProgram, program, removeDir } from "./helpers.js";

const LOCAL = `{ target: { kind: "local" } }`;
const FUNCTIONS_V1 = `export function square(x: number): number { return x * x; }\nexport function add(a: number, b: number): number { return a + b; }\n`;
const FUNCTIONS_V2 = `${FUNCTIONS_V1}export function cube(x: number): number { return x * x * x; }\n`;
const MODEL = `export class Model { embed(text: string): number[] { return [text.length]; } }\n`;
const V1 = program(
  `
new ServerlessFunction("square", { app, handler: "./functions.ts#square", maxContainers: 2 });
new ServerlessFunction("add", { app, handler: "./functions.ts#add" });
new ServerlessFunction("model", { app, handler: "./model.ts#Model.embed", env: { MODE: "a" } });
`,
  { pool: LOCAL },
);
const V2 = program(
  `
const square = new ServerlessFunction("square", { app, handler: "./functions.ts#square", maxContainers: 4, cpu: 0.5, retries: 2 });
new ServerlessFunction("cube", { app, handler: "./functions.ts#cube" });
new ServerlessFunction("model", { app, handler: "./model.ts#Model.embed", env: { MODE: "b" }, secrets: { API_KEY: pulumi.secret("sk-1") } });
new DistributedDict("cache", { app, maxEntries: 100 });
new Schedule("nightly", { app, function: square, cron: "0 3 * * *" });
`,
  { pool: LOCAL },
);

let agent: Agent;
let stateDir: string;
let dir: string;
let env: Record<string, string>;

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "kiln-preview-"));
  agent = await Agent.start({ stateDir, port: 0, token: `tok-${randomUUID()}` });
  env = { KILN_URL: agent.url, KILN_TOKEN: agent.token };
  dir = await makeProgram({ "index.ts": V1, "functions.ts": FUNCTIONS_V1, "model.ts": MODEL });
});

afterAll(async () => {
  await agent?.stop();
  await removeDir(stateDir);
  await removeDir(dir);
});

/** Output with the agent's URL and content hashes made stable. */
const normalize = (text: string) =>
  text.replaceAll(agent.url, "http://AGENT").replace(/\b[0-9a-f]{12}\b/g, "<sha>");

describe("kiln preview / deploy <program-dir>", () => {
  it("a new app: everything to add", async () => {
    const result = await kiln(["preview", dir], { env });
    expect(result.stderr).toBe("");
    expect(result.exitCode).toBe(0);
    expect(normalize(result.stdout)).toBe(
      [
        "app demo on http://AGENT: new app",
        "  + function add",
        "  + function model",
        "  + function square",
        "  3 to add, 0 to change, 0 to remove",
      ].join("\n"),
    );
  });

  it("deploy applies it, through the provider; a preview right after shows no changes", async () => {
    const deployed = await kiln(["deploy", dir], { env });
    expect(deployed.stderr).toBe("");
    expect(deployed.exitCode).toBe(0);
    expect(normalize(deployed.stdout)).toContain("deployed app 'demo' version 1 (spec <sha>)");
    expect(agent.apps.list().map((a) => a.name)).toContain("demo");

    const again = await kiln(["preview", dir], { env });
    expect(again.exitCode).toBe(0);
    expect(normalize(again.stdout)).toBe("app demo on http://AGENT (version 1): no changes");
    const expectNone = await kiln(["preview", dir, "--expect-no-changes"], { env });
    expect(expectNone.exitCode).toBe(0);
    expect(expectNone.stderr).toBe("");
    const redeploy = await kiln(["deploy", dir], { env });
    expect(redeploy.stdout).toContain("app 'demo' unchanged at version 1");
  });

  it("a change: functions added, removed and changed, each field old -> new; code and secrets without their values", async () => {
    await writeFile(join(dir, "index.ts"), V2);
    await writeFile(join(dir, "functions.ts"), FUNCTIONS_V2);
    const result = await kiln(["preview", dir], { env });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).not.toContain("sk-1");
    // --expect-no-changes: the same diff, then exit 7 (and --json too).
    const gated = await kiln(["preview", dir, "--expect-no-changes"], { env });
    expect(gated.exitCode).toBe(7);
    expect(gated.stdout).toBe(result.stdout);
    expect(gated.stderr).toBe("error: --expect-no-changes: app 'demo' would change");
    const gatedJson = await kiln(["preview", dir, "--json", "--expect-no-changes"], { env });
    expect(gatedJson.exitCode).toBe(7);
    expect(normalize(result.stdout)).toMatchInlineSnapshot(`
      "app demo on http://AGENT (version 1):
        - function add
        + function cube
        ~ function model
            env.MODE: "a" -> "b"
            secrets.API_KEY: (none) -> [secret]
        ~ function square
            cpu.request: 0.125 -> 0.5
            maxContainers: 2 -> 4
            retries.maxRetries: 0 -> 2
            code: <sha> -> <sha>
        + dict cache
        + schedule nightly
        3 to add, 2 to change, 1 to remove"
    `);
  });

  it("--json: the same diff for machines", async () => {
    const result = await kiln(["preview", dir, "--json"], { env });
    expect(result.exitCode).toBe(0);
    const parsed = JSON.parse(result.stdout) as {
      apps: {
        app: string;
        version: number;
        diff: {
          counts: unknown;
          entries: { kind: string; name: string; action: string; fields: { field: string }[] }[];
        };
      }[];
    };
    expect(parsed.apps[0]).toMatchObject({
      app: "demo",
      version: 1,
      diff: { counts: { add: 3, change: 2, remove: 1 } },
    });
    const square = parsed.apps[0]?.diff.entries.find((e) => e.name === "square");
    expect(square?.fields.map((f) => f.field)).toEqual([
      "cpu.request",
      "maxContainers",
      "retries.maxRetries",
      "code",
    ]);
  });

  it("a code-only change shows as code on the functions of that file", async () => {
    await writeFile(join(dir, "index.ts"), V1);
    await writeFile(join(dir, "functions.ts"), FUNCTIONS_V1);
    await writeFile(join(dir, "model.ts"), MODEL.replace("text.length", "text.length + 1"));
    const result = await kiln(["preview", dir], { env });
    expect(normalize(result.stdout)).toBe(
      [
        "app demo on http://AGENT (version 1):",
        "  ~ function model",
        "      code: <sha> -> <sha>",
        "  0 to add, 1 to change, 0 to remove",
      ].join("\n"),
    );
    await writeFile(join(dir, "model.ts"), MODEL);
  });

  it("a bad argument fails before anything is sent: exit 2, one line naming the field", async () => {
    const bad = await makeProgram({
      "index.ts": program(
        `new ServerlessFunction("sq", { app, handler: "./functions.ts#square", memory: [256, 64] });`,
        { pool: LOCAL },
      ),
      "functions.ts": FUNCTIONS_V1,
    });
    try {
      const result = await kiln(["preview", bad], { env });
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toBe(
        `error (InvalidError): ServerlessFunction "sq": memory: limit 64 is below request 256`,
      );
    } finally {
      await removeDir(bad);
    }
  });

  it("a target kiln cannot reach without the Pulumi engine: a clear error naming 'pulumi up' and the endpoint target", async () => {
    const engine = await makeProgram({
      "index.ts": program("", { pool: `{ target: { kind: "docker" } as never }` }),
    });
    try {
      const result = await kiln(["deploy", engine], { env });
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toMatch(
        /GpuPool "pool": target\.kind: a "docker" pool provisions hosts, which needs the Pulumi engine: run 'pulumi up'.*with 'kiln deploy', use \{ kind: "endpoint", url, token \}/,
      );
    } finally {
      await removeDir(engine);
    }
  });

  it("no program there: exit 2 saying what it looked for", async () => {
    const empty = await mkdtemp(join(tmpdir(), "kiln-empty-"));
    try {
      const result = await kiln(["preview", empty], { env });
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain(
        "no Pulumi program found: expected Pulumi.yaml with 'main', or one of index.ts",
      );
    } finally {
      await removeDir(empty);
    }
  });

  it("deploy or preview with no agent answering: exit 4, naming the URL and how to start one", async () => {
    const noAgent = { KILN_URL: "http://127.0.0.1:9", KILN_TOKEN: "t" };
    const deployed = await kiln(["deploy", dir], { env: noAgent });
    expect(deployed.exitCode).toBe(4);
    expect(deployed.stdout).toBe("");
    expect(deployed.stderr).toBe(
      "error (UnavailableError): no agent answers at http://127.0.0.1:9 (app 'demo'): start one with 'kiln agent' (or point the GpuPool at one, KILN_URL), then deploy again",
    );
    for (const args of [
      ["preview", dir],
      ["preview", dir, "--json"],
    ]) {
      const result = await kiln(args, { env: noAgent });
      expect(result.exitCode).toBe(4);
      expect(result.stdout).toBe("");
      expect(result.stderr).toContain("no agent answers at http://127.0.0.1:9 (app 'demo')");
    }
    // An endpoint pool says so too.
    const endpoint = await makeProgram({
      "index.ts": program("", {
        pool: `{ target: { kind: "endpoint", url: "http://127.0.0.1:9", token: "t" } }`,
      }),
    });
    try {
      const result = await kiln(["preview", endpoint], { env });
      expect(result.exitCode).toBe(4);
      expect(result.stderr).toBe(
        "error (UnavailableError): no agent answers at http://127.0.0.1:9 (app 'demo', the pool's endpoint target): is it running, and does the url reach it?",
      );
    } finally {
      await removeDir(endpoint);
    }
  });

  it("a wrong token: exit 4", async () => {
    const result = await kiln(["preview", dir], { env: { ...env, KILN_TOKEN: "wrong" } });
    expect(result.exitCode).toBe(4);
    expect(result.stderr).toMatch(/^error \(UnauthenticatedError\)/);
  });
});
