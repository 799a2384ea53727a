/**
 * The AppDeployment provider's code against a real agent (in process, random port, temp state dir):
 * check, the diff semantics (no-op, scaling-only update in place, code change with a new hash,
 * rename replaces), create / update / delete / read.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Agent } from "../../runtime/agent/agent.js";
import { connect, type Kiln } from "../../runtime/client/index.js";
import { check, create, diff, read, remove, update } from "../../provider/ops.js";
import type { AppDeploymentInputs, AppDeploymentOutputs } from "../../provider/state.js";
import { removeDir } from "../components/helpers.js";
import { deploymentInputs, HANDLERS_V1, HANDLERS_V2, helloSpec } from "./helpers.js";

let agent: Agent;
let kiln: Kiln;
let stateDir: string;
let root: string;
let root2: string;

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "kiln-provider-"));
  root = await mkdtemp(join(tmpdir(), "kiln-provider-src-"));
  root2 = await mkdtemp(join(tmpdir(), "kiln-provider-src2-"));
  await writeFile(join(root, "functions.ts"), HANDLERS_V1);
  await writeFile(join(root2, "functions.ts"), HANDLERS_V2);
  agent = await Agent.start({ stateDir, port: 0, token: `tok-${randomUUID()}` });
  kiln = await connect({ url: agent.url, token: agent.token });
});

afterAll(async () => {
  await agent?.stop();
  for (const dir of [stateDir, root, root2]) await removeDir(dir);
});

const inputs = (spec = helloSpec(), extra: Partial<AppDeploymentInputs> = {}) =>
  deploymentInputs(extra.root ?? root, agent.url, agent.token, spec, extra);

describe("check", () => {
  it("accepts valid inputs", async () => {
    expect((await check(undefined, await inputs())).failures).toEqual([]);
  });

  it("names the input and the field path of each problem", async () => {
    const good = await inputs();
    const bad = {
      ...good,
      spec: helloSpec("prov-test", { timeout: 0 }),
      maxima: { cpu: 0.1 },
      bundles: {},
      endpoint: "nope",
    };
    const { failures } = await check(undefined, bad);
    expect(failures).toEqual(
      expect.arrayContaining([
        {
          property: "spec",
          reason: expect.stringMatching(
            /^functions\.square\.timeout: 0 is below the minimum 1 s/,
          ) as string,
        },
        {
          property: "spec",
          reason: expect.stringMatching(
            /^functions\.square\.cpu: request 0\.125 exceeds the pool maximum of 0\.1 cores/,
          ) as string,
        },
        { property: "endpoint", reason: `endpoint: expected an http(s) URL, got "nope"` },
      ]),
    );
    const renamed = await check(undefined, { ...good, appName: "other" });
    expect(renamed.failures).toEqual([
      { property: "spec", reason: `name: the spec names app "prov-test", not "other"` },
    ]);
  });
});

describe("diff: old outputs against new inputs", () => {
  let olds: AppDeploymentOutputs;
  beforeAll(async () => {
    olds = { ...(await inputs()), version: 1, digest: "d" };
  });

  it("nothing changed: no changes", async () => {
    expect(await diff("prov-test", olds, await inputs())).toEqual({
      changes: false,
      replaces: [],
      stables: [],
      deleteBeforeReplace: false,
    });
  });

  it("the same code at another path: no changes (root is not compared)", async () => {
    const elsewhere = await mkdtemp(join(tmpdir(), "kiln-provider-copy-"));
    try {
      await writeFile(join(elsewhere, "functions.ts"), HANDLERS_V1);
      const moved = await inputs(helloSpec(), { root: elsewhere });
      expect(moved.bundles).toEqual(olds.bundles);
      expect((await diff("prov-test", olds, moved)).changes).toBe(false);
    } finally {
      await removeDir(elsewhere);
    }
  });

  it("a scaling-only change updates in place", async () => {
    const result = await diff(
      "prov-test",
      olds,
      await inputs(helloSpec("prov-test", { maxContainers: 3 })),
    );
    expect(result).toMatchObject({ changes: true, replaces: [] });
  });

  it("a code change updates (new bundle, new hash), not replaces", async () => {
    const next = await inputs(helloSpec(), { root: root2 });
    expect(next.specHash).not.toBe(olds.specHash);
    expect(await diff("prov-test", olds, next)).toMatchObject({ changes: true, replaces: [] });
  });

  it("a rename replaces; so does another agent", async () => {
    expect(await diff("prov-test", olds, await inputs(helloSpec("prov-renamed")))).toMatchObject({
      changes: true,
      replaces: ["appName"],
    });
    expect(
      await diff("prov-test", olds, { ...(await inputs()), endpoint: "http://10.0.0.1:7070" }),
    ).toMatchObject({ replaces: ["endpoint"] });
  });

  it("a secret value change is a change, shown without its value", async () => {
    const withSecret = { ...olds, secrets: { square: { API_KEY: "one" } } };
    const next = { ...(await inputs()), secrets: { square: { API_KEY: "two" } } };
    expect(await diff("prov-test", withSecret, next)).toMatchObject({
      changes: true,
      replaces: [],
    });
  });
});

describe("create, update, delete, read against a real agent", () => {
  const name = `prov-${randomUUID().slice(0, 8)}`;
  let outs: AppDeploymentOutputs;

  it("create bundles, uploads and applies; the functions answer", async () => {
    const created = await create(await inputs(helloSpec(name)));
    outs = created.outs;
    expect(created.id).toBe(name);
    expect(outs.version).toBe(1);
    const deployed = await kiln.http.request<{ version: number; digest: string }>(
      "GET",
      `/v1/apps/${name}`,
    );
    expect(deployed).toMatchObject({ version: 1, digest: outs.digest });
    expect(await kiln.function<(x: number) => number>(name, "square").remote(7)).toBe(49);
  });

  it("a scaling-only update keeps the running containers' version (in place)", async () => {
    const before = await functionVersion(name, "square");
    const next = await inputs(helloSpec(name, { maxContainers: 2 }));
    expect((await diff(name, outs, next)).replaces).toEqual([]);
    const updated = await update(name, outs, next);
    expect(updated.outs.version).toBe(2);
    expect(updated.outs.specHash).not.toBe(outs.specHash);
    expect(await functionVersion(name, "square")).toBe(before);
    outs = updated.outs;
  });

  it("a code update rolls the function to a new version, with a new hash", async () => {
    const before = await functionVersion(name, "square");
    const updated = await update(
      name,
      outs,
      await inputs(helloSpec(name, { maxContainers: 2 }), { root: root2 }),
    );
    expect(updated.outs.version).toBe(3);
    expect(updated.outs.bundles).not.toEqual(outs.bundles);
    expect(updated.outs.specHash).not.toBe(outs.specHash);
    expect(await functionVersion(name, "square")).not.toBe(before);
    expect(await kiln.function<(x: number) => number>(name, "square").remote(5)).toBe(25);
    outs = updated.outs;
  });

  it("applying the same inputs again leaves the agent's version alone", async () => {
    const again = await update(
      name,
      outs,
      await inputs(helloSpec(name, { maxContainers: 2 }), { root: root2 }),
    );
    expect(again.outs.version).toBe(outs.version);
  });

  it("read reports the agent's version; delete stops the app; delete again is fine", async () => {
    expect((await read(name, outs)).props?.version).toBe(outs.version);
    await remove(name, outs, { graceMs: 1000 });
    await expect(kiln.http.request("GET", `/v1/apps/${name}`)).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
    await remove(name, outs);
    expect(await read(name, outs)).toEqual({});
  });

  it("no token: a clear error, nothing sent", async () => {
    await expect(create({ ...(await inputs(helloSpec(name))), token: "" })).rejects.toThrow(
      /no token for the agent at .*kiln agent/,
    );
  });
});

async function functionVersion(app: string, fn: string): Promise<string | undefined> {
  const status = await kiln.status();
  return status.apps.find((a) => a.name === app)?.functions.find((f) => f.name === fn)?.version;
}
