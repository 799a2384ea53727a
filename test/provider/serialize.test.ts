/**
 * The round trip `pulumi up` makes with the provider: serialized by `pulumi.runtime.serializeFunction`
 * in the program's process, then loaded from that text in a fresh Node process (working directory:
 * the infra project, kiln in its node_modules) and run against a real agent. The endpoint and token
 * arrive as inputs; the serialized text holds neither.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Agent } from "../../runtime/agent/agent.js";
import { makeProgram, removeDir, repoRoot } from "../components/helpers.js";
import { deploymentInputs, HANDLERS_V1, helloSpec } from "./helpers.js";

const fixtures = join(repoRoot, "test", "provider", "fixtures");
let agent: Agent;
let stateDir: string;
let project: string;
const token = `tok-${randomUUID()}`;

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "kiln-serialize-"));
  agent = await Agent.start({ stateDir, port: 0, token });
  project = await makeProgram({ "functions.ts": HANDLERS_V1 });
});

afterAll(async () => {
  await agent?.stop();
  await removeDir(stateDir);
  await removeDir(project);
});

describe("the serialized provider", () => {
  let text: string;
  let inputsFile: string;
  const name = `ser-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    const inputs = await deploymentInputs(project, agent.url, token, helloSpec(name));
    inputsFile = join(project, "inputs.json");
    await writeFile(inputsFile, JSON.stringify(inputs));
    const out = join(project, "provider.txt");
    // The program's process: registers the AppDeployment and keeps the __provider text Pulumi would send.
    const serialized = await execa(
      process.execPath,
      [join(fixtures, "serialize-provider.mjs"), inputsFile, out],
      { cwd: project, reject: false, timeout: 60_000 },
    );
    expect(serialized.stderr).toBe("");
    text = await readFile(out, "utf8");
  });

  it("captures neither the token nor the endpoint, and imports its work at call time", () => {
    expect(text).toContain("exports.handler");
    expect(text).not.toContain(token);
    expect(text).not.toContain(agent.url);
    expect(text).toContain(`import("kiln/provider/ops")`);
  });

  it("runs in a fresh process: check, create, no-op diff, in-place update, read, delete", async () => {
    const providerFile = join(project, "provider.txt");
    const result = await execa(
      process.execPath,
      [
        join(fixtures, "run-provider.cjs"),
        providerFile,
        inputsFile,
        join(repoRoot, "node_modules", "require-from-string"),
      ],
      {
        cwd: project,
        reject: false,
        timeout: 60_000,
        env: { KILN_TOKEN: undefined, KILN_URL: undefined },
      },
    );
    expect(result.stderr).toBe("");
    expect(result.exitCode).toBe(0);
    const out = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(out["check"]).toMatchObject({ failures: [] });
    expect(out["create"]).toMatchObject({ id: name, version: 1 });
    expect(out["noop"]).toMatchObject({ changes: false, replaces: [] });
    expect(out["scaledDiff"]).toMatchObject({ changes: true, replaces: [] });
    expect(out["update"]).toEqual({ version: 2 });
    expect(out["read"]).toBe(2);
    expect(out["readAfterDelete"]).toEqual({});
    expect(agent.apps.list().map((a) => a.name)).not.toContain(name);
  });
});

it("the provider resolves kiln from the project it runs in: without kiln there, a module error at call time", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kiln-serialize-empty-"));
  try {
    // Without kiln resolvable from the working directory, the provider fails at call time, loudly.
    await writeFile(
      join(dir, "provider.txt"),
      'exports.handler = () => ({ async check() { return import("kiln/provider/ops"); } });',
    );
    const result = await execa(
      process.execPath,
      [
        "-e",
        `require(${JSON.stringify(join(repoRoot, "node_modules", "require-from-string"))})(require("fs").readFileSync("provider.txt","utf8")).handler().check().catch((e) => { console.log(e.code); })`,
      ],
      { cwd: dir, reject: false, timeout: 30_000 },
    );
    expect(result.stdout.trim()).toBe("ERR_MODULE_NOT_FOUND");
  } finally {
    await removeDir(dir);
  }
});
