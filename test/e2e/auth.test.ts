/** Every route but /healthz (and public web endpoints) needs the bearer token; a 401 executes nothing. */
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../../runtime/client/index.js";
import { encode } from "../../runtime/serde.js";
import { deployFixture, startAgent, type Harness } from "./harness.js";

let h: Harness;

beforeAll(async () => {
  h = await startAgent();
  await deployFixture(h.kiln);
});

afterAll(async () => h?.close());

const routes: [string, string, unknown?][] = [
  ["GET", "/v1/apps"],
  ["GET", "/v1/apps/e2e"],
  ["DELETE", "/v1/apps/e2e"],
  ["PUT", "/v1/apps/e2e", { spec: {}, bundles: {} }],
  ["PUT", `/v1/artifacts/${"a".repeat(64)}`, { code: "x", exports: [] }],
  ["POST", "/v1/apps/e2e/functions/echo/calls", { args: encode([1]) }],
  ["POST", "/v1/apps/e2e/functions/echo/maps"],
  ["GET", "/v1/calls/fc-x"],
  ["GET", "/v1/calls/fc-x/result"],
  ["POST", "/v1/calls/fc-x/cancel"],
  ["GET", "/v1/status"],
  ["GET", "/v1/apps/e2e/logs"],
  ["GET", "/web/e2e/webGet"],
];

describe("authentication", () => {
  for (const [method, path, body] of routes) {
    for (const header of [
      undefined,
      "Bearer wrong-token",
      `Basic ${Buffer.from("a:b").toString("base64")}`,
    ]) {
      it(`${method} ${path} with ${header ? header.split(" ")[0] : "no"} credentials: 401`, async () => {
        const response = await fetch(new URL(path, h.agent.url), {
          method,
          headers: {
            ...(header ? { authorization: header } : {}),
            ...(body === undefined ? {} : { "content-type": "application/json" }),
          },
          body: body === undefined ? null : JSON.stringify(body),
        });
        expect(response.status).toBe(401);
        const json = (await response.json()) as { error: { code: string } };
        expect(json.error.code).toBe("UNAUTHENTICATED");
      });
    }
  }

  it("nothing was executed or changed by the refused requests", async () => {
    expect((await h.kiln.apps()).map((a) => a.name)).toEqual(["e2e"]);
    const status = await h.kiln.status();
    const echo = status.apps[0]?.functions.find((f) => f.name === "echo");
    expect(echo?.queue.pending).toBe(0);
    expect(echo?.coldStarts).toBe(0);
  });

  it("the scheme is case-insensitive: bearer, BEARER and Bearer with two spaces are accepted", async () => {
    for (const scheme of ["bearer ", "BEARER ", "Bearer  "]) {
      const response = await fetch(new URL("/v1/apps", h.agent.url), {
        headers: { authorization: `${scheme}${h.agent.token}` },
      });
      expect(response.status, scheme).toBe(200);
    }
  });

  it("/healthz answers without a token and reveals only liveness and version", async () => {
    const response = await fetch(new URL("/healthz", h.agent.url));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true, version: h.agent.version });
  });

  it("the client with a wrong token gets UnauthenticatedError", async () => {
    const kiln = await connect({ url: h.agent.url, token: "wrong" });
    await expect(kiln.apps()).rejects.toMatchObject({ name: "UnauthenticatedError" });
  });

  it("the generated token is stored mode 0600 in the state dir, and connect() reads it from there", async () => {
    const info = await stat(join(h.stateDir, "token"));
    expect(info.mode & 0o777).toBe(0o600);
    const kiln = await connect({ url: h.agent.url, stateDir: h.stateDir });
    expect((await kiln.apps()).length).toBe(1);
  });
});
