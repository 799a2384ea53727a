/**
 * The Redis store's Lua scripts: the constants they use by name, where their files are, and every
 * typed builder (`queue-scripts.ts`, `data-scripts.ts`; see `script-builder.ts`), whose sources
 * `scriptDefinitions` loads (`script-loader.ts`) for ioredis `defineCommand` (EVALSHA, falling
 * back to EVAL after a server restart empties the script cache).
 */
import { DATA_SCRIPTS } from "./data-scripts.js";
import { QUEUE_PARTS } from "./keys.js";
import { QUEUE_SCRIPTS } from "./queue-scripts.js";
import type { Script } from "./script-builder.js";
import { loadScript, type LuaConstant } from "./script-loader.js";

export * from "./data-scripts.js";
export * from "./queue-scripts.js";
export type { Arg, Script } from "./script-builder.js";

/** Items moved per zset per call by the recovery step (the rest on the next call or sweep). */
export const RECOVER_LIMIT = 1000;
/** Expired hash fields dropped per call (the rest count as absent until a later call drops them). */
export const HASH_PURGE_LIMIT = 1000;

/** The constants the Lua sources use by name (declared by the loader in each script that does). */
export const LUA_CONSTANTS: Readonly<Record<string, LuaConstant>> = {
  QUEUE_PARTS,
  QUEUE_WIDTH: QUEUE_PARTS.length,
  RECOVER_LIMIT,
  HASH_PURGE_LIMIT,
};

/** Where the `.lua` files are: beside this module, in `src` (tests) and `dist` alike. */
export const LUA_DIR = new URL("./lua/", import.meta.url);

/** Every script the store runs (each `lua/*.lua` file is one of these). */
export const SCRIPTS: readonly Script<never, unknown>[] = [...QUEUE_SCRIPTS, ...DATA_SCRIPTS];

let sources: Readonly<Record<string, { lua: string }>> | null = null;

/**
 * Every script's source, by command name, as ioredis `defineCommand` (the `scripts` connection
 * option) takes them. The files are read on the first call only.
 */
export function scriptDefinitions(): Readonly<Record<string, { lua: string }>> {
  sources ??= Object.fromEntries(
    SCRIPTS.map((s) => [
      s.command,
      { lua: loadScript(s.file, { dir: LUA_DIR, constants: LUA_CONSTANTS }) },
    ]),
  );
  return sources;
}
