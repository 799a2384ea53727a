/**
 * The host's CPU capacity, shared by every function pool: a container is started only when its
 * cpu request fits. When it does not, idle containers of other functions are stopped first
 * (evictors), so an idle function never blocks a busy one.
 */
/** What a starting container is short of. */
export type Need = "cpu" | "gpu";

export class HostCapacity {
  private used = 0;
  private readonly evictors: ((need: Need) => boolean)[] = [];
  private readonly listeners: (() => void)[] = [];

  constructor(readonly total: number) {}

  get inUse(): number {
    return this.used;
  }

  /**
   * Whether `cpu` cores fit now. When they do not, asks other pools to stop idle containers;
   * their cores come back when those exit, and `onRelease` listeners are told.
   */
  canFit(cpu: number): boolean {
    if (this.fits(cpu)) return true;
    this.relieve("cpu");
    return false;
  }

  /** Ask every pool to stop one idle container that holds what is short (cpu, or GPUs). */
  relieve(need: Need): void {
    for (const evict of this.evictors) evict(need);
  }

  /** Reserve `cpu` cores. False when they do not fit. */
  reserve(cpu: number): boolean {
    if (!this.fits(cpu)) return false;
    this.used += cpu;
    return true;
  }

  release(cpu: number): void {
    this.used = Math.max(0, this.used - cpu);
    for (const listener of this.listeners) listener();
  }

  /**
   * Register a pool: `evict` stops one of its idle containers (returning whether it did),
   * `onRelease` is called whenever cores are released. Returns the unregister function.
   */
  register(evict: (need: Need) => boolean, onRelease: () => void): () => void {
    this.evictors.push(evict);
    this.listeners.push(onRelease);
    return () => {
      this.evictors.splice(this.evictors.indexOf(evict), 1);
      this.listeners.splice(this.listeners.indexOf(onRelease), 1);
    };
  }

  private fits(cpu: number): boolean {
    return this.used + cpu <= this.total + 1e-9;
  }
}
