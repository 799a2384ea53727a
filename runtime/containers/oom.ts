/**
 * Was a dead worker out of memory? One classifier for every way it shows:
 * - the kernel's OOM killer at the cgroup's hard limit (the group's oom_kill counter moved);
 * - the fallback RSS watchdog killed it over the limit (hosts without cgroups);
 * - V8 ran out of heap (`--max-old-space-size`, derived from the limit): Node prints
 *   "FATAL ERROR: ... JavaScript heap out of memory" and aborts (SIGABRT, or exit 134 through a
 *   shell).
 *
 * Not promised: a SIGKILL with no moved counter is not called OOM (it may be `kill -9`).
 */
import { OutOfMemoryError } from "../errors.js";

export type OomCause = "cgroup" | "rss" | "js-heap";

export interface ExitEvidence {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The end of what the process wrote to stderr, when kept. */
  stderrTail?: string | undefined;
  /** OOM kills counted by the cgroup while this process ran (after minus before). */
  cgroupOomKills?: number | null;
  /** The fallback watchdog killed it for RSS over the limit. */
  rssKilled?: boolean;
}

export type OomVerdict = { oom: false } | { oom: true; cause: OomCause; detail: string };

/** V8/Node's messages when the JS heap (or a V8 zone) cannot grow. */
const HEAP_MARKERS = [
  /JavaScript heap out of memory/i,
  /Fatal process out of memory/i,
  /Reached heap limit/i,
  /Ineffective mark-compacts near heap limit/i,
];

/** Exit status of a process killed by SIGABRT, as a shell reports it (128 + 6). */
const ABORT_EXIT_CODE = 134;

export function classifyExit(evidence: ExitEvidence): OomVerdict {
  if ((evidence.cgroupOomKills ?? 0) > 0) {
    return {
      oom: true,
      cause: "cgroup",
      detail: "killed by the kernel's OOM killer at the container's hard memory limit",
    };
  }
  if (evidence.rssKilled)
    return { oom: true, cause: "rss", detail: "killed when its resident memory passed the limit" };
  const tail = evidence.stderrTail ?? "";
  if (HEAP_MARKERS.some((marker) => marker.test(tail))) {
    return {
      oom: true,
      cause: "js-heap",
      detail: "the JavaScript heap ran out (V8 heap limit derived from the memory limit)",
    };
  }
  if (evidence.signal === "SIGABRT" || evidence.code === ABORT_EXIT_CODE) {
    return {
      oom: true,
      cause: "js-heap",
      detail: "the worker aborted (SIGABRT), as Node does when the JavaScript heap runs out",
    };
  }
  return { oom: false };
}

/** The error a caller gets: names the limit, says what to raise. */
export function outOfMemoryError(
  fn: string,
  limitMiB: number | null,
  verdict: Extract<OomVerdict, { oom: true }>,
): OutOfMemoryError {
  const limit = limitMiB === null ? "its memory" : `its memory limit of ${limitMiB} MiB`;
  return new OutOfMemoryError(
    `${fn} ran out of memory: ${verdict.detail}${limitMiB === null ? "" : ` (${limitMiB} MiB)`}. The worker exceeded ${limit}; raise 'memory' in the function spec.`,
    { details: { limitMiB, cause: verdict.cause } },
  );
}
