/**
 * Statistics and the results table of `npm run bench`: percentiles, the machine description,
 * and the Markdown written to `bench/RESULTS.md`.
 */
import { cpus, loadavg, platform, release, totalmem } from "node:os";

export interface Summary {
  count: number;
  min: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile of already sorted values (`p` in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] ?? Number.NaN;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const total = sorted.reduce((sum, value) => sum + value, 0);
  return {
    count: sorted.length,
    min: sorted[0] ?? Number.NaN,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    mean: sorted.length === 0 ? Number.NaN : total / sorted.length,
  };
}

export function median(samples: readonly number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? Number.NaN)
    : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** One line of the table. `pass` is null for rows that carry no target. */
export interface Row {
  metric: string;
  kiln: string;
  floor: string;
  ratio: string;
  target: string;
  pass: boolean | null;
}

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  os: string;
  /** 1-minute load average when the bench started: other work on the box skews every figure. */
  load1: number;
}

export function machine(): Machine {
  const all = cpus();
  return {
    cpu: all[0]?.model.trim() ?? "unknown",
    cores: all.length,
    memoryGiB: totalmem() / 1024 ** 3,
    node: process.version,
    os: `${platform()} ${release()}`,
    load1: loadavg()[0] ?? 0,
  };
}

export function ms(value: number): string {
  return `${value < 10 ? value.toFixed(2) : value.toFixed(1)} ms`;
}

export function seconds(value: number): string {
  return `${(value / 1000).toFixed(2)} s`;
}

export function perSecond(value: number): string {
  return `${Math.round(value).toLocaleString("en-US")}/s`;
}

export function ratio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}x` : "n/a";
}

export function renderTable(rows: readonly Row[]): string {
  const header = ["metric", "kiln", "floor / baseline", "ratio", "target", "pass"];
  const cells = rows.map((r) => [
    r.metric,
    r.kiln,
    r.floor,
    r.ratio,
    r.target,
    r.pass === null ? "-" : r.pass ? "yes" : "**no**",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? "").length)));
  const line = (values: readonly string[]): string =>
    `| ${values.map((v, i) => v.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)].join("\n");
}

/** Which targets were met, one line each, for the end of the console output. */
export function renderSummary(rows: readonly Row[]): string {
  const judged = rows.filter((row) => row.pass !== null);
  const met = judged.filter((row) => row.pass === true);
  const lines = judged.map(
    (row) =>
      `  ${row.pass ? "met   " : "MISSED"}  ${row.metric}: ${row.kiln} (target ${row.target}${row.floor === "-" ? "" : `; ${row.floor}`})`,
  );
  return [`targets: ${met.length} of ${judged.length} met`, ...lines].join("\n");
}

export interface Results {
  machine: Machine;
  date: string;
  rows: readonly Row[];
  /** Free-form lines under the table: configuration, breakdowns. */
  notes: readonly string[];
  wallSeconds: number;
}

export function renderResults(results: Results): string {
  const m = results.machine;
  return [
    "# kiln benchmark results",
    "",
    "Written by `npm run bench` (bench/run.ts); replaced on every run. Each kiln figure sits beside a",
    "floor or a baseline measured in the same run on the same machine: the cost of the transport it",
    "cannot avoid, the ideal of a scaling test, BullMQ on the same redis-server, or the unbatched run.",
    "",
    `- date: ${results.date}`,
    `- machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB.toFixed(1)} GiB memory, ${m.os}`,
    `- node: ${m.node}`,
    `- load average (1 min) at start: ${m.load1.toFixed(2)}`,
    `- bench wall time: ${results.wallSeconds.toFixed(1)} s`,
    "",
    renderTable(results.rows),
    "",
    ...results.notes.map((note) => `- ${note}`),
    "",
  ].join("\n");
}
