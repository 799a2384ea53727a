/**
 * Deployed apps and their artifacts: validation at the door, versions, and one FunctionPool per
 * function kept in step with the deployed spec.
 *
 * A function's container version is a hash of what a running container depends on (bundle,
 * handler, resources, env, secrets). A redeploy that changes only scaling, batching, retries or
 * timeouts keeps it, so pools update in place; any other change drains the old containers.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readlink, rename, rm, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { InvalidError, NotFoundError, toWire } from "../errors.js";
import type { AppSummary, ArtifactBody, DeployBody } from "../protocol.js";
import { canonicalJson, type CompiledAppSpec, type CompiledFunctionSpec } from "../spec/index.js";
import type { Store } from "../store/store.js";
import { kilnPackageRoot } from "../package-root.js";
import { channels, keys, registries, type InputEnvelope } from "./inputs.js";
import type { OutcomeWriter } from "./outcomes.js";
import { compileForCluster, type HostMaxima } from "./placement.js";
import { FunctionPool, type FunctionRuntime, type PoolContext } from "./pool.js";
import { Registry } from "./registry.js";

export interface AppRecord {
  name: string;
  version: number;
  deployedAt: string;
  /** sha256 of the canonical compiled spec and bundles: equal digests mean nothing changed. */
  digest: string;
  spec: CompiledAppSpec;
  bundles: Record<string, string>;
  /** Deployed by `kiln run` (deploy body `ephemeral: true`): its schedules do not fire. */
  ephemeral?: boolean;
}

/** Told after this agent deployed (`next`) or deleted (`next` null) an app: data and schedules follow. */
export type AppChangeHook = (
  name: string,
  previous: AppRecord | null,
  next: AppRecord | null,
) => Promise<void>;

export interface ArtifactMeta {
  exports: string[];
  bytes: number;
}

export class AppRegistry {
  private readonly apps = new Map<string, AppRecord>();
  private readonly pools = new Map<string, Map<string, FunctionPool>>();
  /** The stored app records, by name (`registries.apps`). */
  private readonly records: Registry;
  /** Set by the agent: drops removed dicts' and queues' data, wakes the scheduler. */
  onChange: AppChangeHook | null = null;
  /** Called once an app's pools on this agent have stopped after it was removed (here or elsewhere). */
  onRemoved: ((record: AppRecord) => Promise<void>) | null = null;

  constructor(
    private readonly store: Store,
    private readonly poolContext: PoolContext,
    private readonly outcomes: OutcomeWriter,
    private readonly bundleDir: string,
    /** What this host can give one container, and its GPUs by model (placement.ts). */
    private readonly own: Omit<HostMaxima, "host">,
    /** The other live hosts of the cluster and what each can give one container (placement.ts). */
    private readonly otherHosts: () => Promise<HostMaxima[]> = async () => [],
  ) {
    this.records = new Registry(store, registries.apps);
  }

  /**
   * Bring the local pools in step with the apps in the store: at start, and periodically, so
   * deploys and deletes made through other agents reach this one.
   */
  async load(): Promise<void> {
    const stored = await this.records.entries();
    for (const [name, raw] of stored) {
      // Unchanged apps cost nothing more; others are re-read, as the listing is not a snapshot.
      const local = this.apps.get(name);
      if (local && sameVersion(local, raw)) continue;
      await this.refresh(name);
    }
    for (const name of [...this.apps.keys()]) if (!stored.has(name)) await this.refresh(name);
  }

  /** Re-read one app from the store: activate a newer version, or stop it if it was deleted. */
  async refresh(name: string): Promise<void> {
    const raw = await this.records.get(name);
    const local = this.apps.get(name);
    if (raw === null) {
      if (!local) return;
      this.apps.delete(name);
      const pools = this.pools.get(name) ?? new Map<string, FunctionPool>();
      this.pools.delete(name);
      await Promise.all(
        [...pools.values()].map((pool) => pool.stop({ drain: true, graceMs: 300_000 })),
      );
      await this.onRemoved?.(local);
      return;
    }
    const record = JSON.parse(raw) as AppRecord;
    if (local && local.digest === record.digest && local.version === record.version) return;
    await this.activate(record);
  }

  async putArtifact(sha: string, body: ArtifactBody): Promise<void> {
    const actual = createHash("sha256").update(body.code).digest("hex");
    if (actual !== sha) throw new InvalidError(`artifact content hashes to ${actual}, not ${sha}`);
    const meta: ArtifactMeta = { exports: body.exports, bytes: Buffer.byteLength(body.code) };
    await this.store.set(keys.artifact(sha), body.code);
    await this.store.set(keys.artifactMeta(sha), JSON.stringify(meta));
  }

  async hasArtifact(sha: string): Promise<boolean> {
    return (await this.store.get(keys.artifactMeta(sha))) !== null;
  }

