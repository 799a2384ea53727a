/**
 * A function's cluster-wide container slots: locks `slot:<app>:<fn>:<i>` in the store, one per
 * container, renewed by the pool's heartbeat. Slots [0, maxContainers) keep the cap across every
 * agent; slots [0, minContainers) are the warm minimum.
 */
import type { Store } from "../store/store.js";

export interface ContainerSlotsContext {
  store: Pick<Store, "lock" | "unlock">;
  agentId: string;
  app: string;
  fn: string;
  leaseMs: number;
}

/** A new container's slot: `index`, none needed (no cap), or every slot is taken. */
export type SlotGrant =
  { kind: "slot"; index: number } | { kind: "uncapped" } | { kind: "full"; max: number };

/** After every slot was found taken, no new try before this long. */
const FULL_BACKOFF_MS = 1_000;

export class ContainerSlots {
  /** Every slot was taken at the last try: do not try again before this (Date.now()). */
  private fullUntil = 0;

  constructor(private readonly ctx: ContainerSlotsContext) {}

  /**
   * A free slot for container `containerId`: any of [0, max) that `taken` (this agent's) leaves,
   * locked in the store so the cap holds across agents; none needed when `max` is null.
   */
  async acquire(
    containerId: string,
    max: number | null,
    taken: ReadonlySet<number>,
  ): Promise<SlotGrant> {
    if (max === null) return { kind: "uncapped" };
    for (let index = 0; index < max; index++) {
      if (taken.has(index)) continue;
      if (await this.claim(index, containerId)) return { kind: "slot", index };
    }
    this.fullUntil = Date.now() + FULL_BACKOFF_MS;
    return { kind: "full", max };
  }

  /** Whether every slot was found taken within the last second. */
  recentlyFull(): boolean {
    return Date.now() < this.fullUntil;
  }

  /** Lock slot `index` for `containerId` (the warm minimum's slots are claimed by index). */
  async claim(index: number, containerId: string): Promise<boolean> {
    return (
      (await this.ctx.store.lock(this.key(index), this.owner(containerId), this.ttlMs())) !== null
    );
  }

  /** Renew a container's slot: false when another owner took it (the lock lapsed meanwhile). */
  async renew(index: number, containerId: string): Promise<boolean> {
    const token = await this.ctx.store
      .lock(this.key(index), this.owner(containerId), this.ttlMs())
      .catch(() => 0);
    return token !== null;
  }

  async release(index: number, containerId: string): Promise<void> {
    await this.ctx.store.unlock(this.key(index), this.owner(containerId)).catch(() => false);
  }

  private key(index: number): string {
    return `slot:${this.ctx.app}:${this.ctx.fn}:${index}`;
  }

  private owner(containerId: string): string {
    return `${this.ctx.agentId}/${containerId}`;
  }

  private ttlMs(): number {
    return Math.max(3_000, this.ctx.leaseMs);
  }
}
