import { describe, expect, it } from "vitest";
import { compileAppSpec, handlerProblem } from "../../runtime/spec/index.js";
import { linesOf } from "./helpers.js";

const handlerOf = (handler: string) =>
  compileAppSpec({ name: "app", functions: { f: { handler } } }).functions.f?.handler;

describe("handler", () => {
  it("parses ./file.ts#export", () => {
    expect(handlerOf("./functions.ts#square")).toEqual({
      ref: "./functions.ts#square",
      file: "./functions.ts",
      exportName: "square",
      method: null,
    });
  });

  it("parses ./file.ts#Class.method", () => {
    expect(handlerOf("./functions.ts#Model.embed")).toEqual({
      ref: "./functions.ts#Model.embed",
      file: "./functions.ts",
      exportName: "Model",
      method: "embed",
    });
  });

  it.each([
    "./a.js#f",
    "./a.mjs#f",
    "./a.mts#f",
    "./a.cts#f",
    "./a.tsx#f",
    "../shared/lib/a.ts#f",
    "./dir/a.ts#$f",
    "./a.ts#_F.run_2",
  ])("accepts %j", (ref) => {
    expect(handlerProblem(ref)).toBeNull();
    expect(handlerOf(ref)?.ref).toBe(ref);
  });

  const bad: [string, RegExp][] = [
    ["./functions.ts", /has no "#export" part/],
    ["/abs/functions.ts#square", /must be a relative path starting with "\.\/" or "\.\.\/"/],
    ["functions.ts#square", /must be a relative path/],
    ["C:\\x\\f.ts#square", /must be a relative path/],
    ["./functions.py#square", /must end in \.ts, \.tsx, \.mts, \.cts, \.js, \.mjs/],
    ["./.ts#square", /must end in/],
    ["./functions.ts#", /"" is not an export name or Class\.method/],
    ["./functions.ts#1square", /is not an export name/],
    ["./functions.ts#sq-uare", /is not an export name/],
    ["./functions.ts#A.b.c", /is not an export name/],
    ["./functions.ts#A.", /is not an export name/],
    ["./functions.ts#a#b", /is not an export name/],
    ["", /has no "#export" part/],
  ];
  it.each(bad)("rejects %j", (ref, pattern) => {
    const lines = linesOf({ name: "app", functions: { f: { handler: ref } } });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^functions\.f\.handler: /);
    expect(lines[0]).toMatch(pattern);
  });
});
