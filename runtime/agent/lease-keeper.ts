/**
 * Keeps the claims of running work: renews their leases in the store when asked (the pool's
 * heartbeat) and knows until when each group is surely still this agent's (its trusted part), as
 * BullMQ's LockManager keeps job locks. A claim found taken is reported and its group untrusted.
 */
import type { Claim, Store } from "../store/store.js";

/**
 * A claim is trusted as still this agent's for this share of its lease, counted from before the
 * claim (or renewal) was asked for: the store started the lease later than that, and the slack
 * covers clocks that run at slightly different rates. Within it, a waiting caller on this agent
 * is handed its outcome before the store step that finishes the claim returns (see
 * OutcomeWriter.settle).
 */
export const TRUSTED_LEASE_SHARE = 0.75;

export interface LeaseKeeperContext {
  renew: Store["renew"];
  leaseMs: number;
  log(text: string): void;
}

/** The claims of one piece of work, claimed together: trusted or not as one. */
export class Lease {
  /**
   * Until when (performance.now()) its claims are surely still held: the start of the claim or
   * of the last renewal that confirmed them all, plus the trusted share of the lease. -Infinity
   * once a renewal found one taken.
   */
  private until: number;

  constructor(until: number) {
    this.until = until;
  }

  /** Whether every claim is surely still this agent's now. */
  trusted(): boolean {
    return performance.now() < this.until;
  }

  /** @internal LeaseKeeper only. */
  confirm(until: number): void {
    this.until = Math.max(this.until, until);
  }

  /** @internal LeaseKeeper only. */
  lose(): void {
    this.until = Number.NEGATIVE_INFINITY;
  }
}

/** A tracked claim, with the input it carries (named in the log). */
export interface LeasedClaim {
  claim: Claim;
  input: { id: string };
}

export class LeaseKeeper {
  private readonly tracked = new Map<Lease, readonly LeasedClaim[]>();

  constructor(private readonly ctx: LeaseKeeperContext) {}

  /** A lease on claims asked for at `askedAt` (performance.now(), taken before the claim). */
  open(askedAt: number): Lease {
    return new Lease(this.trustedFrom(askedAt));
  }

  /** Renew `claims` under `lease` from now on (while their work runs). */
  track(lease: Lease, claims: readonly LeasedClaim[]): void {
    this.tracked.set(lease, claims);
  }

  untrack(lease: Lease): void {
    this.tracked.delete(lease);
  }

  /** Forget every tracked claim (the pool stopped and handed them back). */
  clear(): void {
    this.tracked.clear();
  }

  /**
   * Renew every tracked claim once. Eager hand-overs not yet recorded are skipped: they have no
   * fence to renew, and their lease starts when they are recorded.
   */
  async renew(): Promise<void> {
    if (this.tracked.size === 0) return;
    const due: { lease: Lease; leased: LeasedClaim }[] = [];
    for (const [lease, claims] of this.tracked) {
      for (const leased of claims) if (!leased.claim.recorded) due.push({ lease, leased });
    }
    if (due.length === 0) return;
    try {
      const askedAt = performance.now();
      const alive = await this.ctx.renew(
        due.map((d) => d.leased.claim),
        this.ctx.leaseMs,
      );
      const renewed = new Set<Lease>();
      const lost = new Set<Lease>();
      alive.forEach((ok, i) => {
        const entry = due[i];
        if (!entry) return;
        (ok ? renewed : lost).add(entry.lease);
        if (!ok)
          this.ctx.log(
            `lost the lease on input ${entry.leased.input.id}; another delivery may run it`,
          );
      });
      for (const lease of renewed) if (!lost.has(lease)) lease.confirm(this.trustedFrom(askedAt));
      for (const lease of lost) lease.lose();
    } catch (error) {
      this.ctx.log(`lease renewal failed: ${(error as Error).message}`);
    }
  }

  /** Until when a lease asked for (or renewed) at `askedAt` is surely still held. */
  private trustedFrom(askedAt: number): number {
    return askedAt + this.ctx.leaseMs * TRUSTED_LEASE_SHARE;
  }
}
