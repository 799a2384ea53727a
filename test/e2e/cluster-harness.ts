/**
 * Several agents on one real redis-server, for the cluster suites: each agent a child process
 * (so it can be killed or frozen), one redis-server per file, and a clean store between tests.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll } from "vitest";
import { connect, type Kiln } from "../../runtime/client/index.js";
import { reclaimStateDir } from "../../runtime/containers/reclaim.js";
import { registries } from "../../runtime/agent/inputs.js";
import { USAGE_INDEX } from "../../runtime/agent/usage-ledger.js";
import { startRedisServer, type RedisServer } from "../store/redis-server.js";
import { startChildAgent, type ChildAgent } from "./harness.js";

export interface Cluster {
  /** The redis-server of this file (started before its first test). */
  readonly redis: RedisServer;
  /** Start an agent on the cluster's Redis in its own process; it is killed after the test. */
  startAgent(env?: Record<string, string>): Promise<ChildAgent>;
  /** A client of `agent` with the cluster's token. */
  client(agent: ChildAgent): Promise<Kiln>;
}

/**
 * Call at the top of a describe: starts redis-server (with AOF) before its tests, kills every
 * agent a test started and empties the store after each, stops the server after all.
 */
export function useCluster(): Cluster {
  const token = `cluster-test-${Math.random().toString(36).slice(2)}`;
  let redis: RedisServer | undefined;
  const agents: ChildAgent[] = [];
  const dirs: string[] = [];

  beforeAll(async () => {
    redis = await startRedisServer({ appendOnly: true });
  });

  afterEach(async () => {
    for (const agent of agents.splice(0)) {
      agent.child.kill("SIGCONT");
      agent.child.kill("SIGKILL");
      await agent.exited;
    }
    for (const dir of dirs.splice(0)) {
      await reclaimStateDir(dir);
      await rm(dir, { recursive: true, force: true });
    }
    // A clean store for the next test.
    const { RedisStore } = await import("../../runtime/store/redis/index.js");
    const store = await RedisStore.open({ url: redis!.url });
    for (const key of await store.keys("")) await store.delete(key);
    // The registries (apps, hosts, schedules, ephemeral objects) are hashes, which `keys` does not list.
    for (const hash of [...Object.values(registries), USAGE_INDEX]) await store.hashDrop(hash);
    await store.close();
  });

  afterAll(async () => redis?.dispose());

  return {
    get redis() {
      if (redis === undefined)
        throw new Error("the cluster's redis-server starts in beforeAll: use it inside a test");
      return redis;
    },
    async startAgent(env = {}) {
      const dir = await mkdtemp(join(tmpdir(), "kiln-cluster-"));
      dirs.push(dir);
      const agent = await startChildAgent(dir, 0, {
        KILN_REDIS_URL: redis!.url,
        KILN_TOKEN: token,
        ...env,
      });
      agents.push(agent);
      return agent;
    },
    client(agent) {
      return connect({ url: agent.url, token });
    },
  };
}
