/**
 * examples/batch-embeddings end to end: deployed with `kiln deploy <program-dir>` (the built CLI
 * evaluating the Pulumi program) to an agent whose scheduler runs on a fake clock. The dict cache
 * turns a second embedding of a text into a hit, visible in the dict; the nightly schedule
 * (`0 3 * * *` UTC) reindexes the corpus through the cache at 03:00, once a night.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { present } from "../support/requirements.js";
import type { Kiln, ScheduleStatus } from "../../runtime/client/index.js";
import { FakeClock } from "../store/fake-clock.js";
import { repoRoot, startAgent, type Harness } from "./harness.js";
import { waitFor } from "../support/wait.js";

const APP = "batch-embeddings";
const example = join(repoRoot, "examples", APP);
const cli = join(repoRoot, "dist", "cli", "main.js");
const built = present(
  "the built CLI and examples/batch-embeddings",
  existsSync(join(example, "index.ts")) && existsSync(cli) ? null : "missing (npm run build)",
);

let h: Harness;
let kiln: Kiln;
let clock: FakeClock;

async function advanceTo(iso: string): Promise<void> {
  clock.advance(Math.max(0, Date.parse(iso) - clock.now()));
  await h.agent.scheduler.idle();
}

async function nightly(): Promise<ScheduleStatus> {
  const status = await kiln.status();
  return status.apps.find((a) => a.name === APP)!.schedules!.find((s) => s.name === "nightly")!;
}

(built ? describe : describe.skip)("examples/batch-embeddings", () => {
  beforeAll(async () => {
    clock = new FakeClock(Date.parse("2024-05-01T02:00:00Z"));
    h = await startAgent({ clock });
    kiln = h.kiln;
    const deployed = await execa(process.execPath, [cli, "deploy", example], {
      cwd: repoRoot,
      reject: false,
      timeout: 120_000,
      env: {
        KILN_URL: h.agent.url,
        KILN_TOKEN: h.agent.token,
        KILN_STATE_DIR: join(h.stateDir, "no-cli-state"),
      },
    });
    if (deployed.exitCode !== 0)
      throw new Error(`kiln deploy ${example} failed:\n${deployed.stdout}\n${deployed.stderr}`);
    await advanceTo("2024-05-01T02:00:00Z");
  });

  afterAll(async () => {
    await h?.close();
  });

  it("the dict cache: a second embedding of a text is a hit, read from the app's dict", async () => {
    const embedCached = kiln.function<(text: string) => { vector: number[]; cached: boolean }>(
      APP,
      "embedCached",
    );
    const first = await embedCached.remote("a kiln is a furnace");
    expect(first.cached).toBe(false);
    expect(first.vector).toHaveLength(16);
    const second = await embedCached.remote("a kiln is a furnace");
    expect(second).toEqual({ vector: first.vector, cached: true });
    const cache = kiln.dict<string, number[]>(APP, "embedding-cache");
    expect(await cache.get("a kiln is a furnace")).toEqual(first.vector);
    expect(await cache.info()).toMatchObject({ len: 1, inactivityExpiryS: 30 * 86_400 });
  });

  it("the nightly schedule reindexes the corpus through the cache at 03:00 UTC, once a night", async () => {
    const cache = kiln.dict<string, number[]>(APP, "embedding-cache");
    const before = await cache.len();
    expect((await nightly()).nextTickAt).toBe("2024-05-01T03:00:00.000Z");
    await advanceTo("2024-05-01T02:59:59Z");
    expect((await nightly()).runs).toEqual([]);
    await advanceTo("2024-05-01T03:00:01Z");
    const first = await waitFor(
      "the first nightly run",
      async () => {
        const s = await nightly();
        return s.runs[0]?.status === "succeeded" ? s : undefined;
      },
      60_000,
    );
    expect(first.runs).toHaveLength(1);
    expect(first.runs[0]!.callId).toBe(
      `sched:${APP}:nightly:${Date.parse("2024-05-01T03:00:00Z")}`,
    );
    expect(await kiln.functionCall(first.runs[0]!.callId).get({ timeoutMs: 5_000 })).toEqual({
      texts: 3,
      fresh: 3,
    });
    expect(await cache.len()).toBe(before + 3);
    expect(await cache.contains("the cache remembers")).toBe(true);
    expect(first.nextTickAt).toBe("2024-05-02T03:00:00.000Z");

    // The next night: the corpus is all cached now.
    await advanceTo("2024-05-02T03:00:01Z");
    const second = await waitFor(
      "the second nightly run",
      async () => {
        const s = await nightly();
        return s.runs.length === 2 && s.runs[0]!.status === "succeeded" ? s : undefined;
      },
      60_000,
    );
    expect(await kiln.functionCall(second.runs[0]!.callId).get({ timeoutMs: 5_000 })).toEqual({
      texts: 3,
      fresh: 0,
    });
    expect(second.runs.map((r) => r.tickAt)).toEqual([
      "2024-05-02T03:00:00.000Z",
      "2024-05-01T03:00:00.000Z",
    ]);
  });
});
