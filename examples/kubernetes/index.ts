/**
 * A GPU pool on a Kubernetes cluster: `pulumi up` here (Pulumi.yaml) creates a namespace, one kiln
 * agent per GPU node (a DaemonSet), the Redis they share (a StatefulSet with AOF on a volume), a
 * Service, and a Secret with the agents' token; then it deploys the app below onto them.
 *
 * Needs: a cluster whose GPU nodes run the NVIDIA device plugin (it gives each agent pod its
 * GPUs), a default StorageClass (Redis's volume), an agent image built from the repo's Dockerfile
 * and pushed where the nodes can pull it, and the Pulumi CLI with a kubeconfig.
 *
 *   pulumi config set agentImage registry.example.com/kiln-agent:0.1.0
 *   pulumi config set gpusPerHost 1              # what each agent pod requests
 *   pulumi config set agentUrl http://127.0.0.1:7070   # see "Reaching the agents" below
 *   pulumi up
 *
 * Reaching the agents: `pulumi up` deploys the app from where it runs, through the pool's
 * endpoint. The Service is ClusterIP here, whose DNS name only resolves inside the cluster: run
 * `pulumi up` from a pod, or set `agentUrl` to a URL that reaches the Service from your machine
 * (after a first `pulumi up` has created it: `kubectl -n kiln port-forward svc/kiln-gpus-agent
 * 7070`), or make it a LoadBalancer: `service: { type: "LoadBalancer", port: 7070 }`.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { App, GpuPool, ServerlessFunction } from "kiln";

const config = new pulumi.Config();
// A kubeconfig from config, else the default provider (KUBECONFIG, ~/.kube/config).
const kubeconfig = config.get("kubeconfig");
const provider = kubeconfig ? new k8s.Provider("cluster", { kubeconfig }) : undefined;
const agentUrl = config.get("agentUrl");
const gpuType = config.get("gpuType"); // e.g. "H100": functions asking for another type fail at once

const pool = new GpuPool("gpus", {
  ...(gpuType ? { gpuType } : {}),
  gpusPerHost: config.getNumber("gpusPerHost") ?? 1,
  target: {
    kind: "kubernetes",
    image: config.require("agentImage"),
    // Only GPU nodes, which are usually tainted so that other pods stay off them.
    nodeSelector: { "nvidia.com/gpu.present": "true" },
    tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
    redis: { inCluster: { storageGiB: 8 } },
    service: { type: "ClusterIP", port: 7070 },
    // One agent on every matching node; `{ replicas: 4 }` instead makes a Deployment whose
    // pending pods let a cluster autoscaler add GPU nodes.
    placement: "daemonset",
    ...(provider ? { provider } : {}),
    ...(agentUrl ? { url: agentUrl } : {}),
  },
});

const app = new App("k8s-hello", { pool });
new ServerlessFunction("square", { app, handler: "./functions.ts#square", maxContainers: 4 });
new ServerlessFunction("gpus", { app, handler: "./functions.ts#gpus", gpu: "any" });

export const endpoint = pool.endpoint;
/** The agents' bearer token (secret): `pulumi stack output --show-secrets token`. */
export const token = pool.token;
export const specHash = app.specHash;
