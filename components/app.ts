/**
 * `App`: a named app on a pool. The functions, dicts, queues and schedules that name it
 * (`{ app }`) are gathered into one AppSpec, deployed by one `AppDeployment` child.
 *
 * Members are gathered once the program has declared them: declare them in the same turn as the
 * App (before any `await`); one declared later fails with an error that says so.
 */
import { isAbsolute, resolve } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { bundleFile } from "../runtime/deploy/bundle.js";
import {
  AppNameSchema,
  compileAppSpec,
  type AppSpecInput,
  type SpecIssue,
} from "../runtime/spec/index.js";
import { AppDeployment } from "../provider/app-deployment.js";
import { appSpecHash } from "../provider/hash.js";
import { agentSpec, type SecretValues } from "../provider/state.js";
import { GpuPool } from "./gpu-pool.js";
import { defaultProgramRoot } from "./program-root.js";
import { registerApp } from "./registry.js";
import {
  componentError,
  isInvalidError,
  issuesOf,
  known,
  labelOf,
  UNKNOWN,
  unknownArgs,
  zodIssues,
} from "./validate.js";

export interface AppArgs {
  /** The pool the app runs on. */
  readonly pool: GpuPool;
  /** The app's name on the agent: 1-63 lowercase letters, digits and dashes. Default: the resource name. */
  readonly name?: pulumi.Input<string>;
  /** Directory handler paths are relative to (absolute, or relative to the current directory). Default: the Pulumi program's directory. */
  readonly root?: string;
}

/** What a ServerlessFunction hands its App. */
export interface FunctionMember {
  /** The FunctionSpec as written, without secret values. */
  spec: pulumi.Output<Record<string, unknown>>;
  /** Secret values (a secret Output). */
  secrets: pulumi.Output<Record<string, string>>;
  /** Secret names (not secret). */
  secretNames: pulumi.Output<string[]>;
  /** The handler file's bundle. */
  bundle: pulumi.Output<{ file: string; sha256: string }>;
  /** The spec fields that hold a secret Output (not secret: names only). */
  secretFields?: pulumi.Output<string[]>;
}

/** Check an App's plain arguments. Throws `App "Hello": name: invalid app name ...`. */
export function validateAppArgs(name: string, args: AppArgs): void {
  const issues: SpecIssue[] = unknownArgs(args, ["pool", "name", "root"]);
  if (!GpuPool.isInstance(args?.pool))
    issues.push({ path: "pool", message: "required: a GpuPool" });
  const appName = known(args?.name);
  if (appName !== UNKNOWN) {
    const parsed = AppNameSchema.safeParse(appName ?? name);
    if (!parsed.success)
      issues.push(...zodIssues(parsed.error).map((i) => ({ ...i, path: "name" })));
  }
  if (args?.root !== undefined && (typeof args.root !== "string" || args.root === "")) {
    issues.push({
      path: "root",
      message: `expected a directory, got ${JSON.stringify(args.root)}`,
    });
  }
  if (issues.length > 0) throw componentError(labelOf("App", name), issues);
}

interface Gathered {
  functions: Record<string, Record<string, unknown>>;
  bundles: { file: string; sha256: string }[];
  secretNames: SecretValues;
  dicts: Record<string, Record<string, unknown>>;
  queues: Record<string, Record<string, unknown>>;
  schedules: Record<string, Record<string, unknown>>;
}

type Kind = "function" | "dict" | "queue" | "schedule";
const COMPONENT: Record<Kind, string> = {
  function: "ServerlessFunction",
  dict: "DistributedDict",
  queue: "DistributedQueue",
  schedule: "Schedule",
};

export class App extends pulumi.ComponentResource {
  static readonly __pulumiType = "kiln:index:App";

  /** True for an App, also one made by another copy of kiln. */
  static override isInstance(obj: unknown): obj is App {
    return (
      typeof obj === "object" &&
      obj !== null &&
      (obj as { __pulumiType?: unknown }).__pulumiType === App.__pulumiType
    );
  }

