/**
 * GPUs of this host: the inventory (nvidia-smi, or `KILN_GPUS` describing fake devices for tests
 * and GPU-less hosts) and the allocator that hands each container exclusive devices.
 *
 * Type matching — one rule, used everywhere: the requested type ("A100-80GB", upper-cased by the
 * spec) is split on `-`/`_` into tokens, the device name on anything not a letter or digit; every
 * requested token must equal a name token (case-insensitive), except a memory token `<N>GB`, which
 * also matches a device whose memory.total is within 10% of N GiB. So "A100" matches "NVIDIA
 * A100-SXM4-80GB" and "A100-80GB" matches it too, "A100-40GB" does not, and "A10" never matches
 * an A100 (whole tokens, not substrings). "any" matches every device.
 *
 * Allocation: a request is an ordered list of options ("H100:2", then "A100:4"); the first option
 * with enough free matching devices wins, lowest indexes first. A container holds its devices until
 * `release` (also called when it crashes); no device is ever held by two containers.
 *
 * Not promised: placement by topology (NVLink, NUMA); MIG slices.
 */
import { execFile } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { InvalidError } from "../errors.js";
import { describeGpuOffers, gpuOffers, type GpuOffer } from "./gpu-offers.js";
import { ANY_GPU, MAX_GPUS_PER_CONTAINER, type GpuOption } from "../spec/index.js";

export interface GpuDevice {
  index: number;
  uuid: string;
  name: string;
  memoryMiB: number;
  /** The /dev/nvidiaN minor number (the devices cgroup rule `c 195:<minor>`). */
  minor: number;
}

export interface GpuInventory {
  devices: GpuDevice[];
  source: "nvidia-smi" | "KILN_GPUS" | "none";
  /** Why there are no GPUs, when there are none. */
  note: string | null;
}

/** The nvidia-smi query the inventory runs. */
const NVIDIA_SMI_ARGS = [
  "--query-gpu=index,uuid,name,memory.total,pci.bus_id",
  "--format=csv,noheader,nounits",
];

/**
 * Parse `nvidia-smi --query-gpu=index,uuid,name,memory.total[,pci.bus_id] --format=csv,noheader`
 * (with or without `nounits`: "81920 MiB" and "81920" both parse). Blank or malformed lines are
 * skipped.
 */
export function parseNvidiaSmi(csv: string): (GpuDevice & { pciBusId: string | null })[] {
  const devices: (GpuDevice & { pciBusId: string | null })[] = [];
  for (const line of csv.split("\n")) {
    const fields = line.split(",").map((f) => f.trim());
    if (fields.length < 4) continue;
    const [indexText = "", uuid = "", name = "", memoryText = "", pci] = fields;
    const index = Number(indexText);
    const memoryMiB = Number(memoryText.replace(/\s*MiB$/i, ""));
    if (!Number.isInteger(index) || !uuid) continue;
    devices.push({
      index,
      uuid,
      name,
      memoryMiB: Number.isFinite(memoryMiB) ? memoryMiB : 0,
      minor: index,
      pciBusId: pci || null,
    });
  }
  return devices;
}

/**
 * Fake devices: `"A100-80GB:2,H100:1"` (type[:count], names as given, memory from an `<N>GB`
 * token), or JSON: `{"A100-80GB": 2}` or `[{"name": "NVIDIA H100 80GB HBM3", "memoryMiB": 81559}]`.
 * "" or "none" means no GPUs. Throws InvalidError when malformed.
 */
