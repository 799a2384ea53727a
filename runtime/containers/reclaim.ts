/**
 * What an agent killed without a chance to clean up (kill -9, a crash, a power cut) leaves in its
 * state dir: mounted scratch disks under `<state-dir>/scratch` and the cgroups of its agent id.
 * The next agent on the same state dir reclaims them before it starts: a state dir belongs to
 * one agent at a time (the embedded store locks it), so whatever is there is a dead agent's.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CgroupManager } from "./cgroups/manager.js";
import { sweepScratch } from "./scratch-disk.js";

const AGENT_ID_FILE = "agent-id";

/**
 * Unmount and delete leftover scratch disks (their images and what tenants wrote) and remove the
 * previous agent's cgroups. Returns what failed.
 */
export async function reclaimStateDir(stateDir: string): Promise<string[]> {
  const failures = await sweepScratch(join(stateDir, "scratch"), new Set());
  const previous = (await readFile(join(stateDir, AGENT_ID_FILE), "utf8").catch(() => "")).trim();
  if (previous) {
    const groups = await CgroupManager.open({ agentId: previous });
    if (groups.enforcement !== "fallback") failures.push(...(await groups.close()));
  }
  return failures;
}

/** Remember which agent owns the state dir, for the next one's reclaim. */
export async function recordAgentId(stateDir: string, agentId: string): Promise<void> {
  await writeFile(join(stateDir, AGENT_ID_FILE), `${agentId}\n`);
}
