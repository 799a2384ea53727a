/** The CLI's formatting and argument parsing, without processes. */
import { describe, expect, it } from "vitest";
import { integerArg, jsonArg, parseArg, portArg, positiveNumberArg } from "../../cli/args.js";
import { resolveConnection } from "../../cli/connection.js";
import {
  ExitError,
  exitCodeFor,
  formatError,
  formatLogLine,
  formatValue,
  oneLine,
  table,
  toJsonValue,
} from "../../cli/output.js";
import {
  InvalidError,
  NotFoundError,
  RemoteError,
  UnauthenticatedError,
  UnavailableError,
} from "../../runtime/errors.js";
import type { LogLine } from "../../runtime/protocol.js";

describe("table", () => {
  it("pads text left-aligned and numbers right-aligned", () => {
    expect(
      table(
        [
          ["NAME", "N"],
          ["a", "10"],
          ["long-name", "2"],
        ],
        { right: [1] },
      ),
    ).toEqual(["NAME        N", "a          10", "long-name   2"]);
  });
});

describe("errors", () => {
  it("one line, with the kiln type, exit 2 for invalid input and 1 otherwise", () => {
    expect(formatError(new InvalidError("a: bad\nb: worse"))).toBe(
      "error (InvalidError): a: bad; b: worse",
    );
    expect(formatError(new Error("plain"))).toBe("error: plain");
    expect(formatError(new RemoteError({ name: "RangeError", message: "x" }))).toBe(
      "error (RemoteError): RangeError: x",
    );
    expect(exitCodeFor(new InvalidError("x"))).toBe(2);
    expect(exitCodeFor(new NotFoundError("x"))).toBe(1);
    expect(exitCodeFor(new Error("x"))).toBe(1);
    // The agent refuses (4), cannot be reached (4); an UnavailableError the agent sent is 1.
    expect(exitCodeFor(new UnauthenticatedError("x"))).toBe(4);
    expect(
      exitCodeFor(new UnavailableError("x", { details: { agentUnreachable: "http://h" } })),
    ).toBe(4);
    expect(exitCodeFor(new UnavailableError("store is closed"))).toBe(1);
    expect(exitCodeFor(new ExitError("changes", 7))).toBe(7);
    expect(oneLine("  a\n\n b  \n")).toBe("a; b");
  });
});

describe("values", () => {
  const value = {
    m: new Map([[1, new Set([2n])]]),
    d: new Date(0),
    b: Buffer.from([1]),
    u: undefined,
    e: new Error("boom"),
  };

  it("formatValue shows Map, Set, BigInt and cuts carried stacks", () => {
    const text = formatValue(structuredClone(value));
    expect(text).toContain("Map(1) { 1 => Set(1) { 2n } }");
    expect(text).not.toMatch(/\n\s+at /);
    expect(formatValue("plain")).toBe("plain");
  });

  it("toJsonValue turns what JSON cannot carry into what it can", () => {
    expect(toJsonValue(value)).toEqual({
      m: [[1, ["2"]]],
      d: "1970-01-01T00:00:00.000Z",
      b: [1],
      e: { name: "Error", message: "boom" },
    });
    expect(toJsonValue(new Map([["k", 1]]))).toEqual({ k: 1 });
    const cyclic: Record<string, unknown> = {};
    cyclic["self"] = cyclic;
    expect(toJsonValue(cyclic)).toEqual({ self: "[Circular]" });
    expect(toJsonValue(undefined)).toBeNull();
  });
});

describe("log lines", () => {
  const line: LogLine = {
    ts: "2026-01-01T00:00:00.000Z",
    app: "hello",
    function: "embed",
    callId: "fc-1",
    containerId: "ct-1",
    stream: "stdout",
    text: "one\ntwo\n",
  };

  it("kiln logs: 'ts [fn call-id] text', one line per line of text", () => {
    expect(formatLogLine(line, { ts: true, app: false })).toEqual([
      "2026-01-01T00:00:00.000Z [embed fc-1] one",
      "2026-01-01T00:00:00.000Z [embed fc-1] two",
    ]);
  });

  it("agent terminal: '[app.fn call-id]'; system lines marked", () => {
    expect(
      formatLogLine(
        { ...line, callId: null, stream: "system", text: "ready\n" },
        { ts: false, app: true },
      ),
    ).toEqual(["[hello.embed] (system) ready"]);
  });
});

describe("arguments", () => {
  it("ports, integers and numbers are checked", () => {
    expect(parseArg(portArg, "0", "--port")).toBe(0);
    expect(parseArg(portArg, "7070", "--port")).toBe(7070);
    expect(() => parseArg(portArg, "65536", "--port")).toThrow(
      "--port: must be at most 65535 (got '65536')",
    );
    expect(() => parseArg(portArg, "7.5", "--port")).toThrow(InvalidError);
    expect(() => parseArg(integerArg(0, 10), "-1", "--tail")).toThrow("--tail: must be at least 0");
    expect(parseArg(positiveNumberArg(64), "0.5", "--cpu")).toBe(0.5);
    expect(() => parseArg(positiveNumberArg(64), "0", "--cpu")).toThrow("must be above 0");
  });

  it("call arguments are JSON when they parse, plain strings otherwise", () => {
    expect(parseArg(jsonArg, "7", "a")).toBe(7);
    expect(parseArg(jsonArg, '"7"', "a")).toBe("7");
    expect(parseArg(jsonArg, '{"a":[1]}', "a")).toEqual({ a: [1] });
    expect(parseArg(jsonArg, "hello world", "a")).toBe("hello world");
    expect(parseArg(jsonArg, " null ", "a")).toBe(null);
  });

  it("a call argument that looks like JSON and is not is refused, saying --str sends it as text", () => {
    for (const text of ['{"a":', "[1,2", '"open', "3 apples", "-x"]) {
      expect(() => parseArg(jsonArg, text, "argument 1"), text).toThrow(
        /^argument 1: looks like JSON but is not \(.+\); pass --str to send it as a string/,
      );
    }
  });

  it("call arguments keep big integers as BigInt and refuse numbers JSON cannot hold", () => {
    expect(parseArg(jsonArg, "9007199254740993", "a")).toBe(9007199254740993n);
    expect(parseArg(jsonArg, '{"id":12345678901234567890,"n":2}', "a")).toEqual({
      id: 12345678901234567890n,
      n: 2,
    });
    expect(parseArg(jsonArg, "9007199254740991", "a")).toBe(9007199254740991);
    expect(() => parseArg(jsonArg, "1e999", "a")).toThrow("the number 1e999 is out of range");
    expect(() => parseArg(jsonArg, "[-1e400]", "a")).toThrow("out of range");
  });
});

describe("connection", () => {
  it("flags beat KILN_* which beat the defaults", () => {
    const env = { KILN_URL: "http://env:1", KILN_TOKEN: "env-token", KILN_STATE_DIR: "/env-state" };
    expect(
      resolveConnection({ url: "http://flag:2", token: "flag-token", stateDir: "/flag" }, env),
    ).toEqual({ url: "http://flag:2", token: "flag-token", stateDir: "/flag" });
    expect(resolveConnection({}, env)).toEqual({
      url: "http://env:1",
      token: "env-token",
      stateDir: "/env-state",
    });
    expect(resolveConnection({}, {})).toMatchObject({ url: "http://127.0.0.1:7070" });
    expect(resolveConnection({}, {}).token).toBeUndefined();
  });
});
