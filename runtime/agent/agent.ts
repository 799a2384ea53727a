/**
 * The host daemon: opens the store, loads deployed apps, serves the HTTP API and runs one
 * FunctionPool per function. `Agent.start()` is what `kiln agent` runs; tests start agents in
 * process on a random port with a temp state dir.
 */
import { randomUUID } from "node:crypto";
import { availableParallelism, totalmem } from "node:os";
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { FastifyInstance } from "fastify";
import type { AgentStatus, HostStatus, LogLine } from "../protocol.js";
import { RESULT_TTL_MS, redactSpec, type CompiledAppSpec, type Maxima } from "../spec/index.js";
import { openStore } from "../store/index.js";
import type { Store } from "../store/store.js";
import { AppRegistry } from "./apps.js";
import { loadOrCreateToken } from "./auth.js";
import { HostCapacity } from "./capacity.js";
import { channels, registries } from "./inputs.js";
import { LogBook } from "./logs.js";
import { OutcomeWriter } from "./outcomes.js";
import type { HostMaxima } from "./placement.js";
import { Replies } from "./replies.js";
import { DEFAULT_ROUTER_LIMITS, Router, type RouterLimits } from "./router.js";
import { buildServer } from "./server.js";
import { KILN_VERSION } from "../version.js";
import { SandboxHost } from "../containers/sandbox.js";
import { gpuOffers } from "../containers/gpu-offers.js";
import { reclaimStateDir, recordAgentId } from "../containers/reclaim.js";
import type { Clock } from "../clock.js";
import { Dicts } from "./data/dicts.js";
import { Queues } from "./data/queues.js";
import { Ephemerals, dropRemovedData } from "./data/refs.js";
import { Scheduler } from "./scheduler.js";
import { Registry, migrateLegacyKeys } from "./registry.js";
import { UsageLedger } from "./usage-ledger.js";

/** How often the scheduler's leader deletes ephemeral dicts and queues whose owner is gone. */
const EPHEMERAL_SWEEP_MS = 10_000;

/** How often an agent re-reads the deployed apps from the store (other agents' deploys). */
const APP_RECONCILE_MS = 5_000;
/** Hosts advertise themselves in `registries.hosts` every HOST_ADVERTISE_MS, expiring after HOST_TTL_MS. */
const HOST_ADVERTISE_MS = 2_000;
const HOST_TTL_MS = 10_000;
const DEFAULT_LEASE_MS = 6_000;

export interface AgentOptions {
  host?: string;
  /** 0 picks a free port. Default 7070. */
  port?: number;
  /** Where the token, the embedded store's log, bundles, logs and scratch dirs live. */
  stateDir: string;
  token?: string;
  /** CPU cores this agent hands out to containers (sum of requests). Default: the host's cores. */
  cpu?: number;
  /**
   * How long a claimed input stays claimed without the agent's heartbeat (renewed every third of
   * it). Default 6 s, so a dead agent's inputs are re-queued within 10 s on a shared store.
   */
  leaseMs?: number;
  limits?: Partial<RouterLimits>;
  maxima?: Maxima;
  /** Print worker output to this function (the `kiln agent` terminal). */
  echoLogs?: (line: LogLine) => void;
  /** An already-open store (tests); default: the embedded store in `<stateDir>/store`. */
  store?: Store;
  /**
   * Share a Redis server with other agents (`redis://host:port`): any agent accepts calls, agents
   * with capacity pull the work. Default: KILN_REDIS_URL, else the embedded store.
   */
  redisUrl?: string;
  /**
   * The URL other hosts and clients know this agent by (the host registry, `kiln status`): an
   * agent bound to 0.0.0.0 in a pod advertises `http://<pod IP>:7070`. Default: the address it
   * listens on. Workers on this host keep calling the bound address.
   */
  advertiseUrl?: string;
  /** The scheduler's time (tests pass a fake clock to fire schedules without waiting). Default: the system clock. */
  clock?: Clock;
}

