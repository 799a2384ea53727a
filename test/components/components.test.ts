/**
 * The components under Pulumi's mock runtime, each program in a fresh Node process (as `pulumi up`
 * runs it): the resources registered with their types, names and parents, the AppSpec gathered into
 * the AppDeployment, secrets kept secret, bad arguments refused with the field path, and specHash.
 */
import { cp, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileAppSpec } from "../../runtime/spec/index.js";
import {
  HANDLERS,
  makeProgram,
  program,
  removeDir,
  repoRoot,
  runMocked,
  runMockedMany,
  type MockedRun,
} from "./helpers.js";

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await removeDir(dir);
});

async function evaluate(
  source: string,
  files: Record<string, string> = {},
  options: Parameters<typeof runMocked>[1] = {},
) {
  const dir = await makeProgram({ "index.ts": source, "functions.ts": HANDLERS, ...files });
  dirs.push(dir);
  return { dir, run: await runMocked(join(dir, "index.ts"), options) };
}

describe("a program with every component", () => {
  let run: Awaited<ReturnType<typeof runMocked>>;
  let dir: string;
  beforeAll(async () => {
    ({ run, dir } = await evaluate(
      program(`
export const square = new ServerlessFunction("square", { app, handler: "./functions.ts#square", maxContainers: 2, cpu: [0.5, 1], env: { MODE: "fast" } });
export const embed = new ServerlessFunction("embed", {
  app, handler: "./functions.ts#Model.embed", memory: [256, 512], batched: { maxBatchSize: 8, waitMs: 5 },
  secrets: { API_KEY: pulumi.secret("sk-very-secret") },
});
export const cache = new DistributedDict("cache", { app, maxEntries: 1000 });
export const jobs = new DistributedQueue("jobs", { app, maxPartitions: 10 });
export const nightly = new Schedule("nightly", { app, function: square, cron: "0 3 * * *", args: [7] });
export const specHash = app.specHash;
export const fnHash = square.specHash;
export const token = pool.token;
export const appName = square.appName;
`),
    ));
  });

  it("registers each component with its type token and name, and one AppDeployment", () => {
    expect(run.error).toBeNull();
    expect(run.resources.map((r) => `${r.type} ${r.name}`).sort()).toEqual(
      [
        "kiln:index:App demo",
        "kiln:index:DistributedDict cache",
        "kiln:index:DistributedQueue jobs",
        "kiln:index:GpuPool pool",
        "kiln:index:Schedule nightly",
        "kiln:index:ServerlessFunction embed",
        "kiln:index:ServerlessFunction square",
        "pulumi-nodejs:dynamic/kiln:AppDeployment demo-deployment",
      ].sort(),
    );
  });

  it("parents functions, dicts, queues and schedules to their App (URNs carry the parent type)", () => {
    expect(run.exports["app"]?.urn).toMatch(/::kiln:index:App::demo$/);
    expect(run.exports["pool"]?.urn).toMatch(/::kiln:index:GpuPool::pool$/);
    expect(run.exports["square"]?.urn).toMatch(
      /::kiln:index:App\$kiln:index:ServerlessFunction::square$/,
    );
    expect(run.exports["cache"]?.urn).toMatch(
      /::kiln:index:App\$kiln:index:DistributedDict::cache$/,
    );
    expect(run.exports["jobs"]?.urn).toMatch(
      /::kiln:index:App\$kiln:index:DistributedQueue::jobs$/,
    );
    expect(run.exports["nightly"]?.urn).toMatch(/::kiln:index:App\$kiln:index:Schedule::nightly$/);
  });

  it("gathers the app into one AppSpec that compiles, secrets apart", () => {
    const [deployment] = run.deployments;
    expect(run.deployments).toHaveLength(1);
    const inputs = deployment!.inputs;
    expect(inputs.appName).toBe("demo");
    expect(inputs.spec).toEqual({
      name: "demo",
      functions: {
        square: {
          handler: "./functions.ts#square",
          maxContainers: 2,
          cpu: [0.5, 1],
          env: { MODE: "fast" },
        },
        embed: {
          handler: "./functions.ts#Model.embed",
          memory: [256, 512],
          batched: { maxBatchSize: 8, waitMs: 5 },
        },
      },
      dicts: { cache: { maxEntries: 1000 } },
      queues: { jobs: { maxPartitions: 10 } },
      schedules: { nightly: { function: "square", cron: "0 3 * * *", args: [7] } },
    });
    expect(inputs.secrets).toEqual({ embed: { API_KEY: "sk-very-secret" } });
    expect(Object.keys(inputs.bundles)).toEqual(["./functions.ts"]);
    expect(inputs.bundles["./functions.ts"]).toMatch(/^[0-9a-f]{64}$/);
    expect(inputs.root).toBe(dir);
    expect(inputs.endpoint).toBe("http://127.0.0.1:9");
    expect(inputs.target).toBe("endpoint");
    expect(inputs.specHash).toBe(run.exports["specHash"]?.value);
    const compiled = compileAppSpec({
      ...inputs.spec,
      functions: {
        ...inputs.spec.functions,
        embed: { ...inputs.spec.functions["embed"], secrets: inputs.secrets["embed"] },
      },
    });
    expect(compiled.schedules["nightly"]?.function).toBe("square");
  });

  it("keeps secrets secret: the secrets and token inputs are secret, the spec and hashes hold no secret value", () => {
    const [deployment] = run.deployments;
    expect(deployment!.secretInputs).toEqual(["secrets", "token"]);
    expect(deployment!.specText).not.toContain("sk-very-secret");
    expect(run.exports["token"]).toEqual({ value: "test-token", secret: true });
    expect(run.exports["specHash"]?.secret).toBe(false);
    expect(run.exports["fnHash"]?.secret).toBe(false);
    expect(run.exports["appName"]).toEqual({ value: "demo", secret: false });
  });

  it("serializes the provider without capturing the token", () => {
    expect(run.deployments[0]!.providerBytes).toBeGreaterThan(0);
  });
});

