/** The data e2e app (dicts, queues, schedules): its spec, deploys of it, and small helpers. */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Kiln } from "../../runtime/client/index.js";
import { deployApp } from "../../runtime/deploy/deploy.js";
import { fixturesDir } from "./harness.js";

export const DATA_APP = "data-e2e";
export const dataDir = join(fixturesDir, "data");

export async function dataSpec(): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(dataDir, "app.json"), "utf8")) as Record<string, unknown>;
}

/** Deploy the data app, changed by `patch` (add schedules, drop a dict...). */
export async function deployData(
  kiln: Kiln,
  patch: (spec: Record<string, unknown>) => void = () => undefined,
) {
  const spec = await dataSpec();
  patch(spec);
  return deployApp(kiln.http, spec, dataDir);
}