export class Agent {
  readonly version = KILN_VERSION;
  readonly startedAt = new Date();
  private server!: FastifyInstance;
  private stopHooks: (() => void)[] = [];
  private stopping: Promise<void> | null = null;
  private unsubscribeCancel: (() => Promise<void>) | null = null;
  private unsubscribeApps: (() => Promise<void>) | null = null;
  private reconcile: NodeJS.Timeout | null = null;
  private advertiser: NodeJS.Timeout | null = null;
  private draining = false;
  /** Every live agent's advertisement, this one's included (`registries.hosts`). */
  private readonly hostRegistry: Registry;
  /** How limits are enforced here, one line for the `kiln agent` terminal (louder in fallback). */
  enforcementNotice = "";
  url = "";
  /** Dicts, queues and ephemeral objects (served by routes-data.ts). */
  dicts!: Dicts;
  queues!: Queues;
  ephemerals!: Ephemerals;
  scheduler!: Scheduler;
  /** Metered usage in the store: what `GET /v1/usage` reads (every agent's on a shared store). */
  usage!: UsageLedger;

  private constructor(
    readonly id: string,
    readonly token: string,
    readonly store: Store,
    readonly apps: AppRegistry,
    readonly router: Router,
    readonly logs: LogBook,
    readonly capacity: HostCapacity,
    readonly sandboxes: SandboxHost,
    private readonly options: AgentOptions,
    private readonly boundAddress: { value: string },
    private readonly maxima: Maxima,
  ) {
    this.hostRegistry = new Registry(store, registries.hosts);
  }

