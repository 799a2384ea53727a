import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    // Most suites wait on child processes, timers and sockets rather than compute: on a 2-core
    // machine three files at a time finish in well under half the serial time.
    maxWorkers: 3,
  },
});