describe("bad arguments fail at construction, naming the field", () => {
  const cases: [string, string, RegExp][] = [
    [
      "memory limit below request",
      `new ServerlessFunction("embed", { app, handler: "./functions.ts#square", memory: [256, 128] });`,
      /ServerlessFunction "embed": memory: limit 128 is below request 256/,
    ],
    [
      "timeout out of range",
      `new ServerlessFunction("sq", { app, handler: "./functions.ts#square", timeout: 0 });`,
      /ServerlessFunction "sq": timeout: 0 is below the minimum 1 s/,
    ],
    [
      "bad handler reference",
      `new ServerlessFunction("sq", { app, handler: "functions.ts#square" });`,
      /ServerlessFunction "sq": handler: .*must be a relative path/,
    ],
    [
      "unknown field",
      `new ServerlessFunction("sq", { app, handler: "./functions.ts#square", maxContainer: 2 } as never);`,
      /ServerlessFunction "sq": maxContainer: unknown field/,
    ],
    ["bad app name", `new App("Bad_Name", { pool });`, /App "Bad_Name": name: invalid app name/],
    [
      "dict out of range",
      `new DistributedDict("cache", { app, maxEntries: 0 });`,
      /DistributedDict "cache": maxEntries: 0 is below the minimum 1/,
    ],
    [
      "bad cron",
      `const f = new ServerlessFunction("sq", { app, handler: "./functions.ts#square" }); new Schedule("s", { app, function: f, cron: "0 3 * *" });`,
      /Schedule "s": cron: "0 3 \* \*" has 4 fields/,
    ],
    [
      "cron and period",
      `const f = new ServerlessFunction("sq", { app, handler: "./functions.ts#square" }); new Schedule("s", { app, function: f, cron: "0 3 * * *", period: { hours: 1 } });`,
      /Schedule "s": period: set either cron or period, not both/,
    ],
    [
      "schedule of another app's function",
      `const other = new App("other", { pool }); const f = new ServerlessFunction("sq", { app: other, handler: "./functions.ts#square" }); new Schedule("s", { app, function: f, cron: "0 3 * * *" });`,
      /Schedule "s": function: ServerlessFunction "sq" belongs to another App/,
    ],
    [
      "duplicate function name",
      `new ServerlessFunction("a", { app, name: "sq", handler: "./functions.ts#square" }); new ServerlessFunction("b", { app, name: "sq", handler: "./functions.ts#add" });`,
      /already has a function named "sq"/,
    ],
    [
      "pool maxima",
      `new ServerlessFunction("big", { app, handler: "./functions.ts#square", cpu: 8 });`,
      /ServerlessFunction "big": cpu: request 8 exceeds the pool maximum of 4 cores/,
    ],
    [
      "GPU type the pool lacks",
      `new ServerlessFunction("g", { app, handler: "./functions.ts#square", gpu: "A100" });`,
      /ServerlessFunction "g": gpu: "A100" does not match the pool's GPU type "H100"/,
    ],
  ];
  const pool = `{ target: { kind: "endpoint", url: "http://127.0.0.1:9", token: "t" }, maxCpu: 4, gpuType: "H100", gpusPerHost: 2 }`;
  const others = {
    badPool: program("", {
      pool: `{ target: { kind: "endpoint", token: "t" } as never, gpusPerHost: 9 }`,
    }),
    provisioned: program("", { pool: `{ target: { kind: "ec2" } as never }` }),
    missingExport: program(
      `new ServerlessFunction("sq", { app, handler: "./functions.ts#sqare" });`,
    ),
    afterAwait: program(
      `await new Promise((r) => setTimeout(r, 1500)); new ServerlessFunction("late", { app, handler: "./functions.ts#square" });`,
    ),
    outputArgs: program(
      `new ServerlessFunction("sq", { app, handler: "./functions.ts#square", timeout: pulumi.output(0) });`,
    ),
  };
  // Each program in its own folder, all evaluated by one runner process (Pulumi loads once).
  const errors = new Map<string, MockedRun["error"]>();
  beforeAll(async () => {
    const sources = [
      ...cases.map(([name, body]): [string, string] => [name, program(body, { pool })]),
      ...Object.entries(others),
    ];
    const programs: string[] = [];
    for (const [, source] of sources) {
      const dir = await makeProgram({ "index.ts": source, "functions.ts": HANDLERS });
      dirs.push(dir);
      programs.push(join(dir, "index.ts"));
    }
    const runs = await runMockedMany(programs);
    sources.forEach(([name], i) => errors.set(name, runs[i]!.error));
  });

  it.each(cases)("%s", (name, _body, message) => {
    expect(errors.get(name)?.name).toBe("InvalidError");
    expect(errors.get(name)?.message).toMatch(message);
  });

  it("a bad pool: endpoint without a url, gpusPerHost above 8", () => {
    expect(errors.get("badPool")?.message).toContain(
      `GpuPool "pool": target.url: required for an endpoint target`,
    );
    expect(errors.get("badPool")?.message).toContain(
      `GpuPool "pool": gpusPerHost: 9 is not a whole number in 0..8`,
    );
  });

  it("a target that provisions hosts names 'pulumi up' and the endpoint target", () => {
    expect(errors.get("provisioned")?.message).toMatch(
      /GpuPool "pool": target\.kind: "ec2" targets are provisioned by 'pulumi up'.*\{ kind: "endpoint", url, token \}/,
    );
  });

  it("a handler export that does not exist fails when the bundle is checked", () => {
    expect(errors.get("missingExport")?.message).toMatch(
      /ServerlessFunction "sq": handler: \.\/functions\.ts has no export 'sqare'; it exports: .*square/,
    );
  });

  it("a member declared after an await is refused, not silently left out", () => {
    expect(errors.get("afterAwait")?.message).toMatch(
      /ServerlessFunction "late": app: App "demo" has already gathered its members/,
    );
  });

  it("Output arguments are checked once they resolve", () => {
    expect(errors.get("outputArgs")?.message).toMatch(
      /ServerlessFunction "sq": timeout: 0 is below the minimum 1 s/,
    );
  });
});

