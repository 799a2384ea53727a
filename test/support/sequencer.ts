/**
 * Test-file order for `npm test`: the files that take longest start first, so that on a 2-core
 * machine no long file starts last and stretches the run (vitest alone orders a fresh clone, which
 * has no timing cache, by file size). Weights are seconds measured in a full run on a 2-core box;
 * files not listed keep vitest's order after these. A stale weight costs only wall time.
 */
import { relative } from "node:path";
import { BaseSequencer, type TestSpecification } from "vitest/node";

const SECONDS: Record<string, number> = {
  "test/examples/run.test.ts": 100,
  "test/e2e/cluster-failover.test.ts": 95,
  "test/components/components.test.ts": 95,
  "test/cli/cli.test.ts": 90,
  "test/e2e/cluster-routing.test.ts": 50,
  "test/examples/preview-deploy.test.ts": 40,
  "test/e2e/durability.test.ts": 38,
  "test/e2e/deploy.test.ts": 35,
  "test/e2e/call-styles.test.ts": 33,
  "test/e2e/failures.test.ts": 28,
  "test/e2e/resources.test.ts": 25,
  "test/store/redis.test.ts": 24,
};

export class HeaviestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const ordered = await super.sort(files);
    const weight = (file: TestSpecification) =>
      SECONDS[relative(this.ctx.config.root, file.moduleId).split("\\").join("/")] ?? 0;
    // Array.prototype.sort is stable: unlisted files keep vitest's order.
    return ordered.sort((a, b) => weight(b) - weight(a));
  }
}
