/**
 * What a host advertises of its GPUs, grouped by model, and how it reads: no dependencies, so
 * the CLI's output and the protocol's types load it without the spec (and zod).
 */

/** What a host advertises of its GPUs: each device model (name and memory) and how many it has. */
export interface GpuOffer {
  name: string;
  memoryMiB: number;
  count: number;
  /** How many of them no container holds, when the host says (its advertisement, for `kiln status`). */
  free?: number;
}

/**
 * Group devices by model (name and memory), in device order. Devices that say who holds them
 * (`holder`, null when free: the allocator's status) also count the free ones.
 */
export function gpuOffers(
  devices: readonly { name: string; memoryMiB: number; holder?: string | null }[],
): GpuOffer[] {
  const offers: GpuOffer[] = [];
  for (const device of devices) {
    let offer = offers.find((o) => o.name === device.name && o.memoryMiB === device.memoryMiB);
    if (!offer) {
      offer = {
        name: device.name,
        memoryMiB: device.memoryMiB,
        count: 0,
        ...(device.holder === undefined ? {} : { free: 0 }),
      };
      offers.push(offer);
    }
    offer.count += 1;
    if (device.holder === null && offer.free !== undefined) offer.free += 1;
  }
  return offers;
}

/** "2 x NVIDIA A100-SXM4-80GB, 1 x H100", or "no GPUs". */
export function describeGpuOffers(offers: readonly GpuOffer[]): string {
  return offers.length === 0 ? "no GPUs" : offers.map((o) => `${o.count} x ${o.name}`).join(", ");
}
