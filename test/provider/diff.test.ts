/** The app diff (pure): what `pulumi preview` and `kiln preview` report, field by field. */
import { describe, expect, it } from "vitest";
import { compileAppSpec, type AppSpecInput } from "../../runtime/spec/index.js";
import { diffApps, formatAppDiff, type AppView } from "../../provider/diff.js";

function view(
  spec: AppSpecInput,
  code: Record<string, string | null> = {},
  secretValuesKnown = true,
): AppView {
  const compiled = compileAppSpec(spec);
  return {
    name: compiled.name,
    endpoint: "http://agent:7070",
    functions: Object.fromEntries(
      Object.entries(compiled.functions).map(([name, fn]) => [
        name,
        {
          spec: fn,
          code: code[name] === undefined ? "a".repeat(64) : code[name],
          secretValuesKnown,
        },
      ]),
    ),
    dicts: compiled.dicts,
    queues: compiled.queues,
    schedules: compiled.schedules,
  };
}

const base: AppSpecInput = {
  name: "app",
  functions: {
    f: { handler: "./f.ts#f", maxContainers: 2, env: { A: "1" }, secrets: { K: "v1" } },
    g: { handler: "./f.ts#g" },
  },
  dicts: { d: {} },
  schedules: { s: { function: "f", cron: "0 3 * * *" } },
};

describe("diffApps", () => {
  it("no change", () => {
    const d = diffApps(view(base), view(base));
    expect(d.changed).toBe(false);
    expect(formatAppDiff(d, { version: 4 })).toEqual(["app app (version 4): no changes"]);
  });

  it("a new app: everything added", () => {
    const d = diffApps(null, view(base));
    expect(d).toMatchObject({
      exists: false,
      changed: true,
      counts: { add: 4, change: 0, remove: 0 },
    });
    expect(formatAppDiff(d)).toEqual([
      "app app: new app",
      "  + function f",
      "  + function g",
      "  + dict d",
      "  + schedule s",
      "  4 to add, 0 to change, 0 to remove",
    ]);
  });

  it("nested fields, env, secrets (values hidden), handler, batching, dicts and schedules", () => {
    const next: AppSpecInput = {
      name: "app",
      functions: {
        f: {
          handler: "./f.ts#f2",
          maxContainers: 3,
          memory: [128, 256],
          env: { A: "2", B: "x" },
          secrets: { K: "v2", L: "w" },
          batched: { maxBatchSize: 4, waitMs: 10 },
        },
        h: { handler: "./f.ts#h" },
      },
      dicts: { d: { maxEntries: 5 } },
      schedules: { s: { function: "f", cron: "0 4 * * *" } },
    };
    const d = diffApps(view(base), view(next, { f: "b".repeat(64) }));
    expect(formatAppDiff(d)).toEqual([
      "app app:",
      "  ~ function f",
      '      handler: "./f.ts#f" -> "./f.ts#f2"',
      '      batched: null -> {"maxBatchSize":4,"waitMs":10}',
      '      env.A: "1" -> "2"',
      '      env.B: (none) -> "x"',
      "      maxContainers: 2 -> 3",
      "      memory.limit: null -> 256",
      "      secrets.K: (secret) changed",
      "      secrets.L: (none) -> [secret]",
      "      code: aaaaaaaaaaaa -> bbbbbbbbbbbb",
      "  - function g",
      "  + function h",
      "  ~ dict d",
      "      maxEntries: 10000000 -> 5",
      "  ~ schedule s",
      '      cron: "0 3 * * *" -> "0 4 * * *"',
      "  1 to add, 3 to change, 1 to remove",
    ]);
    expect(JSON.stringify(d)).not.toContain("v2");
  });

  it("against an agent: secret values unknown, code from the container version", () => {
    const old = view(base, { f: null, g: null }, false);
    old.functions["f"]!.hidden = "code-or-secrets";
    old.functions["g"]!.hidden = "code";
    const d = diffApps(old, view(base));
    expect(d.entries).toEqual([
      {
        kind: "function",
        name: "f",
        action: "change",
        fields: [{ field: "code or secret values", old: "(changed)", new: "aaaaaaaaaaaa" }],
      },
      {
        kind: "function",
        name: "g",
        action: "change",
        fields: [{ field: "code", old: "(changed)", new: "aaaaaaaaaaaa" }],
      },
    ]);
    old.functions["f"]!.hidden = "same";
    old.functions["g"]!.hidden = "same";
    expect(diffApps(old, view(base)).changed).toBe(false);
  });

  it("secret paths: a change under one (or holding one) reads (secret) changed, never a value", () => {
    const next: AppSpecInput = {
      ...base,
      functions: {
        ...base.functions,
        f: { handler: "./f.ts#f", maxContainers: 3, env: { A: "1" }, secrets: { K: "v1" } },
      },
      dicts: { d: { maxEntries: 77 } },
      schedules: { s: { function: "f", cron: "0 3 * * *", args: ["hunter2"] } },
    };
    const d = diffApps(view(base), view(next), {
      secretPaths: ["functions.f.maxContainers", "dicts.d", "schedules.s.args.0"],
    });
    expect(formatAppDiff(d)).toEqual([
      "app app:",
      "  ~ function f",
      "      maxContainers: (secret) changed",
      "  ~ dict d",
      "      maxEntries: (secret) changed",
      "  ~ schedule s",
      "      args: (secret) changed",
      "  0 to add, 3 to change, 0 to remove",
    ]);
    expect(JSON.stringify(d)).not.toMatch(/hunter2|77|"3"|: 3/);
    // Everything secret (a spec marked secret as a whole).
    const all = diffApps(view(base), view(next), { secretPaths: [""] });
    expect(all.entries.flatMap((e) => e.fields).every((f) => f.secret === true)).toBe(true);
  });

  it("a secret value the agent's container version says changed: named when it is the only one", () => {
    const old = view(base, {}, false);
    old.functions["f"]!.hidden = "secrets";
    expect(formatAppDiff(diffApps(old, view(base)))).toEqual([
      "app app:",
      "  ~ function f",
      "      secrets.K: (secret) changed",
      "  0 to add, 1 to change, 0 to remove",
    ]);
  });

  it("a rename or another agent replaces", () => {
    const d = diffApps(view(base), view({ ...base, name: "app2" }));
    expect(d.replaces).toEqual([{ field: "appName", old: "app", new: "app2" }]);
    expect(formatAppDiff(d)[1]).toBe('  +- appName: "app" -> "app2" (replaces the app)');
    expect(
      diffApps(view(base), { ...view(base), endpoint: "http://other:7070/" }).replaces.map(
        (r) => r.field,
      ),
    ).toEqual(["endpoint"]);
    expect(diffApps(view(base), { ...view(base), endpoint: "http://agent:7070/" }).changed).toBe(
      false,
    );
  });
});
