/**
 * The real components some suites need (redis-server, cgroups, loop mounts, the build). Where one
 * is missing, a developer's run skips those tests and says why; a run that must prove them (CI,
 * which sets CI=true, or KILN_TEST_REQUIRE_ALL=1) fails instead, so that a green CI means the
 * Redis, cluster and enforcement suites ran.
 */

/** Whether this run must have every component. */
export function everythingRequired(): boolean {
  return process.env["CI"] === "true" || process.env["KILN_TEST_REQUIRE_ALL"] === "1";
}

/** Missing components must fail this run: thrown from a test file's top level, it fails the file. */
export class MissingComponentError extends Error {
  constructor(component: string, problem: string) {
    super(
      `${component}: ${problem}. This run requires every component (CI=true or KILN_TEST_REQUIRE_ALL=1): ` +
        "install it (.ci/run lists how) or run without CI=true to skip these tests",
    );
    this.name = "MissingComponentError";
  }
}

/**
 * True when `problem` is null (the component is there). Otherwise skips with a printed reason, or
 * throws MissingComponentError where everything is required.
 */
export function present(
  component: string,
  problem: string | null,
  skipped = "its tests are skipped",
): boolean {
  if (problem === null) return true;
  if (everythingRequired()) throw new MissingComponentError(component, problem);
  console.warn(`${component}: ${problem}: ${skipped}`);
  return false;
}