  async deploy(name: string, body: DeployBody): Promise<{ app: AppSummary; changed: boolean }> {
    const spec = compileForCluster(
      body.spec,
      { host: this.poolContext.agentId, ...this.own },
      await this.otherHosts(),
    );
    if (spec.name !== name) {
      throw new InvalidError(
        `name: the spec names app '${spec.name}' but was deployed as '${name}'`,
      );
    }
    await this.checkHandlers(spec, body.bundles);
    const bundles: Record<string, string> = {};
    for (const fn of Object.values(spec.functions)) {
      const sha = body.bundles[fn.handler.file];
      if (sha) bundles[fn.handler.file] = sha;
    }
    const ephemeral = body.ephemeral === true;
    const digest = createHash("sha256")
      .update(canonicalJson(ephemeral ? { spec, bundles, ephemeral } : { spec, bundles }))
      .digest("hex");
    // The stored record, not this agent's copy: another agent may have deployed since.
    const storedRaw = await this.records.get(name);
    const previous =
      storedRaw === null ? this.apps.get(name) : (JSON.parse(storedRaw) as AppRecord);
    if (previous && previous.digest === digest) {
      if (this.apps.get(name)?.digest !== digest) await this.activate(previous);
      return { app: summarize(previous), changed: false };
    }
    const record: AppRecord = {
      name,
      version: (previous?.version ?? 0) + 1,
      deployedAt: new Date().toISOString(),
      digest,
      spec,
      bundles,
      ...(ephemeral ? { ephemeral } : {}),
    };
    await this.records.put(name, JSON.stringify(record));
    await this.activate(record);
    await this.onChange?.(name, previous ?? null, record);
    await this.store.publish(channels.apps, name);
    return { app: summarize(record), changed: true };
  }

  list(): AppSummary[] {
    return [...this.apps.values()].map(summarize).sort((a, b) => a.name.localeCompare(b.name));
  }

  get(name: string): AppRecord {
    const app = this.apps.get(name);
    if (!app) {
      const names = [...this.apps.keys()].sort();
      throw new NotFoundError(
        `app '${name}' is not deployed; deployed apps: ${names.join(", ") || "(none)"}`,
      );
    }
    return app;
  }

  /** The spec of a function, or NotFoundError naming what exists. */
  function(app: string, fn: string): CompiledFunctionSpec {
    const record = this.get(app);
    const spec = record.spec.functions[fn];
    if (!spec) {
      const names = Object.keys(record.spec.functions).sort();
      throw new NotFoundError(
        `app '${app}' has no function '${fn}'; its functions: ${names.join(", ") || "(none)"}`,
      );
    }
    return spec;
  }

  pool(app: string, fn: string): FunctionPool | undefined {
    return this.pools.get(app)?.get(fn);
  }

  allPools(): FunctionPool[] {
    return [...this.pools.values()].flatMap((m) => [...m.values()]);
  }

  appPools(app: string): Map<string, FunctionPool> {
    return this.pools.get(app) ?? new Map();
  }

  /** Stop an app: in-flight inputs finish, queued ones fail with NotFoundError. */
  async delete(name: string, graceMs: number): Promise<void> {
    const record = this.get(name);
    this.apps.delete(name);
    await this.records.delete(name);
    await this.store.publish(channels.apps, name);
    await this.onChange?.(name, record, null);
    const pools = this.pools.get(name) ?? new Map<string, FunctionPool>();
    this.pools.delete(name);
    await Promise.all([...pools.values()].map((pool) => pool.stop({ drain: true, graceMs })));
    for (const fn of Object.keys(record.spec.functions)) await this.failQueued(name, fn);
    await this.onRemoved?.(record);
  }

  /** Stop every pool: with `graceMs`, held inputs may finish first; the rest go back to the queue. */
  async stopAll(graceMs = 0): Promise<void> {
    const pools = this.allPools();
    this.pools.clear();
    await Promise.all(pools.map((pool) => pool.stop({ drain: graceMs > 0, graceMs })));
  }

  private async checkHandlers(
    spec: CompiledAppSpec,
    bundles: Record<string, string>,
  ): Promise<void> {
    const problems: string[] = [];
    for (const [fnName, fn] of Object.entries(spec.functions)) {
      const sha = bundles[fn.handler.file];
      if (!sha) {
        problems.push(`functions.${fnName}.handler: no bundle was uploaded for ${fn.handler.file}`);
        continue;
      }
      const raw = await this.store.get(keys.artifactMeta(sha));
      if (raw === null) {
        problems.push(
          `functions.${fnName}.handler: artifact ${sha.slice(0, 12)} for ${fn.handler.file} was not uploaded`,
        );
        continue;
      }
      const meta = JSON.parse(raw) as ArtifactMeta;
      if (!meta.exports.includes(fn.handler.exportName)) {
        problems.push(
          `functions.${fnName}.handler: ${fn.handler.file} has no export '${fn.handler.exportName}'; it exports: ${meta.exports.join(", ") || "(nothing)"}`,
        );
      }
    }
    if (problems.length > 0)
      throw new InvalidError(problems.join("\n"), { details: { issues: problems } });
  }

