/** Deploying: validation at the door, versions, in-place scaling updates, rolling code updates, stop. */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidError } from "../../runtime/client/index.js";
import { bundleFile } from "../../runtime/deploy/bundle.js";
import { deployApp } from "../../runtime/deploy/deploy.js";
import type * as h from "./fixtures/handlers.js";
import { deployFixture, fixtureSpec, fixturesDir, startAgent, type Harness } from "./harness.js";
import { NOT_HUNG_MS, waitFor } from "../support/wait.js";

let harness: Harness;

beforeAll(async () => {
  harness = await startAgent();
});

afterAll(async () => harness?.close());

type Spec = Record<string, unknown> & { functions: Record<string, Record<string, unknown>> };

async function spec(): Promise<Spec> {
  return (await fixtureSpec()) as Spec;
}

describe("validation at deploy", () => {
  it("a bad spec is rejected with the field path and range, before anything runs", async () => {
    const bad = await spec();
    bad.functions["echo"] = {
      handler: "./handlers.ts#echo",
      memory: [128, 64],
      timeout: 0,
      bogus: true,
    };
    const error = (await deployApp(harness.kiln.http, bad, fixturesDir).catch(
      (e: unknown) => e,
    )) as InvalidError;
    expect(error).toBeInstanceOf(InvalidError);
    expect(error.message).toContain("functions.echo.memory: limit 64 is below request 128");
    expect(error.message).toContain("functions.echo.timeout");
    expect(error.message).toContain("functions.echo.bogus");
    expect(await harness.kiln.apps()).toEqual([]);
  });

  it("the agent itself rejects a bad spec over raw HTTP (not only the client)", async () => {
    const response = await fetch(new URL("/v1/apps/e2e", harness.agent.url), {
      method: "PUT",
      headers: {
        authorization: `Bearer ${harness.agent.token}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({
        spec: { name: "e2e", functions: { f: { handler: "./x.ts#f", cpu: -1 } } },
        bundles: {},
      }),
    });
    expect(response.status).toBe(400);
    const json = (await response.json()) as { error: { type: string; message: string } };
    expect(json.error.type).toBe("InvalidError");
    expect(json.error.message).toContain("functions.f.cpu");
  });

  it("a handler naming a missing export is rejected with the exports that exist", async () => {
    const bad = await spec();
    bad.functions["echo"] = { handler: "./handlers.ts#ecoh" };
    await expect(deployApp(harness.kiln.http, bad, fixturesDir)).rejects.toMatchObject({
      name: "InvalidError",
      message: expect.stringMatching(
        /functions\.echo\.handler: \.\/handlers\.ts has no export 'ecoh'; it exports: .*echo/,
      ),
    });
  });

  it("a handler file that does not exist is rejected naming the file and where it was looked for", async () => {
    const bad = await spec();
    bad.functions = { oops: { handler: "./missing-file.ts#x" } };
    await expect(deployApp(harness.kiln.http, bad, fixturesDir)).rejects.toMatchObject({
      name: "InvalidError",
      message: expect.stringMatching(
        /handler file \.\/missing-file\.ts does not exist \(looked for \/.*missing-file\.ts\)/,
      ),
    });
  });
});

describe("versions", () => {
  it("deploys, and deploying the same thing again changes nothing", async () => {
    const first = await deployFixture(harness.kiln);
    expect(first.changed).toBe(true);
    expect(first.app.version).toBe(1);
    const again = await deployFixture(harness.kiln);
    expect(again.changed).toBe(false);
    expect(again.app.version).toBe(1);
    expect(again.artifacts.every((a) => !a.uploaded)).toBe(true);
  });

  it("kiln's client stays an import in the bundle, which the worker resolves to the agent's kiln", async () => {
    const artifact = await bundleFile(fixturesDir, "./handlers.ts");
    expect(artifact.code).toMatch(/from "kiln\/client"/);
    // Bundled, the client (zod, undici) made this file 5.5 MB.
    expect(artifact.code.length).toBeLessThan(100_000);
    await deployFixture(harness.kiln);
    // `nested` calls another function through kiln/client from inside its container.
    expect(await harness.kiln.function<typeof h.nested>("e2e", "nested").remote(3)).toEqual([
      100, 101, 102,
    ]);
  });

  it("a scaling-only change updates in place: the same container keeps serving", async () => {
    const pidFn = harness.kiln.function<typeof h.pid>("e2e", "pid");
    const before = await pidFn.remote();
    const scaled = await deployFixture(harness.kiln, (s) => {
      (s["functions"] as Spec["functions"])["pid"] = {
        handler: "./handlers.ts#pid",
        maxContainers: 3,
        scaledownWindow: 120,
      };
    });
    expect(scaled.app.version).toBe(2);
    expect(await pidFn.remote()).toBe(before);
  });

  it("a code change: in-flight inputs finish on the old version, new inputs run the new one", async () => {
    const slowOld = await harness.kiln
      .function<typeof h.sleep>("e2e", "sleep")
      .spawn(1_000, "old finished");
    await waitFor("the old input to run", async () =>
      (await slowOld.status()) === "running" ? true : undefined,
    );
    const version = harness.kiln.function<typeof h.version>("e2e", "version");
    expect(await version.remote()).toBe("v1");
    const v2 = await spec();
    for (const fn of Object.values(v2.functions))
      fn["handler"] = `./v2/${String(fn["handler"]).slice(2)}`;
    const deployed = await deployApp(harness.kiln.http, v2, fixturesDir);
    expect(deployed.changed).toBe(true);
    expect(await version.remote()).toBe("v2");
    expect(await slowOld.get({ timeoutMs: NOT_HUNG_MS })).toBe("old finished");
  });
});

describe("web endpoints", () => {
  it("GET passes the query as the argument and returns JSON; private by default", async () => {
    const url = new URL("/web/e2e/webGet?name=kiln&n=3", harness.agent.url);
    expect((await fetch(url)).status).toBe(401);
    const response = await fetch(url, {
      headers: { authorization: `Bearer ${harness.agent.token}` },
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ got: { name: "kiln", n: "3" }, when: "now" });
  });

  it("a public POST endpoint takes a JSON body without a token; the wrong method is 405", async () => {
    const url = new URL("/web/e2e/webPublic", harness.agent.url);
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ a: [1, 2] }),
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ got: { a: [1, 2] }, when: "now" });
    expect((await fetch(url)).status).toBe(405);
  });

  it("a function that is not a web endpoint is refused", async () => {
    const response = await fetch(new URL("/web/e2e/echo", harness.agent.url), {
      headers: { authorization: `Bearer ${harness.agent.token}` },
    });
    expect(response.status).toBe(400);
  });
});

describe("stop", () => {
  it("stopping an app lets in-flight inputs finish, fails queued ones, and removes it", async () => {
    const until = harness.kiln.function<typeof h.untilFile>("e2e", "untilFile");
    // The four in flight run until the test lets them end, however staggered their cold starts.
    const release = join(await mkdtemp(join(tmpdir(), "kiln-stop-")), "release");
    const running = await Promise.all(
      Array.from({ length: 4 }, () => until.spawn(release, "drained")),
    );
    const queued = await Promise.all(
      Array.from({ length: 3 }, () => until.spawn(release, "never")),
    );
    await waitFor("four inputs to run", async () =>
      (await Promise.all(running.map((c) => c.status()))).every((s) => s === "running"),
    );
    // The stop waits for the in-flight inputs: let them end once the app is gone from the listing.
    const stopped = harness.kiln.http.request("DELETE", "/v1/apps/e2e");
    await waitFor("the app to be unlisted", async () => (await harness.kiln.apps()).length === 0);
    await writeFile(release, "");
    await stopped;
    for (const call of running) expect(await call.get({ timeoutMs: NOT_HUNG_MS })).toBe("drained");
    for (const call of queued)
      await expect(call.get({ timeoutMs: NOT_HUNG_MS })).rejects.toMatchObject({
        name: "NotFoundError",
      });
    expect(await harness.kiln.apps()).toEqual([]);
  });
});

describe("per-container maxima from the host", () => {
  it("a request above what this host can give one container is refused at deploy, naming the maximum", async () => {
    const bad = await spec();
    bad.functions["echo"] = { handler: "./handlers.ts#echo", gpu: "A100", cpu: 48 };
    const error = (await deployApp(harness.kiln.http, bad, fixturesDir).catch(
      (e: unknown) => e,
    )) as InvalidError;
    expect(error).toBeInstanceOf(InvalidError);
    expect(error.message).toContain("functions.echo.gpu");
    expect(error.message).toContain("pool maximum of 0 GPUs");
    expect(error.message).toContain("functions.echo.cpu");
  });
});