  static async start(options: AgentOptions): Promise<Agent> {
    const stateDir = resolve(options.stateDir);
    await mkdir(stateDir, { recursive: true });
    const token = await loadOrCreateToken(stateDir, options.token ?? process.env["KILN_TOKEN"]);
    const redisUrl = options.redisUrl ?? process.env["KILN_REDIS_URL"];
    const store =
      options.store ??
      (redisUrl
        ? await openStore({ kind: "redis", url: redisUrl })
        : await openStore({ kind: "embedded", dir: join(stateDir, "store") }));
    // Records an agent of the old layout kept as plain keys move into their registries first.
    try {
      await migrateLegacyKeys(store);
    } catch (error) {
      if (!options.store) await store.close();
      throw error;
    }
    const limits: RouterLimits = {
      ...DEFAULT_ROUTER_LIMITS,
      resultTtlMs: RESULT_TTL_MS,
      ...options.limits,
    };
    const id = `agent-${randomUUID().slice(0, 8)}`;
    const replies = new Replies(store, id);
    await replies.start();
    const outcomes = new OutcomeWriter(store, limits.resultTtlMs, replies);
    const logs = new LogBook(stateDir, options.echoLogs ?? null);
    const capacity = new HostCapacity(options.cpu ?? availableParallelism());
    // Mounts and cgroups a killed predecessor on this state dir left behind.
    const leftovers = await reclaimStateDir(stateDir);
    await recordAgentId(stateDir, id);
    const sandboxes = await SandboxHost.open({
      agentId: id,
      scratchRoot: join(stateDir, "scratch"),
      log: (line) =>
        logs.append({
          app: "-",
          function: "-",
          callId: null,
          containerId: "-",
          stream: "system",
          text: `${line}\n`,
        }),
    });
    const notice = sandboxNotice(await sandboxes.status(), leftovers);
    // Per-container maxima: what this host can give one container, unless configured.
    const maxima: Maxima = {
      cpu: capacity.total,
      memoryMiB: Math.floor(totalmem() / 2 ** 20),
      gpusPerContainer: sandboxes.gpus.status().total,
      ...options.maxima,
    };
    const agentUrl = { value: "" }; // known once the server listens
    const poolContext = {
      store,
      agentId: id,
      get agentUrl() {
        return agentUrl.value;
      },
      token,
      outcomes,
      logs,
      capacity,
      sandboxes,
      scratchDir: join(stateDir, "scratch"),
      leaseMs: options.leaseMs ?? DEFAULT_LEASE_MS,
      maxima,
    };
    await mkdir(poolContext.scratchDir, { recursive: true });
    // Filled in once the agent exists: the other live hosts' maxima, for deploy-time placement.
    const hostsRef: { agent: Agent | null } = { agent: null };
    const otherHosts = async (): Promise<HostMaxima[]> =>
      ((await hostsRef.agent?.hosts()) ?? []).flatMap((h) =>
        h.id !== id && h.maxima && !h.draining
          ? [{ host: h.id, maxima: h.maxima, ...(h.gpus ? { gpus: h.gpus } : {}) }]
          : [],
      );
    const gpus = gpuOffers(sandboxes.gpus.all);
    const apps = new AppRegistry(
      store,
      poolContext,
      outcomes,
      join(stateDir, "bundles"),
      { maxima, gpus },
      otherHosts,
    );
    const router = new Router(store, apps, outcomes, replies, limits);
    const agent = new Agent(
      id,
      token,
      store,
      apps,
      router,
      logs,
      capacity,
      sandboxes,
      options,
      agentUrl,
      maxima,
    );
    hostsRef.agent = agent;
    agent.enforcementNotice = notice;
    const appLookup = { spec: (app: string) => apps.get(app).spec };
    agent.ephemerals = new Ephemerals(store);
    agent.dicts = new Dicts(store, appLookup, agent.ephemerals);
    agent.queues = new Queues(store, appLookup, agent.ephemerals);
    agent.scheduler = new Scheduler({
      store,
      outcomes,
      owner: id,
      ...(options.clock ? { clock: options.clock } : {}),
      maxSpawnPending: limits.maxSpawnPending,
      leaderTasks: [{ everyMs: EPHEMERAL_SWEEP_MS, run: () => agent.ephemerals.sweep() }],
      onError: (error) => agent.logInternal(error),
    });
    agent.usage = new UsageLedger(store, sandboxes.meter.accumulator, {
      owner: id,
      onError: (error) => agent.logInternal(error),
    });
    apps.onChange = async (name, previous, next) => {
      if (previous) await dropRemovedData(store, name, previous.spec, next?.spec ?? null);
      agent.scheduler.poke();
    };
    // `kiln run`'s apps are gone for good once removed: so are their logs.
    apps.onRemoved = async (record) => {
      if (record.ephemeral) await logs.drop(record.name);
    };
    agent.server = buildServer(agent);
    let address: string;
    try {
      address = await agent.server.listen({
        host: options.host ?? "127.0.0.1",
        port: options.port ?? 7070,
      });
    } catch (error) {
      // Release what was opened (the embedded store locks its directory) before reporting.
      await replies.stop();
      await sandboxes.close();
      await logs.close();
      if (!options.store) await store.close();
      throw error;
    }
    agentUrl.value = address.replace("[::1]", "localhost");
    agent.url = options.advertiseUrl ?? agentUrl.value;
    agent.unsubscribeCancel = await store.subscribe(channels.cancel, (inputId) =>
      agent.killLocal(inputId),
    );
    // Deploys and deletes made through other agents on the same store: told at once, and
    // reconciled every few seconds in case a message was missed (pub/sub is not durable).
    agent.unsubscribeApps = await store.subscribe(
      channels.apps,
      (name) => void apps.refresh(name).catch((e: unknown) => agent.logInternal(e)),
    );
    await apps.load();
    agent.scheduler.start();
    agent.usage.start();
    agent.reconcile = setInterval(
      () => void apps.load().catch((e: unknown) => agent.logInternal(e)),
      APP_RECONCILE_MS,
    );
    agent.reconcile.unref();
    await agent.advertise();
    agent.advertiser = setInterval(
      () => void agent.advertise().catch(() => undefined),
      HOST_ADVERTISE_MS,
    );
    agent.advertiser.unref();
    return agent;
  }

  /** Cancel a call; the agent running it (this one or another on the same store) kills its work. */
  async cancel(id: string) {
    return this.router.cancel(id, async (inputId) => {
      if (!this.killLocal(inputId)) await this.store.publish(channels.cancel, inputId);
    });
  }

  private killLocal(inputId: string): boolean {
    return this.apps.allPools().some((pool) => pool.cancel(inputId));
  }

  /** Advertise this host in the store: the cluster view of `kiln status` on any agent. */
  private async advertise(): Promise<void> {
    const functions: HostStatus["functions"] = {};
    for (const app of this.apps.list()) {
      for (const [fn, pool] of this.apps.appPools(app.name))
        functions[`${app.name}.${fn}`] = pool.hostShare();
    }
    const host: HostStatus = {
      id: this.id,
      url: this.url,
      version: this.version,
      startedAt: this.startedAt.toISOString(),
      seenAt: new Date().toISOString(),
      capacity: { cpu: this.capacity.total, cpuUsed: Number(this.capacity.inUse.toFixed(3)) },
      maxima: this.maxima,
      // By model, with how many no container holds now.
      gpus: gpuOffers(this.sandboxes.gpus.status().devices),
      functions,
      draining: this.draining,
    };
    await this.hostRegistry.put(this.id, JSON.stringify(host), { ttlMs: HOST_TTL_MS });
  }

