/**
 * The `kubernetes` target of a GpuPool: what `pulumi up` creates on a cluster so that the pool's
 * endpoint and token reach live agents, one per GPU node, sharing one Redis.
 *
 *   Namespace ── ServiceAccount (no API token) ── Secret (token, Redis URL, Redis password)
 *   agents: DaemonSet (one per matching node) | Deployment ({ replicas }, one per node)
 *   Service (ClusterIP | NodePort | LoadBalancer) → the pool's endpoint
 *   Redis: StatefulSet (AOF on a PersistentVolumeClaim) + headless Service + NetworkPolicy
 *
 * Arguments are checked at construction (`kubernetesTargetIssues`, zod, strict: an unknown field
 * is an error); the objects are built by plain functions (`agentPodSpec`, `redisStatefulSetSpec`,
 * ...) so that tests read them off the mock runtime and validate them against the Kubernetes
 * OpenAPI schema. @pulumi/kubernetes and @pulumi/random load only when a pool of this kind is made.
 */
import { createRequire } from "node:module";
import * as pulumi from "@pulumi/pulumi";
import type * as k8sModule from "@pulumi/kubernetes";
import type { types as k8sTypes } from "@pulumi/kubernetes";
import type * as randomModule from "@pulumi/random";
import { z } from "zod";
import type { SpecIssue } from "../runtime/spec/index.js";
import type { KubernetesTarget } from "./targets.js";
import { known, UNKNOWN, zodIssues } from "./validate.js";

type PodSpec = k8sTypes.input.core.v1.PodSpec;
type Container = k8sTypes.input.core.v1.Container;

/** The port the agent listens on inside its pod. */
export const AGENT_PORT = 7070;
/** Where the agent keeps its state inside the pod (a hostPath: see `stateHostPath`). */
export const AGENT_STATE_DIR = "/var/lib/kiln";
/** `--drain-grace` of the agents: on SIGTERM, how long running inputs may finish (the CLI's default). */
export const AGENT_DRAIN_GRACE_S = 30;
/**
 * The pods' terminationGracePeriodSeconds: the drain, then time to hand the rest back to the queue
 * and close the store, before the kubelet's SIGKILL. Longer than AGENT_DRAIN_GRACE_S.
 */
export const AGENT_TERMINATION_GRACE_S = AGENT_DRAIN_GRACE_S + 30;
export const DEFAULT_NAMESPACE = "kiln";
export const DEFAULT_GPU_RESOURCE = "nvidia.com/gpu";
export const DEFAULT_REDIS_STORAGE_GIB = 8;
export const DEFAULT_REDIS_IMAGE = "redis:7.4-alpine";
const REDIS_PORT = 6379;
/** The redis image's `redis` user: Redis runs as it, and owns its volume (fsGroup). */
const REDIS_UID = 999;
/** Secret keys. */
const TOKEN_KEY = "token";
const REDIS_URL_KEY = "redis-url";
const REDIS_CONF_KEY = "redis.conf";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** A qualified name (`nvidia.com/gpu`, `amd.com/gpu`): an optional DNS prefix, then a name. */
const RESOURCE_NAME =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** An Input that may be an Output: checked as `placeholder` until it resolves. */
function input<T extends z.ZodType>(placeholder: string, schema: T) {
  return z.preprocess((value) => (known(value) === UNKNOWN ? placeholder : value), schema);
}

const TolerationSchema = z.strictObject({
  key: z.string().optional(),
  operator: z.enum(["Exists", "Equal"]).optional(),
  value: z.string().optional(),
  effect: z.enum(["NoSchedule", "PreferNoSchedule", "NoExecute"]).optional(),
  tolerationSeconds: z.number().int().optional(),
});

