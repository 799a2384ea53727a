/**
 * Reads the Redis store's Lua scripts (`lua/<name>.lua`) and makes each one self-contained source:
 * `--- @include "name"` lines are replaced by `lua/includes/name.lua` (each include at most once
 * per script, its own includes first), and the named constants a script mentions are declared as
 * Lua locals at its top (values defined once in TypeScript).
 */
import { readFileSync } from "node:fs";
import { InternalError } from "../../errors.js";

/** A value a script may use by name: a number, a plain word, or a list of words (a Lua table). */
export type LuaConstant = number | string | readonly string[];

export interface ScriptLoaderOptions {
  /** The folder with the scripts; its `includes/` subfolder holds the includes. */
  dir: URL;
  /** Declared (`local NAME = value`) in every script whose source mentions NAME. */
  constants?: Readonly<Record<string, LuaConstant>>;
}

const INCLUDE = /^--- @include "([^"]*)"[ \t]*$/gm;
const WORD = /^[A-Za-z0-9_.:-]*$/;

/** The source of script `name` (the file `<dir>/<name>.lua`), includes resolved, constants declared. */
export function loadScript(name: string, options: ScriptLoaderOptions): string {
  const file = new URL(`${name}.lua`, options.dir);
  const body = resolveIncludes(read(file, `script ${name}`), {
    dir: new URL("includes/", options.dir),
    chain: [`${name}.lua`],
    done: new Set(),
  });
  return declareConstants(body, options.constants ?? {});
}

interface Resolution {
  readonly dir: URL;
  /** The files being resolved, outermost first (for messages and cycles). */
  readonly chain: string[];
  /** Includes already pasted into this script. */
  readonly done: Set<string>;
}

function resolveIncludes(source: string, at: Resolution): string {
  return source.replace(INCLUDE, (_line, name: string) => {
    if (at.done.has(name)) return "";
    const file = `${name}.lua`;
    if (at.chain.includes(file))
      throw new InternalError(`redis scripts: include cycle ${[...at.chain, file].join(" -> ")}`);
    const text = read(new URL(file, at.dir), `include "${name}" (from ${at.chain.join(" -> ")})`);
    at.chain.push(file);
    const resolved = resolveIncludes(text, at);
    at.chain.pop();
    at.done.add(name);
    return resolved.trimEnd();
  });
}

function read(file: URL, what: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    throw new InternalError(
      `redis scripts: ${what} not found: cannot read ${decodeURIComponent(file.pathname)}`,
      { cause: error },
    );
  }
}

function declareConstants(
  source: string,
  constants: Readonly<Record<string, LuaConstant>>,
): string {
  const declarations: string[] = [];
  for (const [name, value] of Object.entries(constants)) {
    if (new RegExp(`\\b${name}\\b`).test(source))
      declarations.push(`local ${name} = ${luaLiteral(name, value)}`);
  }
  return declarations.length === 0 ? source : `${declarations.join("\n")}\n${source}`;
}

function luaLiteral(name: string, value: LuaConstant): string {
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value))
      throw new InternalError(`redis scripts: constant ${name} must be an integer, got ${value}`);
    return String(value);
  }
  const words = typeof value === "string" ? [value] : value;
  for (const word of words) {
    if (!WORD.test(word))
      throw new InternalError(
        `redis scripts: constant ${name} must be plain words, got ${JSON.stringify(word)}`,
      );
  }
  const quoted = words.map((word) => `'${word}'`);
  return typeof value === "string" ? quoted[0]! : `{ ${quoted.join(", ")} }`;
}