  /** The app's name on the agent. */
  readonly name: pulumi.Output<string>;
  /** The agent's URL. */
  readonly endpoint: pulumi.Output<string>;
  /** Content hash of every bundle and the canonical AppSpec. */
  readonly specHash: pulumi.Output<string>;
  /** The agent's version number of the app. */
  readonly version: pulumi.Output<number>;
  /** The child that deploys the app. */
  readonly deployment: AppDeployment;
  readonly pool: GpuPool;
  /** Absolute directory handler paths are relative to. */
  readonly root: string;

  private readonly resourceName: string;
  private readonly members = {
    function: new Map<string, FunctionMember>(),
    dict: new Map<string, pulumi.Output<Record<string, unknown>>>(),
    queue: new Map<string, pulumi.Output<Record<string, unknown>>>(),
    schedule: new Map<string, pulumi.Output<Record<string, unknown>>>(),
  };
  private memberCount = 0;
  /** Each member's secret spec paths (`schedules.nightly.args`). */
  private readonly secretFields: pulumi.Output<string[]>[] = [];
  private sealed = false;
  private readonly bundles = new Map<
    string,
    Promise<{ file: string; sha256: string; exports: string[] }>
  >();

  constructor(name: string, args: AppArgs, opts?: pulumi.ComponentResourceOptions) {
    super(App.__pulumiType, name, {}, opts);
    validateAppArgs(name, args);
    this.resourceName = name;
    this.pool = args.pool;
    this.root =
      args.root === undefined
        ? defaultProgramRoot()
        : isAbsolute(args.root)
          ? args.root
          : resolve(args.root);
    this.name = pulumi.output(args.name ?? name).apply((appName) => {
      validateAppArgs(name, { ...args, name: appName });
      return appName;
    });
    this.endpoint = this.pool.endpoint;

    const gathered: pulumi.Output<Gathered> = pulumi
      .output(this.seal().then(() => true))
      .apply(() => this.gather());
    const spec = pulumi.all([this.name, gathered]).apply(
      ([appName, g]): AppSpecInput =>
        ({
          name: appName,
          functions: g.functions,
          dicts: g.dicts,
          queues: g.queues,
          schedules: g.schedules,
        }) as unknown as AppSpecInput,
    );
    const bundles = gathered.apply((g) =>
      Object.fromEntries(g.bundles.map((b) => [b.file, b.sha256])),
    );
    const label = labelOf("App", name);
    this.specHash = pulumi
      .all([spec, bundles, gathered, this.pool.maxima])
      .apply(([appSpec, files, g, maxima]) => {
        // Secret names only: the hash and the check need no values, so neither becomes secret.
        const forCheck = agentSpec({ spec: appSpec, secrets: g.secretNames });
        try {
          compileAppSpec(forCheck, { maxima });
          return appSpecHash(compileAppSpec(forCheck), files);
        } catch (error) {
          if (isInvalidError(error)) throw componentError(label, issuesOf(error), error);
          throw error;
        }
      });
    const secrets = pulumi.secret(
      pulumi.output(this.seal().then(() => true)).apply((): pulumi.Output<SecretValues> => {
        const entries = [...this.members.function.entries()].map(([fn, member]) =>
          member.secrets.apply((values) => [fn, values] as const),
        );
        return pulumi
          .all(entries)
          .apply(
            (pairs) =>
              Object.fromEntries(
                pairs.filter(([, values]) => Object.keys(values).length > 0),
              ) as SecretValues,
          );
      }),
    );
    this.deployment = new AppDeployment(
      `${name}-deployment`,
      {
        appName: this.name,
        spec,
        secrets,
        bundles,
        root: this.root,
        endpoint: this.pool.endpoint,
        token: this.pool.token,
        target: this.pool.targetKind,
        maxima: this.pool.maxima,
        specHash: this.specHash,
        // Which spec values came from secret Outputs: previews show them as [secret].
        secretPaths: pulumi.unsecret(
          pulumi
            .output(this.seal().then(() => true))
            .apply(() => pulumi.all(this.secretFields))
            .apply((lists) => lists.flat().sort()),
        ),
      },
      { parent: this },
    );
    this.version = this.deployment.version;
    this.registerOutputs({
      name: this.name,
      endpoint: this.endpoint,
      specHash: this.specHash,
      version: this.version,
    });
    registerApp(this);
  }