export function parseFakeGpus(text: string): GpuDevice[] {
  const trimmed = text.trim();
  if (trimmed === "" || trimmed.toLowerCase() === "none") return [];
  const entries: { name: string; memoryMiB?: number; uuid?: string }[] = [];
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch (error) {
      throw new InvalidError(`KILN_GPUS is not valid JSON: ${(error as Error).message}`);
    }
    if (Array.isArray(parsed)) {
      for (const item of parsed) {
        if (
          typeof item !== "object" ||
          item === null ||
          typeof (item as { name?: unknown }).name !== "string"
        ) {
          throw new InvalidError(
            `KILN_GPUS: each device needs a "name" (got ${JSON.stringify(item)})`,
          );
        }
        entries.push(item as { name: string; memoryMiB?: number; uuid?: string });
      }
    } else if (typeof parsed === "object" && parsed !== null) {
      for (const [name, count] of Object.entries(parsed)) {
        if (!Number.isInteger(count) || (count as number) < 0)
          throw new InvalidError(`KILN_GPUS: count of ${name} must be a whole number`);
        for (let i = 0; i < (count as number); i += 1) entries.push({ name });
      }
    }
  } else {
    for (const part of trimmed.split(",")) {
      const match = /^\s*([A-Za-z0-9][A-Za-z0-9 _-]*?)\s*(?::\s*([0-9]+))?\s*$/.exec(part);
      if (!match)
        throw new InvalidError(
          `KILN_GPUS: ${JSON.stringify(part)} is not "TYPE" or "TYPE:COUNT" (e.g. "A100-80GB:2,H100:1")`,
        );
      const count = match[2] === undefined ? 1 : Number(match[2]);
      for (let i = 0; i < count; i += 1) entries.push({ name: match[1] ?? "" });
    }
  }
  return entries.map((entry, index) => ({
    index,
    uuid: entry.uuid ?? fakeUuid(index),
    name: entry.name,
    memoryMiB: entry.memoryMiB ?? memoryFromName(entry.name),
    minor: index,
  }));
}

function fakeUuid(index: number): string {
  return `GPU-fake0000-0000-4000-8000-${index.toString(16).padStart(12, "0")}`;
}

function memoryFromName(name: string): number {
  const token = tokens(name).find((t) => /^\d+GB$/.test(t));
  return token ? Number(token.slice(0, -2)) * 1024 : 0;
}

function tokens(text: string): string[] {
  return text
    .toUpperCase()
    .split(/[^A-Z0-9]+/)
    .filter(Boolean);
}

/** Whether `device` is of the requested `type` (see the rule at the top of this file). */
export function gpuMatches(type: string, device: Pick<GpuDevice, "name" | "memoryMiB">): boolean {
  if (type.toLowerCase() === ANY_GPU) return true;
  const have = new Set(tokens(device.name));
  const want = type.toUpperCase().split(/[-_]+/).filter(Boolean);
  if (want.length === 0) return false;
  return want.every((token) => {
    if (have.has(token)) return true;
    const memory = /^(\d+)GB$/.exec(token);
    if (!memory || device.memoryMiB <= 0) return false;
    const gib = Number(memory[1]);
    return Math.abs(device.memoryMiB / 1024 - gib) <= gib * 0.1;
  });
}

/** How many of the offered devices are of `type` (by `gpuMatches`): one container may get that many. */
export function matchingGpuCount(type: string, offers: readonly GpuOffer[]): number {
  return offers.reduce((n, offer) => n + (gpuMatches(type, offer) ? offer.count : 0), 0);
}

export interface DiscoverOptions {
  env?: NodeJS.ProcessEnv;
  /** Runs nvidia-smi; injectable for tests. Resolves stdout, rejects when absent or failing. */
  runNvidiaSmi?: () => Promise<string>;
}

/**
 * The devices `NVIDIA_VISIBLE_DEVICES` gives this process, in inventory order. A privileged pod or
 * container sees every GPU of its node in nvidia-smi, while the device plugin (or `--gpus`) gave it
 * only some: those are listed here by index or UUID (`0,2`, `GPU-8f…`), or, with the plugin's
 * `volume-mounts` strategy, as the entries of a directory it names (read by `discoverGpus`).
 * Unset or `all`: every device; `none`, `void` or empty: none. Entries that match no device (a MIG slice, a typo) are
 * returned in `unmatched`.
 */
export function visibleGpus<T extends Pick<GpuDevice, "index" | "uuid">>(
  devices: readonly T[],
  value: string | undefined,
): { devices: T[]; unmatched: string[] } {
  const text = value?.trim();
  if (text === undefined || text.toLowerCase() === "all")
    return { devices: [...devices], unmatched: [] };
  if (text === "" || ["none", "void"].includes(text.toLowerCase()))
    return { devices: [], unmatched: [] };
  const wanted = text
    .split(",")
    .map((entry) => entry.trim())
    .filter(Boolean);
  const matches = (device: T, entry: string): boolean =>
    /^\d+$/.test(entry)
      ? device.index === Number(entry)
      : device.uuid.toLowerCase() === entry.toLowerCase();
  return {
    devices: devices.filter((device) => wanted.some((entry) => matches(device, entry))),
    unmatched: wanted.filter((entry) => !devices.some((device) => matches(device, entry))),
  };
}

