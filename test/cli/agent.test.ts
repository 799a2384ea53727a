/** `kiln agent` as a real process: listens, writes its token 0600, echoes worker logs, stops on SIGTERM. */
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { HELLO_SPEC, freePort, kiln, kilnChild } from "./helpers.js";
import { waitFor } from "../support/wait.js";

const cleanups: (() => Promise<void>)[] = [];

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

it("kiln agent serves, writes a 0600 token, echoes worker logs and exits 0 on SIGTERM", async () => {
  const stateDir = await mkdtemp(join(tmpdir(), "kiln-cli-agent-"));
  cleanups.push(() => rm(stateDir, { recursive: true, force: true }));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = kilnChild(["agent", "--port", String(port), "--state-dir", stateDir, "--cpu", "2"]);
  cleanups.push(async () => {
    if (child.exitCode === null) child.kill("SIGKILL");
    await child;
  });
  let stdout = "";
  child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()));

  await waitFor("the agent's /healthz", async () => (await fetch(`${url}/healthz`)).ok, 20_000);
  await waitFor("the agent's start line", () => stdout.includes("\n"));
  expect(stdout.split("\n")[0]).toBe(
    `kiln agent 0.1.0 listening on ${url} (token in ${join(stateDir, "token")}; state in ${stateDir})`,
  );
  expect((await stat(join(stateDir, "token"))).mode & 0o777).toBe(0o600);

  // No --url / --token: KILN_URL and the token file in KILN_STATE_DIR.
  const env = { KILN_URL: url, KILN_STATE_DIR: stateDir };
  const deployed = await kiln(["deploy", "--spec", HELLO_SPEC], { env });
  expect(deployed.exitCode).toBe(0);
  const called = await kiln(["call", "hello", "embed", "kiln"], { env });
  expect(called.exitCode).toBe(0);
  await waitFor("the echoed Embedder line", () =>
    /^\[hello\.embed( \S+)?\] Embedder loaded its vocabulary$/m.test(stdout),
  );
  const status = await kiln(["status", "--json"], { env });
  expect(JSON.parse(status.stdout)).toMatchObject({ agent: { url, capacity: { cpu: 2 } } });

  child.kill("SIGTERM");
  const result = await child;
  expect(result.exitCode).toBe(0);
  expect(result.stderr).toContain("kiln agent: stopped");
  await expect(fetch(`${url}/healthz`)).rejects.toThrow();
});

it("kiln agent on a port in use exits 1 with one line", async () => {
  const stateDir = await mkdtemp(join(tmpdir(), "kiln-cli-agent-"));
  cleanups.push(() => rm(stateDir, { recursive: true, force: true }));
  const { createServer } = await import("node:net");
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  const result = await kiln(["agent", "--port", String(port), "--state-dir", stateDir]);
  expect(result.exitCode).toBe(1);
  expect(result.stderr).toBe(
    `error (UnavailableError): 127.0.0.1:${port} is already in use (another kiln agent?): pass --port`,
  );
});

it("kiln agent --advertise-url: other hosts and status see that URL; it still listens where bound", async () => {
  const stateDir = await mkdtemp(join(tmpdir(), "kiln-cli-agent-"));
  cleanups.push(() => rm(stateDir, { recursive: true, force: true }));
  const port = await freePort();
  const bound = `http://127.0.0.1:${port}`;
  // What a pod passes: its pod IP (not reachable here, and never dialled by this test).
  const advertised = "http://10.244.3.17:7070";
  const bad = await kiln(["agent", "--state-dir", stateDir, "--advertise-url", "ftp://x"]);
  expect(bad.exitCode).toBe(2);
  expect(bad.stderr).toContain("--advertise-url: expected an http(s) URL");
  const child = kilnChild([
    "agent",
    "--port",
    String(port),
    "--state-dir",
    stateDir,
    "--advertise-url",
    advertised,
  ]);
  cleanups.push(async () => {
    if (child.exitCode === null) child.kill("SIGKILL");
    await child;
  });
  let stdout = "";
  child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  await waitFor("the agent's /healthz", async () => (await fetch(`${bound}/healthz`)).ok, 20_000);
  await waitFor("the agent's start line", () => stdout.includes("\n"));
  expect(stdout.split("\n")[0]).toContain(`listening on ${bound}, advertised as ${advertised} (`);
  const status = await kiln(["status", "--json"], {
    env: { KILN_URL: bound, KILN_STATE_DIR: stateDir },
  });
  expect(status.exitCode).toBe(0);
  const parsed = JSON.parse(status.stdout) as { agent: { url: string }; hosts: { url: string }[] };
  expect(parsed.agent.url).toBe(advertised);
  expect(parsed.hosts.map((h) => h.url)).toEqual([advertised]);
  child.kill("SIGTERM");
  expect((await child).exitCode).toBe(0);
});
