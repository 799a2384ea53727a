/** Which command modules `kiln` loads for an argv: only the one it runs (start-up time), all for help. */
import { describe, expect, it } from "vitest";
import { commandsFor, createProgram } from "../../cli/program.js";

const argv = (...words: string[]) => ["node", "kiln", ...words];

describe("commandsFor", () => {
  it("loads the named command alone, also after global flags and with its own --help", () => {
    expect(commandsFor(argv("status", "--json"))).toEqual(["status"]);
    expect(commandsFor(argv("--verbose", "call", "hello", "square", "3"))).toEqual(["call"]);
    expect(commandsFor(argv("deploy", "--help"))).toEqual(["deploy"]);
  });

  it("loads none for a bare --version, and every command for help, no command or an unknown one", () => {
    expect(commandsFor(argv("--version"))).toEqual([]);
    const all = [
      "init",
      "agent",
      "deploy",
      "preview",
      "run",
      "call",
      "status",
      "logs",
      "stop",
      "usage",
    ];
    for (const words of [[], ["--help"], ["help", "deploy"], ["stauts"]])
      expect(commandsFor(argv(...words))).toEqual(all);
  });

  it("the full program has every command", async () => {
    const program = await createProgram();
    expect(program.commands.map((c) => c.name())).toEqual([
      "init",
      "agent",
      "deploy",
      "preview",
      "run",
      "call",
      "status",
      "logs",
      "stop",
      "usage",
    ]);
  });
});