/**
 * The host's GPUs: `KILN_GPUS` when set (it describes the devices outright), else nvidia-smi's,
 * narrowed to those `NVIDIA_VISIBLE_DEVICES` names (see `visibleGpus`); no nvidia-smi → none,
 * with a note.
 */
export async function discoverGpus(options: DiscoverOptions = {}): Promise<GpuInventory> {
  const env = options.env ?? process.env;
  const fake = env["KILN_GPUS"];
  if (fake !== undefined) {
    const devices = parseFakeGpus(fake);
    return {
      devices,
      source: "KILN_GPUS",
      note: devices.length === 0 ? "KILN_GPUS lists no devices" : null,
    };
  }
  const run = options.runNvidiaSmi ?? defaultNvidiaSmi;
  let csv: string;
  try {
    csv = await run();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const note =
      code === "ENOENT"
        ? "nvidia-smi not found: no GPUs"
        : `nvidia-smi failed: ${(error as Error).message.split("\n")[0]}`;
    return { devices: [], source: "none", note };
  }
  const listed = parseNvidiaSmi(csv);
  const visible = visibleGpus(listed, await visibleDevicesValue(env["NVIDIA_VISIBLE_DEVICES"]));
  const devices: GpuDevice[] = [];
  for (const { pciBusId, ...device } of visible.devices) {
    devices.push({ ...device, minor: (await deviceMinor(pciBusId)) ?? device.index });
  }
  const unmatched =
    visible.unmatched.length > 0
      ? `NVIDIA_VISIBLE_DEVICES names ${visible.unmatched.join(", ")}, which nvidia-smi does not list`
      : null;
  const note =
    devices.length > 0
      ? unmatched
      : listed.length === 0
        ? "nvidia-smi lists no GPUs"
        : `NVIDIA_VISIBLE_DEVICES=${JSON.stringify(env["NVIDIA_VISIBLE_DEVICES"])} gives this agent none of the ${listed.length} GPUs nvidia-smi lists${unmatched ? ` (${unmatched})` : ""}`;
  return { devices, source: devices.length > 0 ? "nvidia-smi" : "none", note };
}

/**
 * NVIDIA_VISIBLE_DEVICES as a list. The device plugin's `volume-mounts` strategy sets it to a
 * directory (/var/run/nvidia-container-devices) holding one entry per device it gave the
 * container: those names are the list (a directory that cannot be read gives none).
 */
async function visibleDevicesValue(value: string | undefined): Promise<string | undefined> {
  if (!value?.trim().startsWith("/")) return value;
  const entries = await readdir(value.trim()).catch(() => [] as string[]);
  return entries.join(",");
}

function defaultNvidiaSmi(): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("nvidia-smi", NVIDIA_SMI_ARGS, { timeout: 15_000 }, (error, stdout) =>
      error ? reject(error) : resolve(stdout),
    );
  });
}

