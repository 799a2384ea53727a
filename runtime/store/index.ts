/**
 * The store: one interface ({@link Store}), its implementations, and `openStore`, which picks one
 * from configuration.
 */
import type { Clock } from "../clock.js";
import { InvalidError } from "../errors.js";
import { EmbeddedStore } from "./embedded/index.js";
import type { Store } from "./store.js";

export type * from "./store.js";
export { EmbeddedStore, type EmbeddedStoreOptions } from "./embedded/index.js";

/** The in-process store (the default). */
export interface EmbeddedStoreConfig {
  kind: "embedded";
  /** Directory of the append-only log. Without it the store is memory-only. */
  dir?: string;
  /** fsync every flush (survives power loss). Default false. */
  fsync?: boolean;
  /** Time source; the system clock by default (tests pass a fake one). */
  clock?: Clock;
}

/** Which store to open. A `{ kind: "redis", ... }` member joins this union with the Redis store. */
export type StoreConfig = EmbeddedStoreConfig;

export async function openStore(options: StoreConfig): Promise<Store> {
  switch (options.kind) {
    case "embedded":
      return EmbeddedStore.open({ dir: options.dir, fsync: options.fsync, clock: options.clock });
    default:
      throw new InvalidError(`unknown store kind ${JSON.stringify((options as { kind: unknown }).kind)}`);
  }
}
