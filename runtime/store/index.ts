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
// The Redis implementation is loaded only when asked for (openStore, or import "./redis/index.js"):
// an embedded agent does not pay for ioredis at start-up.
export type { RedisStoreOptions, ClaimInfo } from "./redis/index.js";

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

/** The Redis store: several agents share one Redis server (6.2 or later). */
export interface RedisStoreConfig {
  kind: "redis";
  /** `redis://[user:password@]host:port[/db]`. */
  url: string;
  /** Namespace of every key and channel. Default `kiln:`. */
  prefix?: string;
  /** Time source for local timers (waits, re-checks, the sweep); leases and delays use the server's clock. */
  clock?: Clock;
}

/** Which store to open. */
export type StoreConfig = EmbeddedStoreConfig | RedisStoreConfig;

export async function openStore(options: StoreConfig): Promise<Store> {
  switch (options.kind) {
    case "embedded":
      return EmbeddedStore.open({ dir: options.dir, fsync: options.fsync, clock: options.clock });
    case "redis": {
      const { RedisStore } = await import("./redis/index.js");
      return RedisStore.open({ url: options.url, prefix: options.prefix, clock: options.clock });
    }
    default:
      throw new InvalidError(
        `unknown store kind ${JSON.stringify((options as { kind: unknown }).kind)}`,
      );
  }
}