const RedisSchema = z
  .strictObject({
    inCluster: z
      .strictObject({
        storageGiB: z.number().int().min(1).max(65_536).optional(),
        storageClassName: z.string().regex(DNS_LABEL, "expected a StorageClass name").optional(),
        image: z.string().min(1).optional(),
      })
      .optional(),
    url: input(
      "redis://output",
      z.string().regex(/^rediss?:\/\/\S+$/, "expected a redis:// or rediss:// URL"),
    ).optional(),
  })
  .superRefine((redis, ctx) => {
    if ((redis.inCluster === undefined) === (redis.url === undefined))
      ctx.addIssue({
        code: "custom",
        message: "give one of { inCluster: { storageGiB } } or { url }",
      });
  });

const ServiceSchema = z.strictObject({
  type: z.enum(["ClusterIP", "NodePort", "LoadBalancer"]).optional(),
  port: z.number().int().min(1).max(65_535).optional(),
});

function targetSchema(placement: unknown) {
  return z.strictObject({
    kind: z.literal("kubernetes"),
    image: input("output", z.string().min(1, "must not be empty")),
    namespace: z
      .string()
      .max(63)
      .regex(DNS_LABEL, "expected a namespace name (lower-case letters, digits and '-')")
      .optional(),
    nodeSelector: z.record(z.string().min(1), z.string()).optional(),
    tolerations: z.array(TolerationSchema).optional(),
    redis: RedisSchema.optional(),
    service: ServiceSchema.optional(),
    // One schema per shape, so that a bad replicas count is reported as such (not "invalid input").
    placement: (typeof placement === "object" && placement !== null
      ? z.strictObject({ replicas: z.number().int().min(1).max(10_000) })
      : z.literal("daemonset")
    ).optional(),
    gpuResource: z
      .string()
      .regex(RESOURCE_NAME, "expected an extended resource name such as nvidia.com/gpu")
      .optional(),
    agentCpu: z.number().positive().max(65_536).optional(),
    agentMemory: z.number().int().min(256, "at least 256 MiB").optional(),
    token: input("output", z.string().min(1, "must not be empty")).optional(),
    // Checked by validateGpuPoolArgs like every target's url.
    url: z.unknown().optional(),
    provider: z
      .custom<pulumi.ProviderResource>(
        (value) => pulumi.ProviderResource.isInstance(value),
        "expected a kubernetes.Provider",
      )
      .optional(),
  });
}

/** Problems with a kubernetes target's arguments, paths under `target.`. */
export function kubernetesTargetIssues(target: unknown): SpecIssue[] {
  const placement = (target as { placement?: unknown } | null)?.placement;
  const parsed = targetSchema(placement).safeParse(target);
  const issues = parsed.success
    ? []
    : zodIssues(parsed.error).map((issue) => ({
        path: issue.path === "(root)" ? "target" : `target.${issue.path}`,
        message: issue.message,
      }));
  const service = (target as KubernetesTarget | null)?.service;
  if (service?.type === "LoadBalancer" && service.port === undefined)
    issues.push({
      path: "target.service.port",
      message:
        "required for a LoadBalancer service: it exposes the agents outside the cluster, so say on which port",
    });
  return issues;
}

/** What provisioning gives the GpuPool. */
export interface ProvisionedPool {
  endpoint: pulumi.Output<string>;
  token: pulumi.Output<string>;
}

/** Names of the pool's objects in the cluster (`kiln-<pool>-...`: DNS labels). */
export function objectNames(poolName: string) {
  const slug =
    poolName
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 30)
      .replace(/-+$/, "") || "pool";
  const base = `kiln-${slug}`;
  return {
    base,
    agent: `${base}-agent`,
    secret: `${base}`,
    redis: `${base}-redis`,
  };
}

/** Labels of the agent pods (the selector is all of them). */
export function agentLabels(poolName: string): Record<string, string> {
  return {
    "app.kubernetes.io/name": "kiln-agent",
    "app.kubernetes.io/instance": objectNames(poolName).base,
    "app.kubernetes.io/component": "agent",
  };
}

