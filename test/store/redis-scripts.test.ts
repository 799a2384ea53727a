/**
 * The Redis store's script loader and Lua files (no server needed): includes resolved once each,
 * a missing include named in the error, the constants declared from TypeScript, and every
 * script's header naming the KEYS and ARGV it reads.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { InternalError } from "../../runtime/errors.js";
import { QUEUE_PARTS } from "../../runtime/store/redis/keys.js";
import { loadScript } from "../../runtime/store/redis/script-loader.js";
import {
  LUA_CONSTANTS,
  LUA_DIR,
  RECOVER_LIMIT,
  HASH_PURGE_LIMIT,
  SCRIPTS,
  scriptDefinitions,
} from "../../runtime/store/redis/scripts.js";

const luaFiles = (dir: URL): string[] =>
  readdirSync(dir)
    .filter((name) => name.endsWith(".lua"))
    .map((name) => name.slice(0, -".lua".length))
    .sort();

const source = (file: string): string => readFileSync(new URL(`${file}.lua`, LUA_DIR), "utf8");

/** The leading `--[[ ... ]]` comment of a Lua file, and what follows it. */
function header(text: string): { header: string; body: string } {
  const match = /^--\[\[\n([\s\S]*?)\n\]\]\n/.exec(text);
  if (!match) throw new Error("no header comment");
  return { header: match[1]!, body: text.slice(match[0].length) };
}

/** A KEYS/ARGV index written with numbers, the named constants, + and *; null when it is not. */
function constantIndex(expr: string): number | null {
  const numbers = expr
    .trim()
    .split(/\s*\+\s*/)
    .map((term) =>
      term.split(/\s*\*\s*/).reduce<number | null>((product, factor) => {
        const value = /^\d+$/.test(factor) ? Number(factor) : LUA_CONSTANTS[factor];
        return product === null || typeof value !== "number" ? null : product * value;
      }, 1),
    );
  return numbers.some((n) => n === null) ? null : numbers.reduce<number>((a, b) => a + b!, 0);
}