  private async activate(record: AppRecord): Promise<void> {
    this.apps.set(record.name, record);
    let pools = this.pools.get(record.name);
    if (!pools) this.pools.set(record.name, (pools = new Map()));
    for (const [fnName, spec] of Object.entries(record.spec.functions)) {
      const sha = record.bundles[spec.handler.file] ?? "";
      const runtime: FunctionRuntime = {
        app: record.name,
        fn: fnName,
        spec,
        version: containerVersion(sha, spec),
        bundlePath: await this.materialize(sha),
      };
      const pool = pools.get(fnName);
      if (pool) pool.update(runtime);
      else {
        const created = new FunctionPool(this.poolContext, runtime);
        pools.set(fnName, created);
        created.start();
      }
    }
    for (const [fnName, pool] of pools) {
      if (!(fnName in record.spec.functions)) {
        pools.delete(fnName);
        void pool
          .stop({ drain: true, graceMs: 300_000 })
          .then(() => this.failQueued(record.name, fnName));
      }
    }
  }

  private kilnProvided: Promise<void> | undefined;

  /** Write the bundle where workers import it from (once per sha). */
  private async materialize(sha: string): Promise<string> {
    const path = join(this.bundleDir, `${sha}.mjs`);
    // Once per agent: pools that start together share the one check.
    this.kilnProvided ??= provideKiln(this.bundleDir).catch((error: unknown) => {
      this.kilnProvided = undefined;
      throw error;
    });
    await this.kilnProvided;
    if (existsSync(path)) return path;
    const code = await this.store.get(keys.artifact(sha));
    if (code === null)
      throw new NotFoundError(`artifact ${sha} is missing from the store; deploy the app again`);
    const temp = `${path}.${process.pid}.tmp`;
    await writeFile(temp, code);
    await rename(temp, path);
    return path;
  }

  private async failQueued(app: string, fn: string): Promise<void> {
    const queues = [keys.queue(app, fn), keys.spawnQueue(app, fn)];
    const error = toWire(
      new NotFoundError(`app '${app}' was stopped (or '${fn}' removed) before this input ran`),
    );
    for (;;) {
      const claims = await this.store.claim(queues, {
        owner: "app-delete",
        leaseMs: 60_000,
        max: 1000,
        waitMs: 0,
      });
      if (claims.length === 0) return;
      // Together, so the outcome writer settles them in few store round trips.
      await Promise.all(
        claims.map((claim) =>
          this.outcomes.settle(claim, JSON.parse(claim.payload) as InputEnvelope, {
            ok: false,
            error,
          }),
        ),
      );
    }
  }
}

export function containerVersion(bundleSha: string, spec: CompiledFunctionSpec): string {
  const shape = {
    bundleSha,
    handler: spec.handler,
    cpu: spec.cpu,
    memory: spec.memory,
    gpu: spec.gpu,
    ephemeralDisk: spec.ephemeralDisk,
    env: spec.env,
    secrets: spec.secrets,
  };
  return createHash("sha256").update(canonicalJson(shape)).digest("hex").slice(0, 12);
}

/** Whether a stored record (raw JSON) is the version `local` runs; an unreadable one is not. */
function sameVersion(local: AppRecord, raw: string): boolean {
  try {
    const stored = JSON.parse(raw) as Pick<AppRecord, "digest" | "version">;
    return stored.digest === local.digest && stored.version === local.version;
  } catch {
    return false;
  }
}

function summarize(record: AppRecord): AppSummary {
  return {
    name: record.name,
    version: record.version,
    deployedAt: record.deployedAt,
    digest: record.digest,
    functions: Object.keys(record.spec.functions).sort(),
  };
}

/**
 * Bundles import `kiln` and `kiln/*` (runtime/deploy/bundle.ts): `<bundleDir>/node_modules/kiln`
 * links to this agent's package, so that the workers' imports resolve to it.
 */
async function provideKiln(bundleDir: string): Promise<void> {
  const link = join(bundleDir, "node_modules", "kiln");
  const target = kilnPackageRoot();
  const current = await readlink(link).catch(() => null);
  if (current === target) return;
  await mkdir(dirname(link), { recursive: true });
  // Replaced atomically where it pointed elsewhere (the agent's kiln was moved or upgraded).
  const temp = `${link}.${process.pid}.tmp`;
  await rm(temp, { force: true });
  await symlink(target, temp, "dir");
  await rename(temp, link);
}