describe("specHash", () => {
  const source = program(`
export const square = new ServerlessFunction("square", { app, handler: "./lib/functions.ts#square", maxContainers: 2 });
export const specHash = app.specHash;
export const fnHash = square.specHash;
`);
  const files = {
    "lib/functions.ts": `import { twice } from "./util.js";\nexport function square(x: number): number { return twice(x) / 2 * x; }\n`,
    "lib/util.ts": `export const twice = (x: number) => 2 * x;\n`,
  };

  it("is equal for the same code checked out at two different paths", async () => {
    const parent = await makeProgram({});
    dirs.push(parent);
    const deep = join(parent, "a", "much", "deeper", "checkout");
    await mkdir(deep, { recursive: true });
    const first = await evaluate(source, files);
    const secondDir = await makeProgram({ "index.ts": source, ...files }, { parent: deep });
    const second = await runMocked(join(secondDir, "index.ts"));
    expect(first.run.error).toBeNull();
    expect(second.error).toBeNull();
    expect(second.deployments[0]?.inputs.root).not.toBe(first.run.deployments[0]?.inputs.root);
    expect(second.exports["specHash"]?.value).toBe(first.run.exports["specHash"]?.value);
    expect(second.exports["fnHash"]?.value).toBe(first.run.exports["fnHash"]?.value);
    expect(second.deployments[0]?.inputs.bundles).toEqual(first.run.deployments[0]?.inputs.bundles);
  });

  it("changes with the code (also a local import's) and with a setting, and only then", async () => {
    const { dir, run: base } = await evaluate(source, files);
    const again = await runMocked(join(dir, "index.ts"));
    expect(again.exports["specHash"]?.value).toBe(base.exports["specHash"]?.value);

    await writeFile(join(dir, "lib", "util.ts"), `export const twice = (x: number) => x + x;\n`);
    const code = await runMocked(join(dir, "index.ts"));
    expect(code.exports["fnHash"]?.value).not.toBe(base.exports["fnHash"]?.value);
    expect(code.exports["specHash"]?.value).not.toBe(base.exports["specHash"]?.value);

    await writeFile(join(dir, "index.ts"), source.replace("maxContainers: 2", "maxContainers: 3"));
    const setting = await runMocked(join(dir, "index.ts"));
    expect(setting.exports["fnHash"]?.value).not.toBe(code.exports["fnHash"]?.value);
    expect(setting.deployments[0]?.inputs.bundles).toEqual(code.deployments[0]?.inputs.bundles);
  });
});

