import { defineConfig } from "vitest/config";
import { HeaviestFirst } from "./test/support/sequencer.js";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Far above any test's duration on a quiet 2-core machine (the longest takes about 20 s), so a
    // busy machine slows the suite without failing it; a hang still fails. Waits inside tests are
    // bounded by test/support/wait.ts, each naming what it waited for.
    testTimeout: 90_000,
    hookTimeout: 90_000,
    pool: "forks",
    // Most suites wait on child processes, timers and sockets rather than compute: on a 2-core
    // machine three files at a time finish in well under half the serial time.
    maxWorkers: 3,
    sequence: { sequencer: HeaviestFirst },
  },
});
