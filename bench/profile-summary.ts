/**
 * Summarize a V8 `.cpuprofile` (from `node --cpu-prof`): self time by function and by area
 * (kiln runtime folders, fastify, undici/fetch, zod, node internals, GC, idle).
 *
 *   node dist/bench/profile-summary.js /tmp/kiln-prof/<file>.cpuprofile [top] [--callers <functionName>]
 *
 * `--callers writeBuffer` shows, for the samples that landed in that function, the call paths
 * (innermost first, five frames deep) that led there.
 */
import { readFile } from "node:fs/promises";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

function area(frame: CallFrame): string {
  const url = frame.url;
  if (frame.functionName === "(idle)") return "(idle)";
  if (frame.functionName === "(garbage collector)") return "(gc)";
  if (frame.functionName === "(program)") return "(program)";
  const kiln = /\/dist\/(runtime\/[^/]+(?:\/[^/]+)?)\//.exec(url) ?? /\/dist\/(bench)\//.exec(url);
  if (kiln?.[1]) return kiln[1].replace(/\/[^/]+\.js$/, "");
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg?.[1]) return `npm:${pkg[1]}`;
  if (url.startsWith("node:internal/deps/undici")) return "undici (bundled fetch)";
  if (url.startsWith("node:"))
    return url
      .replace(/^node:internal\//, "node:")
      .split("/")
      .slice(0, 2)
      .join("/");
  return url === "" ? "(native)" : url;
}

async function main(): Promise<void> {
  const file = process.argv[2];
  if (!file) throw new Error("usage: profile-summary <file.cpuprofile> [top]");
  const top = Number(process.argv[3] ?? 25);
  const callersAt = process.argv.indexOf("--callers");
  const callersOf = callersAt >= 0 ? process.argv[callersAt + 1] : undefined;
  const profile = JSON.parse(await readFile(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) =>
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)),
  );
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const frame = node.callFrame;
    const short = frame.url.replace(/^.*\/(dist|node_modules)\//, "$1/");
    const key = `${frame.functionName || "(anonymous)"}  ${short}:${frame.lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    const a = area(frame);
    byArea.set(a, (byArea.get(a) ?? 0) + us);
  }
  const parent = new Map<number, number>();
  for (const node of profile.nodes)
    for (const child of node.children ?? []) parent.set(child, node.id);
  const frameName = (node: ProfileNode): string =>
    `${node.callFrame.functionName || "(anonymous)"} ${node.callFrame.url.replace(/^.*\/(dist|node_modules)\//, "").replace(/^node:internal\//, "")}:${node.callFrame.lineNumber + 1}`;
  const pct = (us: number): string =>
    `${((us / total) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms`;
  if (callersOf !== undefined) {
    const paths = new Map<string, number>();
    for (const [id, us] of selfUs) {
      const node = byId.get(id);
      if (!node || (node.callFrame.functionName || "(anonymous)") !== callersOf) continue;
      const chain: string[] = [];
      for (let at = parent.get(id); at !== undefined && chain.length < 5; at = parent.get(at)) {
        const up = byId.get(at);
        if (up) chain.push(frameName(up));
      }
      const key = chain.join("\n        <- ");
      paths.set(key, (paths.get(key) ?? 0) + us);
    }
    console.log(`callers of ${callersOf}:`);
    for (const [path, us] of [...paths].sort((a, b) => b[1] - a[1]).slice(0, top))
      console.log(`  ${pct(us)}  ${path}`);
    return;
  }
  console.log(`profile ${file}: ${(total / 1000).toFixed(0)} ms sampled`);
  console.log("\nby area (self time):");
  for (const [name, us] of [...byArea].sort((a, b) => b[1] - a[1]).slice(0, top))
    console.log(`  ${pct(us)}  ${name}`);
  console.log("\nby function (self time):");
  for (const [name, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top))
    console.log(`  ${pct(us)}  ${name}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