describe("redis scripts: files", () => {
  it("every .lua file is a registered script, and every script has its file", () => {
    expect(SCRIPTS.map((s) => s.file).sort()).toEqual(luaFiles(LUA_DIR));
    const commands = SCRIPTS.map((s) => s.command);
    expect(new Set(commands).size).toBe(commands.length);
    expect(commands).toContain("kilnEnqueueClaim");
  });

  it("every script and include starts with a header comment", () => {
    for (const file of luaFiles(LUA_DIR)) expect(() => header(source(file)), file).not.toThrow();
    const includes = new URL("includes/", LUA_DIR);
    for (const file of luaFiles(includes)) {
      const text = readFileSync(new URL(`${file}.lua`, includes), "utf8");
      expect(() => header(text), `includes/${file}`).not.toThrow();
    }
  });

  it("every script's header names each KEYS and ARGV index it reads, and its reply", () => {
    for (const file of luaFiles(LUA_DIR)) {
      const { header: text, body } = header(source(file));
      expect(text, file).toMatch(/\bReturns\b/);
      for (const kind of ["KEYS", "ARGV"] as const) {
        const ranges: [number, number][] = [];
        for (const m of text.matchAll(new RegExp(`^\\s*${kind}\\[([^\\]]+)\\]`, "gm"))) {
          const [from, to] = m[1]!.split("..");
          const start = constantIndex(from!);
          const end = to === undefined ? start : to === "" ? Infinity : constantIndex(to);
          expect(start !== null && end !== null, `${file}: ${m[0]}`).toBe(true);
          ranges.push([start!, end!]);
        }
        if (ranges.length === 0) expect(text, `${file} names no ${kind}`).toMatch(`${kind}: none`);
        for (const m of body.matchAll(new RegExp(`${kind}\\[([^\\]]+)\\]`, "g"))) {
          const index = constantIndex(m[1]!);
          if (index === null) continue;
          expect(
            ranges.some(([a, b]) => index >= a && index <= b),
            `${file}: ${m[0]} is not in its header`,
          ).toBe(true);
        }
      }
    }
  });

  it("writes no queue block width of its own: QUEUE_WIDTH and qkeys come from QUEUE_PARTS", () => {
    for (const file of luaFiles(LUA_DIR)) {
      const { body } = header(source(file));
      expect(body, file).not.toMatch(/KEYS\[(9|1\d)\b|\b8 \*|\* 8\b|\(#KEYS - 2\) \/ 8/);
      expect(body, file).not.toMatch(/local (QUEUE_WIDTH|QUEUE_PARTS|RECOVER_LIMIT)\b/);
    }
  });
});

describe("redis scripts: loaded sources", () => {
  const defs = scriptDefinitions();

  it("has every include resolved, each function defined once", () => {
    for (const script of SCRIPTS) {
      const lua = defs[script.command]!.lua;
      expect(lua, script.file).not.toMatch(/@include/);
      for (const m of lua.matchAll(/^local function (\w+)/gm)) {
        const count = lua.split(`local function ${m[1]}(`).length - 1;
        expect(count, `${script.file}: ${m[1]}`).toBe(1);
      }
    }
    // release includes notify directly and again through held.
    const release = defs["kilnRelease"]!.lua;
    expect(release).toMatch(/local function held\(/);
    expect(release).toMatch(/local function lapse\(/);
    // held's own includes come before it.
    expect(release.indexOf("local function lapse(")).toBeLessThan(
      release.indexOf("local function held("),
    );
  });

  it("declares the constants a script uses, with the TypeScript values", () => {
    const claim = defs["kilnClaim"]!.lua;
    expect(claim).toContain(`local QUEUE_WIDTH = ${QUEUE_PARTS.length}\n`);
    expect(claim).toContain(
      `local QUEUE_PARTS = { ${QUEUE_PARTS.map((part) => `'${part}'`).join(", ")} }\n`,
    );
    expect(claim).toContain(`local RECOVER_LIMIT = ${RECOVER_LIMIT}\n`);
    expect(defs["kilnHashSet"]!.lua).toContain(`local HASH_PURGE_LIMIT = ${HASH_PURGE_LIMIT}\n`);
    // Only what a script uses: the lock script has no queue.
    expect(defs["kilnLock"]!.lua).not.toMatch(/QUEUE_WIDTH|RECOVER_LIMIT/);
  });
});

describe("redis scripts: the loader", () => {
  let dir: string | null = null;

  function scripts(files: Record<string, string>): URL {
    dir = mkdtempSync(join(tmpdir(), "kiln-lua-"));
    mkdirSync(join(dir, "includes"));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    return pathToFileURL(`${dir}/`);
  }

  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = null;
  });

  it("pastes includes in place, their own includes first, each once", () => {
    const at = scripts({
      "main.lua": '--- @include "b"\n--- @include "a"\nreturn b() + a()\n',
      "includes/a.lua": "local function a() return 1 end\n",
      "includes/b.lua": '--- @include "a"\nlocal function b() return a() end\n',
    });
    expect(loadScript("main", { dir: at })).toBe(
      "local function a() return 1 end\nlocal function b() return a() end\n\nreturn b() + a()\n",
    );
  });

  it("fails on a missing include, naming it and who included it", () => {
    const at = scripts({
      "main.lua": '--- @include "a"\nreturn 1\n',
      "includes/a.lua": '--- @include "missing-one"\nlocal x = 1\n',
    });
    const load = () => loadScript("main", { dir: at });
    expect(load).toThrow(InternalError);
    expect(load).toThrow(/include "missing-one" \(from main\.lua -> a\.lua\) not found/);
    expect(load).toThrow(/includes\/missing-one\.lua/);
  });

  it("fails on a missing script and on an include cycle", () => {
    const at = scripts({
      "main.lua": '--- @include "a"\n',
      "includes/a.lua": '--- @include "b"\n',
      "includes/b.lua": '--- @include "a"\n',
    });
    expect(() => loadScript("absent", { dir: at })).toThrow(/script absent not found/);
    expect(() => loadScript("main", { dir: at })).toThrow(
      /include cycle main\.lua -> a\.lua -> b\.lua -> a\.lua/,
    );
  });

  it("declares only the constants a script mentions, and refuses values Lua cannot hold", () => {
    const at = scripts({ "main.lua": "return LIMIT + #PARTS\n" });
    const constants = { LIMIT: 5, PARTS: ["x", "y"], UNUSED: 1 };
    expect(loadScript("main", { dir: at, constants })).toBe(
      "local LIMIT = 5\nlocal PARTS = { 'x', 'y' }\nreturn LIMIT + #PARTS\n",
    );
    expect(() => loadScript("main", { dir: at, constants: { LIMIT: 1.5 } })).toThrow(/integer/);
    expect(() => loadScript("main", { dir: at, constants: { LIMIT: "it's" } })).toThrow(
      /plain words/,
    );
  });
});