function redisLabels(poolName: string): Record<string, string> {
  return {
    "app.kubernetes.io/name": "kiln-redis",
    "app.kubernetes.io/instance": objectNames(poolName).base,
    "app.kubernetes.io/component": "store",
  };
}

/** The node directory that holds one pool's agent state (one agent per node, so one per pool). */
export function stateHostPath(namespace: string, poolName: string): string {
  return `/var/lib/kiln/${namespace}/${objectNames(poolName).base}`;
}

/** The agent container. `gpus` is the pool's gpusPerHost: the device plugin gives the pod that many. */
export function agentContainer(
  target: KubernetesTarget,
  poolName: string,
  gpus: number,
): Container {
  const secret = objectNames(poolName).secret;
  const gpuResource = target.gpuResource ?? DEFAULT_GPU_RESOURCE;
  const limits: Record<string, string> = {};
  const requests: Record<string, string> = {};
  if (gpus > 0) limits[gpuResource] = String(gpus);
  if (target.agentCpu !== undefined) limits["cpu"] = requests["cpu"] = String(target.agentCpu);
  if (target.agentMemory !== undefined)
    limits["memory"] = requests["memory"] = `${target.agentMemory}Mi`;
  return {
    name: "agent",
    image: target.image,
    command: ["kiln", "agent"],
    args: [
      "--host",
      "0.0.0.0",
      "--port",
      String(AGENT_PORT),
      "--state-dir",
      AGENT_STATE_DIR,
      // Other agents and `kiln status` reach this one at its pod IP (the downward API, below).
      // Kubernetes expands $(POD_IP); an IPv6-only cluster needs the `url` of the target instead.
      "--advertise-url",
      `http://$(POD_IP):${AGENT_PORT}`,
      "--drain-grace",
      String(AGENT_DRAIN_GRACE_S),
      ...(target.agentCpu !== undefined ? ["--cpu", String(target.agentCpu)] : []),
    ],
    env: [
      { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
      // The token and the Redis URL (which may hold a password) come from the Secret, never from
      // args or plain values: `kiln agent` reads KILN_TOKEN, and KILN_REDIS_URL is its --redis.
      { name: "KILN_TOKEN", valueFrom: { secretKeyRef: { name: secret, key: TOKEN_KEY } } },
      { name: "KILN_REDIS_URL", valueFrom: { secretKeyRef: { name: secret, key: REDIS_URL_KEY } } },
      // A privileged pod sees every GPU of its node; the device plugin names the ones it gave this
      // pod in NVIDIA_VISIBLE_DEVICES, which the agent's inventory honours. A CPU-only pool gets none.
      ...(gpus === 0 ? [{ name: "NVIDIA_VISIBLE_DEVICES", value: "void" }] : []),
    ],
    ports: [{ name: "http", containerPort: AGENT_PORT, protocol: "TCP" }],
    // /healthz needs no token. Startup allows 5 minutes (state reclaim, nvidia-smi); after that a
    // pod that stops answering is taken out of the Service at once and restarted within 30 s.
    startupProbe: {
      httpGet: { path: "/healthz", port: "http" },
      periodSeconds: 5,
      failureThreshold: 60,
    },
    readinessProbe: {
      httpGet: { path: "/healthz", port: "http" },
      periodSeconds: 5,
      failureThreshold: 2,
    },
    livenessProbe: {
      httpGet: { path: "/healthz", port: "http" },
      periodSeconds: 10,
      timeoutSeconds: 5,
      failureThreshold: 3,
    },
    ...(Object.keys(limits).length > 0
      ? { resources: { limits, ...(Object.keys(requests).length > 0 ? { requests } : {}) } }
      : {}),
    securityContext: {
      // What the agent does that needs privileges, and why nothing narrower serves:
      // - cgroups: it makes a cgroup per function container under its own and writes cpu, memory
      //   and pids limits there; only a privileged container gets /sys/fs/cgroup read-write.
      // - devices: it gives each function container its GPUs by devices-cgroup rules
      //   (`c 195:<minor>`) and /dev/nvidia* nodes; writing those rules needs CAP_SYS_ADMIN.
      // - loop mounts: each container's scratch disk is an ext4 image mounted `-o loop`, which
      //   needs /dev/loop-control, /dev/loopN (made on demand, so no fixed device list can name
      //   them) and mount(2) (CAP_SYS_ADMIN).
      // Kubernetes has no narrower switch for dynamically created devices than `privileged`. What
      // the pod does not get: the host's network, PID or IPC namespaces, a service-account token,
      // or any host path but its own state directory.
      privileged: true,
    },
    volumeMounts: [{ name: "state", mountPath: AGENT_STATE_DIR }],
  };
}

/** The agent pod spec (the DaemonSet's or the Deployment's template). */
export function agentPodSpec(
  target: KubernetesTarget,
  poolName: string,
  namespace: string,
  gpus: number,
): PodSpec {
  const replicas = typeof target.placement === "object" ? target.placement.replicas : undefined;
  return {
    serviceAccountName: objectNames(poolName).agent,
    // The agent never talks to the Kubernetes API: no token in the pod.
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    hostNetwork: false,
    hostPID: false,
    hostIPC: false,
    // Longer than --drain-grace: a rolled or replaced agent lets running inputs finish.
    terminationGracePeriodSeconds: AGENT_TERMINATION_GRACE_S,
    ...(target.nodeSelector ? { nodeSelector: { ...target.nodeSelector } } : {}),
    ...(target.tolerations ? { tolerations: target.tolerations.map((t) => ({ ...t })) } : {}),
    ...(replicas !== undefined
      ? {
          affinity: {
            podAntiAffinity: {
              // Never two agents of this pool on one node: each owns its node's GPUs and state dir.
              requiredDuringSchedulingIgnoredDuringExecution: [
                {
                  labelSelector: { matchLabels: agentLabels(poolName) },
                  topologyKey: "kubernetes.io/hostname",
                },
              ],
            },
          },
        }
      : {}),
    containers: [agentContainer(target, poolName, gpus)],
    volumes: [
      {
        // On the node, so a restarted agent finds its predecessor's record and reclaims the
        // cgroups and scratch disks it left behind. Scratch mounts live in the pod's mount
        // namespace (no mount propagation to the host) and go with it.
        name: "state",
        hostPath: { path: stateHostPath(namespace, poolName), type: "DirectoryOrCreate" },
      },
    ],
  };
}

/** The Redis StatefulSet's spec: one replica, AOF on a PersistentVolumeClaim, a password from the Secret. */
export function redisStatefulSetSpec(
  inCluster: { storageGiB?: number; storageClassName?: string; image?: string },
  poolName: string,
): k8sTypes.input.apps.v1.StatefulSetSpec {
  const names = objectNames(poolName);
  const labels = redisLabels(poolName);
  return {
    serviceName: names.redis,
    replicas: 1,
    selector: { matchLabels: labels },
    template: {
      metadata: { labels },
      spec: {
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        securityContext: {
          runAsNonRoot: true,
          runAsUser: REDIS_UID,
          runAsGroup: REDIS_UID,
          fsGroup: REDIS_UID,
          seccompProfile: { type: "RuntimeDefault" },
        },
        containers: [
          {
            name: "redis",
            image: inCluster.image ?? DEFAULT_REDIS_IMAGE,
            command: ["redis-server"],
            // The config file holds only `requirepass` (from the Secret); durability is here:
            // every write appended to the AOF, fsynced each second, on the volume.
            args: [
              `/etc/kiln-redis/${REDIS_CONF_KEY}`,
              "--appendonly",
              "yes",
              "--appendfsync",
              "everysec",
              "--dir",
              "/data",
            ],
            ports: [{ name: "redis", containerPort: REDIS_PORT, protocol: "TCP" }],
            readinessProbe: { tcpSocket: { port: "redis" }, periodSeconds: 5 },
            livenessProbe: { tcpSocket: { port: "redis" }, periodSeconds: 10, failureThreshold: 6 },
            resources: { requests: { cpu: "100m", memory: "256Mi" } },
            securityContext: {
              allowPrivilegeEscalation: false,
              readOnlyRootFilesystem: true,
              capabilities: { drop: ["ALL"] },
            },
            volumeMounts: [
              { name: "data", mountPath: "/data" },
              { name: "config", mountPath: "/etc/kiln-redis", readOnly: true },
            ],
          },
        ],
        volumes: [
          {
            name: "config",
            // Only the config key: the Redis pod never sees the agents' token.
            secret: {
              secretName: names.secret,
              items: [{ key: REDIS_CONF_KEY, path: REDIS_CONF_KEY }],
            },
          },
        ],
      },
    },
    volumeClaimTemplates: [
      {
        metadata: { name: "data" },
        spec: {
          accessModes: ["ReadWriteOnce"],
          ...(inCluster.storageClassName ? { storageClassName: inCluster.storageClassName } : {}),
          resources: {
            requests: { storage: `${inCluster.storageGiB ?? DEFAULT_REDIS_STORAGE_GIB}Gi` },
          },
        },
      },
    ],
  };
}

/** `http://host:port`, with an IPv6 address in brackets. */
function httpUrl(host: string, port: number): string {
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

const load = createRequire(import.meta.url);

/**
 * Create the pool's objects as children of `pool`. `target` was validated; `gpusPerHost` is the
 * pool's (required for this kind, checked by validateGpuPoolArgs).
 */
export function provisionKubernetes(
  pool: pulumi.ComponentResource,
  poolName: string,
  target: KubernetesTarget,
  gpusPerHost: pulumi.Input<number>,
): ProvisionedPool {
  const k8s = load("@pulumi/kubernetes") as typeof k8sModule;
  const random = load("@pulumi/random") as typeof randomModule;
  const names = objectNames(poolName);
  const namespace = target.namespace ?? DEFAULT_NAMESPACE;
  // Names are fixed (the Service's DNS name is the endpoint), so a replacement deletes first.
  const opts: pulumi.CustomResourceOptions = {
    parent: pool,
    deleteBeforeReplace: true,
    ...(target.provider ? { provider: target.provider } : {}),
  };
  const meta = (name: string, labels: Record<string, string> = {}) => ({
    name,
    namespace,
    labels: { "app.kubernetes.io/managed-by": "kiln", ...labels },
  });

  const ns = new k8s.core.v1.Namespace(
    `${poolName}-namespace`,
    { metadata: { name: namespace, labels: { "app.kubernetes.io/managed-by": "kiln" } } },
    opts,
  );
  const inNs: pulumi.CustomResourceOptions = { ...opts, dependsOn: [ns] };

  const token = pulumi.secret(
    target.token ??
      new random.RandomPassword(
        `${poolName}-token`,
        { length: 48, special: false },
        { parent: pool },
      ).result,
  );
  const redis = target.redis ?? { inCluster: {} };
  let redisUrl: pulumi.Output<string>;
  let redisConf: pulumi.Output<string> | undefined;
  if ("url" in redis) {
    redisUrl = pulumi.secret(redis.url);
  } else {
    const password = new random.RandomPassword(
      `${poolName}-redis-password`,
      { length: 32, special: false },
      { parent: pool },
    ).result;
    const host = `${names.redis}-0.${names.redis}.${namespace}.svc`;
    redisUrl = pulumi.secret(pulumi.interpolate`redis://:${password}@${host}:${REDIS_PORT}`);
    redisConf = pulumi.secret(pulumi.interpolate`requirepass ${password}\n`);
  }

  const secret = new k8s.core.v1.Secret(
    `${poolName}-secret`,
    {
      metadata: meta(names.secret),
      type: "Opaque",
      stringData: {
        [TOKEN_KEY]: token,
        [REDIS_URL_KEY]: redisUrl,
        ...(redisConf ? { [REDIS_CONF_KEY]: redisConf } : {}),
      },
    },
    inNs,
  );

  const sa = new k8s.core.v1.ServiceAccount(
    `${poolName}-agent`,
    { metadata: meta(names.agent), automountServiceAccountToken: false },
    inNs,
  );

  const dependsOn: pulumi.Resource[] = [ns, secret, sa];
  if ("inCluster" in redis) {
    const labels = redisLabels(poolName);
    const headless = new k8s.core.v1.Service(
      `${poolName}-redis`,
      {
        metadata: meta(names.redis, labels),
        spec: {
          clusterIP: "None",
          selector: labels,
          ports: [{ name: "redis", port: REDIS_PORT, targetPort: "redis", protocol: "TCP" }],
        },
      },
      inNs,
    );
    const statefulSet = new k8s.apps.v1.StatefulSet(
      `${poolName}-redis`,
      {
        metadata: meta(names.redis, labels),
        spec: redisStatefulSetSpec(redis.inCluster, poolName),
      },
      { ...inNs, dependsOn: [ns, secret, headless] },
    );
    // Only the pool's agents reach Redis (where the cluster's network plugin enforces policies).
    new k8s.networking.v1.NetworkPolicy(
      `${poolName}-redis`,
      {
        metadata: meta(names.redis, labels),
        spec: {
          podSelector: { matchLabels: labels },
          policyTypes: ["Ingress"],
          ingress: [
            {
              from: [{ podSelector: { matchLabels: agentLabels(poolName) } }],
              ports: [{ port: REDIS_PORT, protocol: "TCP" }],
            },
          ],
        },
      },
      inNs,
    );
    dependsOn.push(statefulSet, headless);
  }

  const labels = agentLabels(poolName);
  const template = {
    metadata: { labels },
    spec: pulumi
      .output(gpusPerHost)
      .apply((gpus) => agentPodSpec(target, poolName, namespace, gpus)),
  };
  const agentOpts = { ...inNs, dependsOn };
  const agents =
    typeof target.placement === "object"
      ? new k8s.apps.v1.Deployment(
          `${poolName}-agents`,
          {
            metadata: meta(names.agent, labels),
            spec: {
              replicas: target.placement.replicas,
              selector: { matchLabels: labels },
              // The old agent drains and leaves before its node's GPUs can go to the new one.
              strategy: {
                type: "RollingUpdate",
                rollingUpdate: { maxSurge: 0, maxUnavailable: 1 },
              },
              template,
            },
          },
          agentOpts,
        )
      : new k8s.apps.v1.DaemonSet(
          `${poolName}-agents`,
          {
            metadata: meta(names.agent, labels),
            spec: {
              selector: { matchLabels: labels },
              updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
              template,
            },
          },
          agentOpts,
        );

  const serviceType = target.service?.type ?? "ClusterIP";
  const port = target.service?.port ?? AGENT_PORT;
  const service = new k8s.core.v1.Service(
    `${poolName}-service`,
    {
      metadata: meta(names.agent, labels),
      spec: {
        type: serviceType,
        selector: labels,
        ports: [{ name: "http", port, targetPort: "http", protocol: "TCP" }],
      },
    },
    inNs,
  );
  const inCluster = httpUrl(`${names.agent}.${namespace}.svc.cluster.local`, port);
  const url: pulumi.Output<string> =
    target.url !== undefined
      ? pulumi.output(target.url)
      : serviceType === "LoadBalancer"
        ? service.status.apply((status) => {
            const ingress = status?.loadBalancer?.ingress?.[0];
            const host = ingress?.ip || ingress?.hostname;
            return host ? httpUrl(host, port) : inCluster;
          })
        : pulumi.output(inCluster);
  // Deploying an App waits for the agents (the endpoint depends on them), not only the Service.
  const endpoint = pulumi.all([url, agents.urn, service.urn]).apply(([u]) => u);
  return { endpoint, token };
}
