import { defineConfig } from "vitest/config";
import { HeaviestFirst } from "./test/support/sequencer.js";

/**
 * Files that start no agent, process or server and change no process-wide state: they share one
 * worker process each (isolate: false), which saves a fresh worker and its imports per file.
 */
const UNIT = [
  "test/spec/**/*.test.ts",
  "test/agent/autoscaler.test.ts",
  "test/agent/placement.test.ts",
  "test/provider/diff.test.ts",
  "test/components/validate.test.ts",
  "test/cli/output.test.ts",
  "test/cli/program.test.ts",
  "test/worker/outbox.test.ts",
  "test/store/shared.test.ts",
  "test/agent/data-objects.test.ts",
  "test/agent/retry-policy.test.ts",
  "test/agent/lease-keeper.test.ts",
  "test/agent/work-runner.test.ts",
  "test/agent/container-slots.test.ts",
  "test/store/redis-scripts.test.ts",
];

export default defineConfig({
  test: {
    // Over 3x the longest test in a full run on an otherwise idle 2-core machine (the cluster's
    // kill -9 map: 8.5 s alone, up to 45 s beside the other files), so a busy machine slows the
    // suite without failing it; a hang still fails. Waits inside tests are bounded by
    // test/support/wait.ts, each naming what it waited for.
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: "forks",
    // Most suites wait on child processes, timers and sockets rather than compute: on a 2-core
    // machine three files at a time finish in well under half the serial time.
    maxWorkers: 3,
    sequence: { sequencer: HeaviestFirst },
    // npm test runs "enforcement" alone first (real cgroups: timing-sensitive), then the others.
    projects: [
      {
        extends: true,
        test: {
          name: "enforcement",
          include: ["test/containers/**/*.test.ts"],
          fileParallelism: false,
        },
      },
      { extends: true, test: { name: "unit", include: UNIT, isolate: false } },
      {
        extends: true,
        test: {
          name: "integration",
          include: ["test/**/*.test.ts"],
          exclude: [...UNIT, "test/containers/**"],
        },
      },
    ],
  },
});