  /** Called by members: add one, refusing duplicates and latecomers. */
  addMember(kind: "function", memberName: string, member: FunctionMember): void;
  addMember(
    kind: Exclude<Kind, "function">,
    memberName: string,
    member: pulumi.Output<Record<string, unknown>>,
    secretFields?: pulumi.Output<string[]>,
  ): void;
  addMember(
    kind: Kind,
    memberName: string,
    member: FunctionMember | pulumi.Output<Record<string, unknown>>,
    secretFields?: pulumi.Output<string[]>,
  ): void {
    const label = labelOf(COMPONENT[kind], memberName);
    if (this.sealed) {
      throw componentError(label, [
        {
          path: "app",
          message: `App ${JSON.stringify(this.resourceName)} has already gathered its members: declare every ${COMPONENT[kind]} in the same turn as its App (before any await)`,
        },
      ]);
    }
    const members = this.members[kind] as Map<string, unknown>;
    if (members.has(memberName)) {
      throw componentError(label, [
        {
          path: "name",
          message: `App ${JSON.stringify(this.resourceName)} already has a ${kind} named ${JSON.stringify(memberName)}`,
        },
      ]);
    }
    members.set(memberName, member);
    const fields = kind === "function" ? (member as FunctionMember).secretFields : secretFields;
    if (fields)
      this.secretFields.push(fields.apply((f) => f.map((x) => `${kind}s.${memberName}.${x}`)));
    this.memberCount++;
  }

  /** Whether the App has a function of this name (declared so far). */
  hasFunction(fnName: string): boolean {
    return this.members.function.has(fnName);
  }

  /** The bundle of one handler file (relative to `root`), built once per App. */
  bundle(file: string): Promise<{ file: string; sha256: string; exports: string[] }> {
    let pending = this.bundles.get(file);
    if (!pending) {
      pending = bundleFile(this.root, file).then(({ file: f, sha256, exports }) => ({
        file: f,
        sha256,
        exports,
      }));
      this.bundles.set(file, pending);
    }
    return pending;
  }

  /** Resolves once no member was added for a few event-loop turns; later members are refused. */
  private sealing: Promise<void> | undefined;
  private seal(): Promise<void> {
    this.sealing ??= (async () => {
      let seen = -1;
      while (seen !== this.memberCount) {
        seen = this.memberCount;
        for (let i = 0; i < 3; i++) await new Promise<void>((r) => setImmediate(r));
      }
      this.sealed = true;
    })();
    return this.sealing;
  }

  private gather(): pulumi.Output<Gathered> {
    const record = (
      map: Map<string, pulumi.Output<Record<string, unknown>>>,
    ): pulumi.Output<Record<string, Record<string, unknown>>> =>
      pulumi
        .all([...map.entries()].map(([key, out]) => out.apply((value) => [key, value] as const)))
        .apply((pairs) => Object.fromEntries(pairs));
    const fns = [...this.members.function.entries()];
    const functions = record(new Map(fns.map(([fn, m]) => [fn, m.spec])));
    const bundles = pulumi.all(fns.map(([, m]) => m.bundle));
    const secretNames = pulumi
      .all(
        fns.map(([fn, m]) =>
          m.secretNames.apply(
            (names) => [fn, Object.fromEntries(names.map((n) => [n, ""]))] as const,
          ),
        ),
      )
      .apply((pairs) => Object.fromEntries(pairs) as SecretValues);
    return pulumi
      .all([
        functions,
        bundles,
        secretNames,
        record(this.members.dict),
        record(this.members.queue),
        record(this.members.schedule),
      ])
      .apply(([f, b, n, d, q, s]) => ({
        functions: f,
        bundles: b as { file: string; sha256: string }[],
        secretNames: n,
        dicts: d,
        queues: q,
        schedules: s,
      }));
  }
}