  /** The address this agent listens on (its `url` unless it advertises another). */
  get boundUrl(): string {
    return this.boundAddress.value;
  }

  async hosts(): Promise<HostStatus[]> {
    const raws = await this.hostRegistry.entries();
    return [...raws.values()]
      .map((raw) => JSON.parse(raw) as HostStatus)
      .sort((a, b) => a.url.localeCompare(b.url));
  }

  async status(): Promise<AgentStatus> {
    const apps = await Promise.all(
      this.apps.list().map(async (summary) => ({
        name: summary.name,
        version: summary.version,
        deployedAt: summary.deployedAt,
        functions: await Promise.all(
          [...this.apps.appPools(summary.name).values()].map((pool) => pool.status()),
        ),
        schedules: await this.scheduleStatus(summary.name),
      })),
    );
    await this.advertise().catch(() => undefined);
    return {
      enforcement: await this.sandboxes.status(),
      hosts: await this.hosts(),
      agent: {
        id: this.id,
        version: this.version,
        store: this.store.kind,
        startedAt: this.startedAt.toISOString(),
        url: this.url,
        capacity: { cpu: this.capacity.total, cpuUsed: Number(this.capacity.inUse.toFixed(3)) },
      },
      apps,
    };
  }

  private async scheduleStatus(name: string) {
    const record = this.apps.get(name);
    if (Object.keys(record.spec.schedules ?? {}).length === 0) return [];
    return this.scheduler.status(name, record.spec, record.ephemeral === true);
  }

  redacted(spec: CompiledAppSpec): CompiledAppSpec {
    return redactSpec(spec);
  }

  /** Run `hook` when the agent stops; returns a function that unregisters it. */
  onStop(hook: () => void): () => void {
    this.stopHooks.push(hook);
    return () => {
      const at = this.stopHooks.indexOf(hook);
      if (at >= 0) this.stopHooks.splice(at, 1);
    };
  }

  logInternal(error: unknown): void {
    process.stderr.write(
      `kiln agent: internal error: ${(error as Error)?.stack ?? String(error)}\n`,
    );
  }

  /**
   * Stop: take no new inputs; with `graceMs`, let held inputs finish for up to that long (the API
   * stays up so their callers get the results); hand back the rest to the queue for other agents
   * or a restart; stop containers; flush and close the store.
   */
  stop(options: { graceMs?: number } = {}): Promise<void> {
    this.stopping ??= (async () => {
      this.draining = true;
      await this.scheduler.stop();
      if (this.reconcile) clearInterval(this.reconcile);
      if (this.advertiser) clearInterval(this.advertiser);
      await this.unsubscribeApps?.();
      await this.apps.stopAll(options.graceMs ?? 0);
      for (const hook of this.stopHooks) hook();
      await this.unsubscribeCancel?.();
      await this.router.stop();
      await this.hostRegistry.delete(this.id).catch(() => false);
      await this.server.close();
      await this.sandboxes.close();
      // After the containers' final samples: what they used up to the stop is kept.
      await this.usage.stop().catch((error: unknown) => this.logInternal(error));
      await this.logs.close();
      if (!this.options.store) await this.store.close();
    })();
    return this.stopping;
  }
}

/** One line at start about how limits are enforced, louder when they are not. */
function sandboxNotice(
  status: Awaited<ReturnType<SandboxHost["status"]>>,
  leftovers: string[],
): string {
  const controllers = Object.entries(status.controllers)
    .map(([name, version]) => `${name} ${version}`)
    .join(", ");
  const gpus = status.gpus.devices?.length ?? 0;
  const parts = [
    status.enforcement === "fallback"
      ? `limits: cgroups unavailable (${status.reason ?? "unknown"}); falling back to rlimits + RSS polling`
      : `limits: ${status.enforcement} (${controllers})`,
    `scratch disks: ${status.disk.enforcement}`,
    `GPUs: ${gpus} (${status.gpus.source})`,
  ];
  if (leftovers.length > 0)
    parts.push(`could not reclaim what a previous agent left: ${leftovers.join("; ")}`);
  return parts.join("; ");
}
