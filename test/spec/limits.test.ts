import { describe, expect, it } from "vitest";
import { MAX_INLINE_PAYLOAD_BYTES as SERDE_MAX } from "../../runtime/serde.js";
import * as spec from "../../runtime/spec/index.js";

describe("limits", () => {
  it("holds the platform defaults and limits", () => {
    expect(spec).toMatchObject({
      MAX_PENDING_INPUTS: 2000,
      MAX_SPAWN_PENDING_INPUTS: 1_000_000,
      MAX_TOTAL_INPUTS: 25_000,
      MAX_MAP_INFLIGHT: 1000,
      MAX_BATCH_SIZE: 1000,
      MAX_BATCH_WAIT_MS: 600_000,
      MAX_GPUS_PER_CONTAINER: 8,
      MAX_EPHEMERAL_DISK_MIB: 3_145_728,
      DEFAULT_CPU: 0.125,
      DEFAULT_CPU_HEADROOM: 4,
      DEFAULT_MEMORY_MIB: 128,
      DEFAULT_TIMEOUT_S: 300,
      RESULT_TTL_MS: 86_400_000,
      PLATFORM_RETRIES: 3,
    });
  });

  it("re-exports the inline payload limit from serde", () => {
    expect(spec.MAX_INLINE_PAYLOAD_BYTES).toBe(SERDE_MAX);
  });
});
