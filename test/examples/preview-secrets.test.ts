/**
 * Secrets never print (issue 18): a secret Output in a function's `env`, its `secrets`, another
 * function field, a schedule's `args` and a dict's setting shows as [secret] in every output of
 * `kiln preview` and `kiln deploy` (text and JSON) and in `kiln status`; a change to one reads
 * "(secret) changed", a change of a `secrets` value alone included.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Agent } from "../../runtime/agent/agent.js";
import { kiln, makeProgram, program, removeDir } from "./helpers.js";

const FUNCTIONS = `export function square(x: number): number { return x * x; }\n`;

/** The program with every secret value given: `v` picks the values (1 or 2). */
function secretProgram(v: { env: number; key: number; timeout: number; arg: number; max: number }) {
  return program(
    `
const fa = new ServerlessFunction("fa", { app, handler: "./functions.ts#square", env: { MODE: "plain", TOKEN: pulumi.secret("env-secret-${v.env}") }, timeout: pulumi.secret(${v.timeout}) });
new ServerlessFunction("fb", { app, handler: "./functions.ts#square", secrets: { API_KEY: pulumi.secret("sk-secret-${v.key}") } });
new Schedule("nightly", { app, function: fa, cron: "0 3 * * *", args: [pulumi.secret("arg-secret-${v.arg}")] });
new DistributedDict("cache", { app, maxEntries: pulumi.secret(${v.max}) });
`,
    { pool: `{ target: { kind: "local" } }` },
  );
}
const V1 = { env: 1, key: 1, timeout: 4242, arg: 1, max: 4321 };
const V2 = { env: 2, key: 2, timeout: 4243, arg: 2, max: 4322 };
const LITERALS = [
  "env-secret-1",
  "env-secret-2",
  "sk-secret-1",
  "sk-secret-2",
  "arg-secret-1",
  "arg-secret-2",
  "4242",
  "4243",
  "4321",
  "4322",
];

let agent: Agent;
let stateDir: string;
let dir: string;
let env: Record<string, string>;

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "kiln-secrets-"));
  agent = await Agent.start({ stateDir, port: 0, token: `tok-${randomUUID()}` });
  env = { KILN_URL: agent.url, KILN_TOKEN: agent.token };
  dir = await makeProgram({ "index.ts": secretProgram(V1), "functions.ts": FUNCTIONS });
});

afterAll(async () => {
  await agent?.stop();
  await removeDir(stateDir);
  await removeDir(dir);
});

const normalize = (text: string) =>
  text.replaceAll(agent.url, "http://AGENT").replace(/\b[0-9a-f]{12,64}\b/g, "<sha>");

/** Run the CLI; no secret value anywhere in what it prints. */
async function clean(args: string[]) {
  const result = await kiln(args, { env });
  const printed = normalize(`${result.stdout}\n${result.stderr}`);
  for (const literal of LITERALS)
    expect(printed, `${args.join(" ")} printed ${literal}`).not.toContain(literal);
  return result;
}

describe("secrets never print", () => {
  it("preview, deploy, status: no secret value in text or JSON", async () => {
    for (const args of [
      ["preview", dir],
      ["preview", dir, "--json"],
    ]) {
      const result = await clean(args);
      expect(result.exitCode, result.stderr).toBe(0);
    }
    const deployed = await clean(["deploy", dir, "--json"]);
    expect(deployed.exitCode, deployed.stderr).toBe(0);
    for (const args of [["status"], ["status", "--json"]]) {
      const status = await clean([...args, "--url", agent.url, "--token", agent.token]);
      expect(status.exitCode, status.stderr).toBe(0);
    }
    const again = await clean(["preview", dir, "--expect-no-changes"]);
    expect(again.exitCode, again.stdout).toBe(0);
  });

  it("every secret value changed: [secret] / (secret) changed exactly there", async () => {
    await writeFile(join(dir, "index.ts"), secretProgram(V2));
    const text = await clean(["preview", dir]);
    expect(text.exitCode, text.stderr).toBe(0);
    expect(normalize(text.stdout)).toMatchInlineSnapshot(`
      "app demo on http://AGENT (version 1):
        ~ function fa
            startupTimeout: (secret) changed
            timeout: (secret) changed
            secrets.TOKEN: (secret) changed
        ~ function fb
            secrets.API_KEY: (secret) changed
        ~ dict cache
            maxEntries: (secret) changed
        ~ schedule nightly
            args: (secret) changed
        0 to add, 4 to change, 0 to remove"
    `);
    const json = await clean(["preview", dir, "--json"]);
    const parsed = JSON.parse(json.stdout) as {
      apps: {
        diff: {
          entries: {
            name: string;
            fields: { field: string; old: unknown; new: unknown; secret?: boolean }[];
          }[];
        };
      }[];
    };
    const fields = parsed.apps[0]!.diff.entries.flatMap((e) =>
      e.fields.map((f) => ({ name: e.name, ...f })),
    );
    expect(fields.length).toBeGreaterThan(0);
    for (const field of fields)
      expect(field).toMatchObject({ old: "[secret]", new: "[secret]", secret: true });
  });

  it("a change of a secrets value alone previews as changed", async () => {
    await writeFile(join(dir, "index.ts"), secretProgram({ ...V1, key: 2 }));
    const result = await clean(["preview", dir]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(normalize(result.stdout)).toBe(
      [
        "app demo on http://AGENT (version 1):",
        "  ~ function fb",
        "      secrets.API_KEY: (secret) changed",
        "  0 to add, 1 to change, 0 to remove",
      ].join("\n"),
    );
    const gated = await clean(["preview", dir, "--expect-no-changes"]);
    expect(gated.exitCode).toBe(7);
    const deployed = await clean(["deploy", dir]);
    expect(deployed.exitCode, deployed.stderr).toBe(0);
    expect(deployed.stdout).toContain("secrets.API_KEY: (secret) changed");
  });
});
