/**
 * Where a GpuPool's functions run. One discriminated union, one entry per kind in `TARGET_KINDS`:
 * `local` and `endpoint` reach agents that already run; kinds that provision hosts (kubernetes;
 * docker and ec2 to come) have their own fields here and need the Pulumi engine.
 */
import type * as pulumi from "@pulumi/pulumi";

/** The agent on this machine: `kiln agent`, or the one `kiln run` starts when none answers. */
export interface LocalTarget {
  readonly kind: "local";
  /** Agent URL. Default: config `kiln:url`, else KILN_URL, else http://127.0.0.1:7070. */
  readonly url?: pulumi.Input<string>;
  /** The agent's state dir, where its token file is. Default: config `kiln:stateDir`, else KILN_STATE_DIR, else ~/.kiln. */
  readonly stateDir?: string;
  /** Bearer token. Default: config `kiln:token` (secret), else KILN_TOKEN, else `<stateDir>/token`. */
  readonly token?: pulumi.Input<string>;
}

/** An agent (or a cluster behind one URL) that already runs somewhere. */
export interface EndpointTarget {
  readonly kind: "endpoint";
  /** Agent URL, e.g. https://kiln.internal:7070. */
  readonly url: pulumi.Input<string>;
  /** Bearer token. Pass a secret (`pulumi.secret`, or `config.requireSecret`). */
  readonly token: pulumi.Input<string>;
}

/** A Kubernetes toleration, in Kubernetes' own shape (`spec.tolerations[]` of a pod). */
export interface KubernetesToleration {
  readonly key?: string;
  readonly operator?: "Exists" | "Equal";
  readonly value?: string;
  readonly effect?: "NoSchedule" | "PreferNoSchedule" | "NoExecute";
  readonly tolerationSeconds?: number;
}

/**
 * Agents on a Kubernetes cluster, one per GPU node, sharing one Redis; provisioned by `pulumi up`
 * (components/kubernetes.ts). Needs the NVIDIA device plugin on the GPU nodes; `gpusPerHost` of
 * the pool is what each agent pod requests.
 */
export interface KubernetesTarget {
  readonly kind: "kubernetes";
  /** The agent image (the repo's Dockerfile; its `kiln` command runs `kiln agent`). Required. */
  readonly image: pulumi.Input<string>;
  /** The namespace the pool's objects go in; created by the pool. Default "kiln". */
  readonly namespace?: string;
  /** Only nodes with these labels run agents (e.g. `{ "nvidia.com/gpu.present": "true" }`). */
  readonly nodeSelector?: Readonly<Record<string, string>>;
  /** Tolerations of the agent pods (GPU nodes are often tainted `nvidia.com/gpu:NoSchedule`). */
  readonly tolerations?: readonly KubernetesToleration[];
  /**
   * The Redis the agents share: `{ inCluster: { storageGiB } }` (default, 8 GiB: a StatefulSet with
   * AOF on a PersistentVolumeClaim; `image` and `storageClassName` optional) or `{ url }` for one
   * you run (`redis://` or `rediss://`; pass a secret when it holds a password).
   */
  readonly redis?:
    | {
        readonly inCluster: {
          readonly storageGiB?: number;
          readonly storageClassName?: string;
          readonly image?: string;
        };
      }
    | { readonly url: pulumi.Input<string> };
  /** The agents' Service. Default `{ type: "ClusterIP", port: 7070 }`; a LoadBalancer needs an explicit port. */
  readonly service?: {
    readonly type?: "ClusterIP" | "NodePort" | "LoadBalancer";
    readonly port?: number;
  };
  /**
   * `"daemonset"` (default): one agent on every matching node. `{ replicas }`: a Deployment of that
   * many agents, never two on one node (required anti-affinity per hostname), whose pending pods
   * make a cluster autoscaler add GPU nodes.
   */
  readonly placement?: "daemonset" | { readonly replicas: number };
  /** The extended resource each agent pod requests `gpusPerHost` of. Default "nvidia.com/gpu". */
  readonly gpuResource?: string;
  /** Cores of each agent pod (request and limit), also what the agent hands out (`--cpu`). Default: no limit, all of the node's. */
  readonly agentCpu?: number;
  /** Memory of each agent pod in MiB (request and limit). Default: no limit. */
  readonly agentMemory?: number;
  /** The agents' bearer token (a secret). Default: generated once by the pool and kept secret in its state. */
  readonly token?: pulumi.Input<string>;
  /**
   * The URL `pulumi up` (the App's deployment) reaches the agents at, e.g. through an ingress or a
   * port-forward. Default: a LoadBalancer's address, else the Service's cluster DNS name (only
   * reachable from inside the cluster).
   */
  readonly url?: pulumi.Input<string>;
  /** The Kubernetes provider (cluster and credentials) for every object of the pool. Default: the stack's default provider (or one the GpuPool's `providers` option names). */
  readonly provider?: pulumi.ProviderResource;
}

export type GpuPoolTarget = LocalTarget | EndpointTarget | KubernetesTarget;

/** Every target kind kiln knows, and whether reaching it needs the Pulumi engine (it provisions hosts). */
export const TARGET_KINDS = {
  local: { provisions: false, implemented: true },
  endpoint: { provisions: false, implemented: true },
  kubernetes: { provisions: true, implemented: true },
  docker: { provisions: true, implemented: false },
  ec2: { provisions: true, implemented: false },
} as const;

export type TargetKind = keyof typeof TARGET_KINDS;

/**
 * The one kiln command that evaluates a pool that provisions hosts: it creates nothing, it shows
 * the app's diff and lists the resources `pulumi up` would create (cli/commands/preview.ts).
 */
const PREVIEW_EVALUATOR = "kiln preview";

/** Why a kind cannot be used here, or null. `evaluator` is the kiln command evaluating the program without the engine. */
export function targetKindProblem(kind: unknown, evaluator: string | null): string | null {
  const kinds = Object.keys(TARGET_KINDS);
  if (typeof kind !== "string" || !Object.hasOwn(TARGET_KINDS, kind)) {
    return `unknown target kind ${JSON.stringify(kind)} (known: ${kinds.map((k) => JSON.stringify(k)).join(", ")})`;
  }
  const entry = TARGET_KINDS[kind as TargetKind];
  if (!entry.provisions) return null;
  const instead = `use { kind: "endpoint", url, token } for agents that already run, or { kind: "local" }`;
  if (evaluator !== null) {
    if (evaluator === PREVIEW_EVALUATOR && entry.implemented) return null;
    return `a ${JSON.stringify(kind)} pool provisions hosts, which needs the Pulumi engine: run 'pulumi up'${entry.implemented ? "" : ` (once ${kind} targets are implemented)`}; with '${evaluator}', ${instead}`;
  }
  if (entry.implemented) return null;
  return `${JSON.stringify(kind)} targets are provisioned by 'pulumi up' and are not implemented yet: ${instead}`;
}