describe("the examples as programs", () => {
  it("examples/hello declares the same app as its app.json", async () => {
    const run = await runMocked(join(repoRoot, "examples", "hello", "index.ts"), { cwd: repoRoot });
    expect(run.error).toBeNull();
    const inputs = run.deployments[0]!.inputs;
    expect(inputs.root).toBe(join(repoRoot, "examples", "hello"));
    const fromJson = JSON.parse(
      await readFile(join(repoRoot, "examples", "hello", "app.json"), "utf8"),
    ) as unknown;
    expect(compileAppSpec(inputs.spec)).toEqual(compileAppSpec(fromJson));
  });

  it("examples/batch-embeddings: a batched function, a dict and a nightly schedule", async () => {
    const dir = join(repoRoot, "examples", "batch-embeddings");
    const run = await runMocked(join(dir, "index.ts"), { cwd: dir });
    expect(run.error).toBeNull();
    const spec = compileAppSpec(run.deployments[0]!.inputs.spec);
    expect(spec.functions["embed"]?.batched).toEqual({ maxBatchSize: 32, waitMs: 20 });
    expect(Object.keys(spec.dicts)).toEqual(["embedding-cache"]);
    expect(spec.schedules["nightly"]).toMatchObject({ function: "reindex", cron: "0 3 * * *" });
  });

  it("reads stack config (a Schedule's cron from config)", async () => {
    const dir = await makeProgram({});
    dirs.push(dir);
    await cp(join(repoRoot, "examples", "batch-embeddings"), join(dir, "app"), { recursive: true });
    const run = await runMocked(join(dir, "app", "index.ts"), {
      config: { "test-project:reindexCron": "30 4 * * *" },
    });
    expect(run.error).toBeNull();
    expect(run.deployments[0]?.inputs.spec.schedules["nightly"]?.["cron"]).toBe("30 4 * * *");
  });
});
