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
export interface Lease {
  /** Whether every claim is surely still this agent's now. */
  trusted(): boolean;
}

class Trust implements Lease {
  /**
   * Until when (performance.now()) the claims are surely still held: the start of the claim or
   * of the last renewal that confirmed them all, plus the trusted share of the lease. -Infinity
   * once a renewal found one taken.
   */
  constructor(public until: number) {}

  trusted(): boolean {
    return performance.now() < this.until;
  }
}

/** A tracked claim, with the input it carries (named in the log). */
export interface LeasedClaim {
  claim: Claim;
  input: { id: string };
}

export class LeaseKeeper {
  private readonly tracked = new Map<Trust, readonly LeasedClaim[]>();

  constructor(private readonly ctx: LeaseKeeperContext) {}

  /** A lease on claims asked for at `askedAt` (performance.now(), taken before the claim). */
  open(askedAt: number): Lease {
    return new Trust(this.trustedFrom(askedAt));
  }

  /** Renew `claims` under `lease` from now on (while their work runs). */
  track(lease: Lease, claims: readonly LeasedClaim[]): void {
    this.tracked.set(own(lease), claims);
  }

  untrack(lease: Lease): void {
    this.tracked.delete(own(lease));
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
    const due: { lease: Trust; leased: LeasedClaim }[] = [];
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
      const renewed = new Set<Trust>();
      const lost = new Set<Trust>();
      alive.forEach((ok, i) => {
        const entry = due[i];
        if (!entry) return;
        (ok ? renewed : lost).add(entry.lease);
        if (!ok)
          this.ctx.log(
            `lost the lease on input ${entry.leased.input.id}; another delivery may run it`,
          );
      });
      const until = this.trustedFrom(askedAt);
      for (const lease of renewed) if (!lost.has(lease)) lease.until = Math.max(lease.until, until);
      for (const lease of lost) lease.until = Number.NEGATIVE_INFINITY;
    } catch (error) {
      this.ctx.log(`lease renewal failed: ${(error as Error).message}`);
    }
  }

  /** Until when a lease asked for (or renewed) at `askedAt` is surely still held. */
  private trustedFrom(askedAt: number): number {
    return askedAt + this.ctx.leaseMs * TRUSTED_LEASE_SHARE;
  }
}

/** Every Lease is a Trust this module made: its own view of one to change it. */
function own(lease: Lease): Trust {
  return lease as Trust;
}