/** The driver's "Device Minor" for a PCI bus id ("00000000:3B:00.0" → /proc/driver/nvidia/gpus/0000:3b:00.0). */
async function deviceMinor(pciBusId: string | null): Promise<number | null> {
  if (!pciBusId) return null;
  const id = pciBusId.toLowerCase().replace(/^[0-9a-f]{4}([0-9a-f]{4}:)/, "$1");
  try {
    const info = await readFile(`/proc/driver/nvidia/gpus/${id}/information`, "utf8");
    const match = /Device Minor:\s*(\d+)/.exec(info);
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/** The environment that points CUDA at exactly these devices. */
export function gpuEnv(devices: readonly GpuDevice[]): Record<string, string> {
  const uuids = devices.map((d) => d.uuid).join(",");
  return {
    CUDA_VISIBLE_DEVICES: uuids,
    NVIDIA_VISIBLE_DEVICES: devices.length > 0 ? uuids : "void",
  };
}

export interface GpuRequest {
  options: GpuOption[];
}

export type GpuAcquireResult =
  | { ok: true; option: GpuOption; devices: GpuDevice[]; env: Record<string, string> }
  /** "capacity": would fit once others release; "unsatisfiable": this host never can. */
  | { ok: false; reason: "capacity" | "unsatisfiable"; message: string };

export class GpuAllocator {
  private readonly devices: readonly GpuDevice[];
  private readonly owner = new Map<number, string>();
  private readonly held = new Map<string, GpuDevice[]>();
  private readonly listeners = new Set<() => void>();

  constructor(devices: readonly GpuDevice[]) {
    const seen = new Set<string>();
    for (const device of devices) {
      if (seen.has(device.uuid)) throw new InvalidError(`GPU ${device.uuid} is listed twice`);
      seen.add(device.uuid);
    }
    this.devices = [...devices].sort((a, b) => a.index - b.index);
  }

  get all(): readonly GpuDevice[] {
    return this.devices;
  }

  get free(): GpuDevice[] {
    return this.devices.filter((d) => !this.owner.has(d.index));
  }

  /** The devices `holder` holds (empty when none). */
  heldBy(holder: string): GpuDevice[] {
    return [...(this.held.get(holder) ?? [])];
  }

  /** Who holds each device index. */
  owners(): ReadonlyMap<number, string> {
    return new Map(this.owner);
  }

  /** Whether `request` could be granted now: null, or why not (the acquire message). */
  check(request: GpuRequest | null): string | null {
    if (request === null) return null;
    const result = this.pick(request);
    return result.ok ? null : result.message;
  }

  /** Grant `holder` exclusive devices for the first option that fits, or say why not. */
  acquire(holder: string, request: GpuRequest): GpuAcquireResult {
    if (this.held.has(holder)) throw new Error(`${holder} already holds GPUs; release them first`);
    const result = this.pick(request);
    if (!result.ok) return result;
    for (const device of result.devices) this.owner.set(device.index, holder);
    this.held.set(holder, result.devices);
    return result;
  }

  /** Return `holder`'s devices (idempotent); waiters are told. */
  release(holder: string): GpuDevice[] {
    const devices = this.held.get(holder);
    if (!devices) return [];
    this.held.delete(holder);
    for (const device of devices)
      if (this.owner.get(device.index) === holder) this.owner.delete(device.index);
    for (const listener of this.listeners) listener();
    return devices;
  }

  /** Called whenever devices are released (to retry a waiting start). Returns the unsubscribe. */
  onRelease(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  status(): {
    total: number;
    free: number;
    devices: {
      index: number;
      uuid: string;
      name: string;
      memoryMiB: number;
      holder: string | null;
    }[];
  } {
    return {
      total: this.devices.length,
      free: this.free.length,
      devices: this.devices.map((d) => ({
        index: d.index,
        uuid: d.uuid,
        name: d.name,
        memoryMiB: d.memoryMiB,
        holder: this.owner.get(d.index) ?? null,
      })),
    };
  }

  private pick(request: GpuRequest): GpuAcquireResult {
    if (request.options.length === 0)
      return { ok: false, reason: "unsatisfiable", message: "an empty GPU request" };
    const needs: string[] = [];
    let satisfiable = false;
    for (const option of request.options) {
      if (option.count < 1 || option.count > MAX_GPUS_PER_CONTAINER) {
        needs.push(`${option.count} x ${option.type} (allowed 1..${MAX_GPUS_PER_CONTAINER})`);
        continue;
      }
      const matching = this.devices.filter((d) => gpuMatches(option.type, d));
      const free = matching.filter((d) => !this.owner.has(d.index));
      if (free.length >= option.count) {
        const devices = free.slice(0, option.count);
        return { ok: true, option, devices, env: gpuEnv(devices) };
      }
      if (matching.length >= option.count) satisfiable = true;
      needs.push(`${option.count} x ${option.type}, ${free.length} free`);
    }
    if (satisfiable)
      return {
        ok: false,
        reason: "capacity",
        message: `waiting for capacity: needs ${needs.join("; or ")}`,
      };
    return {
      ok: false,
      reason: "unsatisfiable",
      message: `no GPUs on this host can satisfy ${request.options.map((o) => `${o.count} x ${o.type}`).join(" or ")} (host has ${this.describe()})`,
    };
  }

  private describe(): string {
    return describeGpuOffers(gpuOffers(this.devices));
  }
}
