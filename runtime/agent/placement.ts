/**
 * Deploy-time placement check for a cluster of agents: each function must fit, whole, on at
 * least one live host (cores, memory, GPU count and disk per container, as that host's maxima
 * allow, and a GPU type the host has), not necessarily on the agent that took the deploy. Agents
 * that cannot fit a function never claim its inputs (their pool waits for capacity), so its work
 * goes to hosts that can. A single host is a cluster of one: the same checks hold.
 */
import { InvalidError } from "../errors.js";
import { describeGpuOffers, type GpuOffer } from "../containers/gpu-offers.js";
import { matchingGpuCount } from "../containers/gpus.js";
import {
  ANY_GPU,
  compileAppSpec,
  compileFunctionSpec,
  type CompiledAppSpec,
  type CompiledGpu,
  type GpuOption,
  type Maxima,
} from "../spec/index.js";

export interface HostMaxima {
  /** The host's agent id, for messages. */
  host: string;
  maxima: Maxima;
  /**
   * The host's GPUs by model (empty: none). Absent when the host does not say (an agent from
   * before GPUs were advertised): its GPU types are then not checked.
   */
  gpus?: readonly GpuOffer[];
}

/** Compile `raw` for a cluster: this host's maxima first, then whichever host each function fits. */
export function compileForCluster(
  raw: unknown,
  own: HostMaxima,
  others: readonly HostMaxima[],
): CompiledAppSpec {
  const hosts = [own, ...others];
  let spec: CompiledAppSpec;
  let ownFits = true;
  try {
    spec = compileAppSpec(raw, { maxima: own.maxima });
  } catch (error) {
    if (!(error instanceof InvalidError) || others.length === 0) throw error;
    // A field no host can give fails here, against the largest offer of each resource.
    spec = compileAppSpec(raw, { maxima: widest(hosts.map((h) => h.maxima)) });
    ownFits = false;
  }
  const functions = (raw as { functions?: Record<string, unknown> }).functions ?? {};
  for (const [name, fn] of Object.entries(spec.functions)) {
    if (!hosts.some((h) => hasGpus(h, fn.gpu))) throw noGpuType(name, fn.gpu, hosts);
    const whole = (h: HostMaxima) =>
      hasGpus(h, fn.gpu) && ((h === own && ownFits) || fits(name, functions[name], h.maxima));
    if (hosts.some(whole)) continue;
    throw new InvalidError(
      `functions.${name}: no single host can run one container of it (each resource fits some host, not all on one). ` +
        `Hosts offer per container: ${hosts.map(describe).join("; ")}. Lower a request, or add a host that has it all.`,
      {
        details: {
          function: name,
          hosts: hosts.map((h) => ({ host: h.host, ...h.maxima, gpus: h.gpus ?? null })),
        },
      },
    );
  }
  return spec;
}

function fits(name: string, fn: unknown, maxima: Maxima): boolean {
  try {
    compileFunctionSpec(name, fn, { maxima });
    return true;
  } catch {
    return false;
  }
}

/** Whether `host` has enough GPUs of one of the requested options' types (a host that does not say: yes). */
function hasGpus(host: HostMaxima, gpu: CompiledGpu): boolean {
  if (gpu === null || host.gpus === undefined) return true;
  const offers = host.gpus;
  return gpu.options.some((option) => matchingGpuCount(option.type, offers) >= option.count);
}

/** No live host has any of the requested GPU configurations. */
function noGpuType(name: string, gpu: CompiledGpu, hosts: readonly HostMaxima[]): InvalidError {
  const options = gpu?.options ?? [];
  const asked = options.map(option).join(" or ");
  const most = Math.max(0, ...hosts.map((h) => matchingGpuCount(ANY_GPU, h.gpus ?? [])));
  const wanted = Math.min(...options.map((o) => o.count));
  const instead =
    most > 0
      ? `Ask for a GPU type a host has (e.g. "${ANY_GPU}:${Math.min(wanted, most)}"), or add`
      : "Add";
  return new InvalidError(
    `functions.${name}.gpu: no live host can give one container ${asked}. ` +
      `Hosts have: ${hosts.map((h) => `${h.host} ${h.gpus === undefined ? "GPUs not advertised" : describeGpuOffers(h.gpus)}`).join("; ")}. ` +
      `${instead} a host with ${options.length > 1 ? "one of them" : asked}.`,
    {
      details: {
        function: name,
        gpu: options,
        hosts: hosts.map((h) => ({ host: h.host, gpus: h.gpus ?? null })),
      },
    },
  );
}

function option({ count, type }: GpuOption): string {
  return `${count} x ${type}`;
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

function describe({ host, maxima, gpus }: HostMaxima): string {
  const types = gpus === undefined || gpus.length === 0 ? "" : ` (${describeGpuOffers(gpus)})`;
  const parts = [
    maxima.cpu === undefined ? null : `${maxima.cpu} cores`,
    maxima.memoryMiB === undefined ? null : `${maxima.memoryMiB} MiB`,
    maxima.gpusPerContainer === undefined
      ? types === ""
        ? null
        : `GPUs${types}`
      : `${maxima.gpusPerContainer} GPUs${types}`,
    maxima.ephemeralDiskMiB === undefined ? null : `${maxima.ephemeralDiskMiB} MiB disk`,
  ].filter((p): p is string => p !== null);
  return `${host} ${parts.length > 0 ? parts.join(", ") : "kiln's ceilings"}`;
}
