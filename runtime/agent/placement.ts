/**
 * Deploy-time placement check for a cluster of agents: each function must fit, whole, on at
 * least one live host (cores, memory, GPU count and disk per container, as that host's maxima
 * allow), not necessarily on the agent that took the deploy. Agents that cannot fit a function
 * never claim its inputs (their pool waits for capacity), so its work goes to hosts that can.
 */
import { InvalidError } from "../errors.js";
import { compileAppSpec, compileFunctionSpec, type CompiledAppSpec, type Maxima } from "../spec/index.js";

export interface HostMaxima {
  /** The host's agent id, for messages. */
  host: string;
  maxima: Maxima;
}

/** Compile `raw` for a cluster: this host's maxima first, then whichever host each function fits. */
export function compileForCluster(raw: unknown, own: HostMaxima, others: readonly HostMaxima[]): CompiledAppSpec {
  try {
    return compileAppSpec(raw, { maxima: own.maxima });
  } catch (error) {
    if (!(error instanceof InvalidError) || others.length === 0) throw error;
    const hosts = [own, ...others];
    // A field no host can give fails here, against the largest offer of each resource.
    const spec = compileAppSpec(raw, { maxima: widest(hosts.map((h) => h.maxima)) });
    const functions = (raw as { functions?: Record<string, unknown> }).functions ?? {};
    for (const [name, fn] of Object.entries(functions)) {
      if (hosts.some((h) => fits(name, fn, h.maxima))) continue;
      throw new InvalidError(
        `functions.${name}: no single host can run one container of it (each resource fits some host, not all on one). ` +
          `Hosts offer per container: ${hosts.map(describe).join("; ")}. Lower a request, or add a host that has it all.`,
        { details: { function: name, hosts: hosts.map((h) => ({ host: h.host, ...h.maxima })) } },
      );
    }
    return spec;
  }
}

function fits(name: string, fn: unknown, maxima: Maxima): boolean {
  try {
    compileFunctionSpec(name, fn, { maxima });
    return true;
  } catch {
    return false;
  }
}

/** The largest offer of each resource (a host with no maximum for one: kiln's own ceiling). */
function widest(all: readonly Maxima[]): Maxima {
  const out: Maxima = {};
  for (const field of ["cpu", "memoryMiB", "gpusPerContainer", "ephemeralDiskMiB"] as const) {
    const values = all.map((m) => m[field]);
    if (values.every((v) => v !== undefined)) out[field] = Math.max(...(values as number[]));
  }
  return out;
}

function describe({ host, maxima }: HostMaxima): string {
  const parts = [
    maxima.cpu === undefined ? null : `${maxima.cpu} cores`,
    maxima.memoryMiB === undefined ? null : `${maxima.memoryMiB} MiB`,
    maxima.gpusPerContainer === undefined ? null : `${maxima.gpusPerContainer} GPUs`,
    maxima.ephemeralDiskMiB === undefined ? null : `${maxima.ephemeralDiskMiB} MiB disk`,
  ].filter((p): p is string => p !== null);
  return `${host} ${parts.length > 0 ? parts.join(", ") : "kiln's ceilings"}`;
}
