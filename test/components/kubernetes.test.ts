/**
 * The kubernetes target of GpuPool under Pulumi's mock runtime (no cluster runs here): every object
 * the pool registers is validated against the Kubernetes OpenAPI schema (kubernetes-models), then
 * what matters is asserted: GPU limits, probes, selectors, secret references, grace periods,
 * anti-affinity, Redis durability, the Service, and bad arguments named at construction.
 */
import { join } from "node:path";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateGpuPoolArgs } from "../../components/gpu-pool.js";
import { kiln } from "../examples/helpers.js";
import { AGENT_DRAIN_GRACE_S, objectNames } from "../../components/kubernetes.js";
import {
  HANDLERS,
  makeProgram,
  removeDir,
  repoRoot,
  runMockedMany,
  type MockedObject,
  type MockedRun,
} from "./helpers.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON read off the mocks
type Json = Record<string, any>;

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await removeDir(dir);
});

const IMAGE = "registry.example/kiln-agent:0.1.0";
const USER_TOKEN = "user-token-3f9a0c1e-never-in-clear";
const USER_REDIS = "redis://:redis-pass-never-in-clear@redis.example:6379";

const source = (pool: string, extra = "", maxContainers = 1) => `
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import { App, GpuPool, ServerlessFunction } from "kiln";
${extra}
export const pool = new GpuPool("gpus", ${pool});
export const app = new App("demo", { pool });
export const square = new ServerlessFunction("square", { app, handler: "./functions.ts#square", maxContainers: ${maxContainers} });
export const endpoint = pool.endpoint;
export const token = pool.token;
`;

const PROGRAMS = {
  daemonset: source(
    `{ gpusPerHost: 2, gpuType: "H100", target: { kind: "kubernetes", image: "${IMAGE}" } }`,
  ),
  // The default program with a function changed, then with the pool's image, then its GPUs.
  moreContainers: source(
    `{ gpusPerHost: 2, gpuType: "H100", target: { kind: "kubernetes", image: "${IMAGE}" } }`,
    "",
    7,
  ),
  newImage: source(
    `{ gpusPerHost: 2, gpuType: "H100", target: { kind: "kubernetes", image: "${IMAGE}-2" } }`,
  ),
  moreGpus: source(
    `{ gpusPerHost: 4, gpuType: "H100", target: { kind: "kubernetes", image: "${IMAGE}" } }`,
  ),
  replicas: source(
    `{
  gpusPerHost: 8,
  target: {
    kind: "kubernetes",
    image: pulumi.output("${IMAGE}"),
    namespace: "gpu",
    provider,
    placement: { replicas: 3 },
    service: { type: "LoadBalancer", port: 443 },
    redis: { url: pulumi.secret("${USER_REDIS}") },
    token: pulumi.secret("${USER_TOKEN}"),
    nodeSelector: { "nvidia.com/gpu.present": "true" },
    tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
    agentCpu: 16,
    agentMemory: 65536,
  },
}`,
    `const provider = new k8s.Provider("cluster", { kubeconfig: "{}" });`,
  ),
  cpuOnly: source(
    `{ gpusPerHost: 0, target: { kind: "kubernetes", image: "${IMAGE}", gpuResource: "amd.com/gpu", redis: { inCluster: { storageGiB: 50, storageClassName: "fast-ssd" } }, service: { type: "NodePort" } } }`,
  ),
  unknownField: source(
    `{ gpusPerHost: 1, target: { kind: "kubernetes", image: "${IMAGE}", replicas: 2 } as never }`,
  ),
  loadBalancerNoPort: source(
    `{ gpusPerHost: 1, target: { kind: "kubernetes", image: "${IMAGE}", service: { type: "LoadBalancer" } } }`,
  ),
  noImage: source(`{ gpusPerHost: 1, target: { kind: "kubernetes" } as never }`),
};

const runs = new Map<keyof typeof PROGRAMS, MockedRun>();
let example: MockedRun;
beforeAll(async () => {
  const paths: string[] = [];
  for (const text of Object.values(PROGRAMS)) {
    const dir = await makeProgram({ "index.ts": text, "functions.ts": HANDLERS });
    dirs.push(dir);
    paths.push(join(dir, "index.ts"));
  }
  // The example a user copies, with the one setting it requires.
  paths.push(join(repoRoot, "examples", "kubernetes", "index.ts"));
  const results = await runMockedMany(paths, { config: { "test-project:agentImage": IMAGE } });
  example = results[results.length - 1]!;
  Object.keys(PROGRAMS).forEach((name, i) => runs.set(name as keyof typeof PROGRAMS, results[i]!));
});

/** The kubernetes-models class for an object's apiVersion and kind (its `.validate()` runs the OpenAPI schema). */
async function modelOf(inputs: Json): Promise<new (data: Json) => { validate(): void }> {
  const { apiVersion, kind } = inputs as { apiVersion: string; kind: string };
  const group = apiVersion === "v1" ? "v1" : apiVersion;
  const mod = (await import(`kubernetes-models/${group}/${kind}`)) as Record<string, unknown>;
  const model = mod[kind];
  if (typeof model !== "function")
    throw new Error(`kubernetes-models has no ${apiVersion} ${kind}`);
  return model as new (data: Json) => { validate(): void };
}

async function schemaProblem(inputs: Json): Promise<string | null> {
  const Model = await modelOf(inputs);
  try {
    new Model(structuredClone(inputs)).validate();
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * What the OpenAPI schema leaves open (it does not forbid unknown fields; the API server's strict
 * field validation does): the objects as literals of kubernetes-models' types, generated from the
 * same schema, typechecked, so a misspelled or unknown field is an excess-property error.
 * One problem per line, naming the object (`o3`).
 */
function typeProblems(inputs: readonly Json[]): string[] {
  const file = join(repoRoot, "test", "components", "k8s-objects.check.ts");
  const text = inputs
    .flatMap((o, i) => [
      `import type { I${o["kind"]} as T${i} } from "kubernetes-models/${o["apiVersion"]}/${o["kind"]}";`,
      `export const o${i}: T${i} = ${JSON.stringify(o)};`,
    ])
    .join("\n");
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (name, language, ...rest) =>
    name === file
      ? ts.createSourceFile(name, text, language)
      : getSourceFile.call(host, name, language, ...rest);
  host.fileExists = (name) => name === file || fileExists.call(host, name);
  host.readFile = (name) => (name === file ? text : readFile.call(host, name));
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const line =
      d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1;
    const object = /^export const (o\d+)/.exec(text.split("\n")[line] ?? "")?.[1] ?? "?";
    return `${object}: ${ts.flattenDiagnosticMessageText(d.messageText, " ")}`;
  });
}

function objects(run: MockedRun): MockedObject[] {
  expect(run.error).toBeNull();
  return run.objects;
}

function one(run: MockedRun, kind: string, name?: string): Json {
  const found = run.objects.filter(
    (o) =>
      o.inputs["kind"] === kind &&
      (name === undefined || (o.inputs["metadata"] as Json)["name"] === name),
  );
  expect(found, `${kind} ${name ?? ""}`).toHaveLength(1);
  return found[0]!.inputs as Json;
}

const agentWorkload = (run: MockedRun): Json =>
  run.objects.find((o) => ["DaemonSet", "Deployment"].includes(o.inputs["kind"] as string))!
    .inputs as Json;
const agentContainer = (run: MockedRun): Json =>
  agentWorkload(run)["spec"]["template"]["spec"]["containers"][0];
const envOf = (container: Json): Map<string, Json> =>
  new Map((container["env"] as Json[]).map((e) => [e["name"] as string, e]));
const argAfter = (args: string[], flag: string): string | undefined => args[args.indexOf(flag) + 1];
const isSubset = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([key, value]) => labels[key] === value);

describe("every object passes the Kubernetes OpenAPI schema", () => {
  it.each(["daemonset", "replicas", "cpuOnly"] as const)("%s", async (name) => {
    const run = runs.get(name)!;
    const all = objects(run);
    expect(all.length).toBeGreaterThanOrEqual(5);
    for (const object of all) {
      expect(await schemaProblem(object.inputs), `${object.type} ${object.name}`).toBeNull();
    }
  });

  it("no field the schema does not know (kubernetes-models' types, typechecked)", () => {
    const all = (["daemonset", "replicas", "cpuOnly"] as const).flatMap((name) =>
      objects(runs.get(name)!).map((o) => o.inputs as Json),
    );
    all.push(...objects(example).map((o) => o.inputs as Json));
    expect(typeProblems(all)).toEqual([]);
    // And a check that can fail: a misspelled field, an unknown one, a wrong enum, each named.
    const broken = (breakIt: (pod: Json) => void): Json => {
      const copy = structuredClone(agentWorkload(runs.get("daemonset")!));
      breakIt(copy["spec"]["template"]["spec"]);
      return copy;
    };
    const problems = typeProblems([
      broken((pod) => (pod["terminationGracePeriod"] = 60)),
      broken((pod) => (pod["containers"][0]["resources"]["limit"] = { "nvidia.com/gpu": "1" })),
      broken((pod) => (pod["containers"][0]["imagePullPolicy"] = "Sometimes")),
    ]);
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/^o0: .*'"?terminationGracePeriod"?' does not exist in type/);
    expect(problems[1]).toMatch(
      /^o1: .*'"?limit"?' does not exist in type 'IResourceRequirements'/,
    );
    expect(problems[2]).toMatch(/^o2: Type '"Sometimes"' is not assignable/);
  });

  it("the validator is not a rubber stamp: broken manifests fail it", async () => {
    const daemonSet = agentWorkload(runs.get("daemonset")!);
    expect(await schemaProblem(daemonSet)).toBeNull();
    const broken: [string, (o: Json) => void, RegExp][] = [
      [
        "a wrong enum value",
        (o) => (o["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "Sometimes"),
        /imagePullPolicy must be equal to one of the allowed values/,
      ],
      [
        "a number where a string goes",
        (o) => (o["spec"]["template"]["spec"]["containers"][0]["command"] = ["kiln", 7]),
        /command\/1 must be string/,
      ],
      [
        "a container without its required name",
        (o) => delete o["spec"]["template"]["spec"]["containers"][0]["name"],
        /containers\/0 must have required property '?name'?/,
      ],
      [
        "a grace period that is not an integer",
        (o) => (o["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "60"),
        /terminationGracePeriodSeconds must be integer/,
      ],
      [
        "a DaemonSet without a selector",
        (o) => delete o["spec"]["selector"],
        /spec must have required property '?selector'?/,
      ],
      [
        "an env var from a secret without its key",
        (o) =>
          delete o["spec"]["template"]["spec"]["containers"][0]["env"][1]["valueFrom"][
            "secretKeyRef"
          ]["key"],
        /secretKeyRef must have required property '?key'?/,
      ],
    ];
    for (const [what, breakIt, message] of broken) {
      const copy = structuredClone(daemonSet);
      breakIt(copy);
      expect(await schemaProblem(copy), what).toMatch(message);
    }
  });
});

describe("default: a DaemonSet, in-cluster Redis, a ClusterIP Service", () => {
  const run = () => runs.get("daemonset")!;
  const names = objectNames("gpus");

  it("creates the namespace, a token-less ServiceAccount, the Secret, the agents, the Service and Redis", () => {
    const kinds = objects(run())
      .map((o) => `${o.inputs["kind"]} ${(o.inputs["metadata"] as Json)["name"]}`)
      .sort();
    expect(kinds).toEqual(
      [
        "Namespace kiln",
        `ServiceAccount ${names.agent}`,
        `Secret ${names.secret}`,
        `DaemonSet ${names.agent}`,
        `Service ${names.agent}`,
        `StatefulSet ${names.redis}`,
        `Service ${names.redis}`,
        `NetworkPolicy ${names.redis}`,
      ].sort(),
    );
    for (const object of run().objects.filter((o) => o.inputs["kind"] !== "Namespace"))
      expect((object.inputs["metadata"] as Json)["namespace"]).toBe("kiln");
    expect(one(run(), "ServiceAccount")["automountServiceAccountToken"]).toBe(false);
    // Every object is a child of the pool, with the stack's default provider.
    expect(run().objects.every((o) => o.provider === "" || o.provider === null)).toBe(true);
  });

  it("the agent: kiln agent on 0.0.0.0, advertising its pod IP, GPUs as limits, /healthz probes", () => {
    const container = agentContainer(run());
    expect(container["image"]).toBe(IMAGE);
    expect(container["command"]).toEqual(["kiln", "agent"]);
    const args = container["args"] as string[];
    expect(argAfter(args, "--host")).toBe("0.0.0.0");
    expect(argAfter(args, "--advertise-url")).toBe("http://$(POD_IP):7070");
    expect(envOf(container).get("POD_IP")).toEqual({
      name: "POD_IP",
      valueFrom: { fieldRef: { fieldPath: "status.podIP" } },
    });
    expect(argAfter(args, "--port")).toBe(String(container["ports"][0]["containerPort"]));
    expect(container["resources"]).toEqual({ limits: { "nvidia.com/gpu": "2" } });
    // The device plugin names the pod's GPUs; no override of NVIDIA_VISIBLE_DEVICES.
    expect(envOf(container).has("NVIDIA_VISIBLE_DEVICES")).toBe(false);
    for (const probe of ["readinessProbe", "livenessProbe", "startupProbe"]) {
      expect(container[probe]["httpGet"], probe).toEqual({ path: "/healthz", port: "http" });
    }
    expect(container["ports"]).toEqual([{ name: "http", containerPort: 7070, protocol: "TCP" }]);
  });

  it("selectors match the pod labels (workload, Service, Redis, NetworkPolicy)", () => {
    const workload = agentWorkload(run());
    const podLabels = workload["spec"]["template"]["metadata"]["labels"];
    expect(isSubset(workload["spec"]["selector"]["matchLabels"], podLabels)).toBe(true);
    expect(isSubset(one(run(), "Service", names.agent)["spec"]["selector"], podLabels)).toBe(true);
    const redis = one(run(), "StatefulSet");
    const redisLabels = redis["spec"]["template"]["metadata"]["labels"];
    expect(isSubset(redis["spec"]["selector"]["matchLabels"], redisLabels)).toBe(true);
    expect(isSubset(one(run(), "Service", names.redis)["spec"]["selector"], redisLabels)).toBe(
      true,
    );
    // The two selectors do not overlap: the agents' Service never routes to Redis.
    expect(isSubset(workload["spec"]["selector"]["matchLabels"], redisLabels)).toBe(false);
    const policy = one(run(), "NetworkPolicy")["spec"];
    expect(isSubset(policy["podSelector"]["matchLabels"], redisLabels)).toBe(true);
    expect(isSubset(policy["ingress"][0]["from"][0]["podSelector"]["matchLabels"], podLabels)).toBe(
      true,
    );
  });

  it("the token and the Redis URL reach the agent only by secretKeyRef, and stay secret everywhere", () => {
    const token = run().exports["token"]!;
    expect(token.secret).toBe(true);
    const value = token.value as string;
    expect(value.length).toBeGreaterThanOrEqual(16);
    const secret = one(run(), "Secret");
    expect(secret["stringData"]["token"]).toBe(value);
    const secretObject = run().objects.find((o) => o.inputs["kind"] === "Secret")!;
    expect(secretObject.secretPaths).toContain("stringData");
    const env = envOf(agentContainer(run()));
    for (const [name, key] of [
      ["KILN_TOKEN", "token"],
      ["KILN_REDIS_URL", "redis-url"],
    ] as const) {
      expect(env.get(name)).toEqual({
        name,
        valueFrom: { secretKeyRef: { name: secret["metadata"]["name"], key } },
      });
      expect(secret["stringData"][key]).toBeTruthy();
    }
    // Nowhere in clear: no other object, no arg, no env value, no label, no plain output.
    const redisUrl = secret["stringData"]["redis-url"] as string;
    const password = /^redis:\/\/:([^@]+)@/.exec(redisUrl)![1]!;
    for (const object of run().objects.filter((o) => o.inputs["kind"] !== "Secret")) {
      const text = JSON.stringify(object.inputs);
      expect(text, object.name).not.toContain(value);
      expect(text, object.name).not.toContain(password);
    }
    expect(JSON.stringify(run().exports["endpoint"])).not.toContain(value);
    const deployment = run().deployments[0]!;
    expect(deployment.secretInputs).toContain("token");
    expect(deployment.inputs.token).toBe(value);
  });

  it("the grace period outlasts the agent's drain", () => {
    const pod = agentWorkload(run())["spec"]["template"]["spec"];
    const drain = Number(argAfter(agentContainer(run())["args"], "--drain-grace"));
    expect(drain).toBe(AGENT_DRAIN_GRACE_S);
    expect(pod["terminationGracePeriodSeconds"]).toBeGreaterThan(drain);
    // The DaemonSet rolls one node at a time (each old agent drains first).
    expect(agentWorkload(run())["spec"]["updateStrategy"]).toEqual({
      type: "RollingUpdate",
      rollingUpdate: { maxUnavailable: 1 },
    });
  });

  it("privileged for cgroups, devices and loop mounts, and nothing else of the host", () => {
    const pod = agentWorkload(run())["spec"]["template"]["spec"];
    const container = agentContainer(run());
    expect(container["securityContext"]).toEqual({ privileged: true });
    expect(pod["hostNetwork"]).toBe(false);
    expect(pod["hostPID"]).toBe(false);
    expect(pod["hostIPC"]).toBe(false);
    expect(pod["automountServiceAccountToken"]).toBe(false);
    expect(pod["serviceAccountName"]).toBe(names.agent);
    // One host path: the state dir, mounted where --state-dir says.
    expect(pod["volumes"]).toEqual([
      {
        name: "state",
        hostPath: { path: `/var/lib/kiln/kiln/${names.base}`, type: "DirectoryOrCreate" },
      },
    ]);
    expect(container["volumeMounts"]).toEqual([
      { name: "state", mountPath: argAfter(container["args"], "--state-dir") },
    ]);
  });

  it("Redis: one replica with AOF on a PersistentVolumeClaim, a headless Service, a password", () => {
    const redis = one(run(), "StatefulSet")["spec"];
    const container = redis["template"]["spec"]["containers"][0];
    const args = container["args"] as string[];
    expect(argAfter(args, "--appendonly")).toBe("yes");
    const dir = argAfter(args, "--dir");
    const claim = redis["volumeClaimTemplates"][0];
    expect(container["volumeMounts"]).toContainEqual({
      name: claim["metadata"]["name"],
      mountPath: dir,
    });
    expect(claim["spec"]).toEqual({
      accessModes: ["ReadWriteOnce"],
      resources: { requests: { storage: "8Gi" } },
    });
    expect(redis["replicas"]).toBe(1);
    const headless = one(run(), "Service", names.redis)["spec"];
    expect(headless["clusterIP"]).toBe("None");
    expect(redis["serviceName"]).toBe(names.redis);
    // The agents' Redis URL names the StatefulSet's pod through the headless Service.
    const url = one(run(), "Secret")["stringData"]["redis-url"] as string;
    expect(url).toMatch(new RegExp(`@${names.redis}-0\\.${names.redis}\\.kiln\\.svc:6379$`));
    // The password file is the only key of the Secret the Redis pod mounts (not the token).
    const config = redis["template"]["spec"]["volumes"][0]["secret"];
    expect(config["items"]).toEqual([{ key: "redis.conf", path: "redis.conf" }]);
    expect(one(run(), "Secret")["stringData"]["redis.conf"]).toMatch(/^requirepass \S{16,}\n$/);
    expect(container["securityContext"]["capabilities"]).toEqual({ drop: ["ALL"] });
  });

  it("the Service is ClusterIP on 7070; the pool's endpoint is its cluster DNS name, deployed to", () => {
    const service = one(run(), "Service", names.agent)["spec"];
    expect(service["type"]).toBe("ClusterIP");
    expect(service["ports"]).toEqual([
      { name: "http", port: 7070, targetPort: "http", protocol: "TCP" },
    ]);
    const endpoint = `http://${names.agent}.kiln.svc.cluster.local:7070`;
    expect(run().exports["endpoint"]).toEqual({ value: endpoint, secret: false });
    // App deploys through the pool unchanged: same endpoint and token, the pool's maxima.
    const deployment = run().deployments[0]!;
    expect(deployment.inputs.endpoint).toBe(endpoint);
    expect(deployment.inputs.target).toBe("kubernetes");
    expect(deployment.inputs.maxima).toMatchObject({ gpusPerContainer: 2 });
  });
});

describe("what an update touches", () => {
  const byName = (run: MockedRun) =>
    Object.fromEntries(objects(run).map((o) => [`${o.type} ${o.name}`, o.inputs]));

  it("a function's maxContainers changes the app's spec and no object of the cluster", () => {
    const before = runs.get("daemonset")!;
    const after = runs.get("moreContainers")!;
    expect(byName(after)).toEqual(byName(before));
    expect(after.deployments[0]!.inputs.specHash).not.toBe(before.deployments[0]!.inputs.specHash);
  });

  it.each(["newImage", "moreGpus"] as const)(
    "%s changes only the agents' pod template: a rolling update, each agent draining",
    (name) => {
      const before = byName(runs.get("daemonset")!);
      const after = byName(runs.get(name)!);
      const changed = Object.keys(before).filter(
        (key) => JSON.stringify(before[key]) !== JSON.stringify(after[key]),
      );
      expect(changed).toEqual(["kubernetes:apps/v1:DaemonSet gpus-agents"]);
      const key = changed[0]!;
      const { template: t1, ...rest1 } = (before[key] as Json)["spec"];
      const { template: t2, ...rest2 } = (after[key] as Json)["spec"];
      expect(rest2).toEqual(rest1);
      expect(t2).not.toEqual(t1);
    },
  );
});

describe("replicas, LoadBalancer, a Redis URL and token of the user's, an explicit provider", () => {
  const run = () => runs.get("replicas")!;

  it("a Deployment of 3 with required anti-affinity per hostname, rolling without surge", () => {
    expect(run().objects.some((o) => o.inputs["kind"] === "DaemonSet")).toBe(false);
    const deployment = one(run(), "Deployment")["spec"];
    expect(deployment["replicas"]).toBe(3);
    expect(deployment["strategy"]["rollingUpdate"]).toEqual({ maxSurge: 0, maxUnavailable: 1 });
    const terms =
      deployment["template"]["spec"]["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
      ];
    expect(terms).toHaveLength(1);
    expect(terms[0]["topologyKey"]).toBe("kubernetes.io/hostname");
    expect(
      isSubset(
        terms[0]["labelSelector"]["matchLabels"],
        deployment["template"]["metadata"]["labels"],
      ),
    ).toBe(true);
    const pod = deployment["template"]["spec"];
    expect(pod["terminationGracePeriodSeconds"]).toBeGreaterThan(AGENT_DRAIN_GRACE_S);
    expect(pod["nodeSelector"]).toEqual({ "nvidia.com/gpu.present": "true" });
    expect(pod["tolerations"]).toEqual([
      { key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" },
    ]);
  });

  it("GPU, CPU and memory limits; the agent hands out the pod's cores", () => {
    const container = agentContainer(run());
    expect(container["resources"]).toEqual({
      limits: { "nvidia.com/gpu": "8", cpu: "16", memory: "65536Mi" },
      requests: { cpu: "16", memory: "65536Mi" },
    });
    expect(argAfter(container["args"], "--cpu")).toBe("16");
    expect(container["image"]).toBe(IMAGE);
  });

  it("no in-cluster Redis; the user's URL and token only in the Secret", () => {
    const kinds = objects(run()).map((o) => o.inputs["kind"]);
    expect(kinds).not.toContain("StatefulSet");
    expect(kinds).not.toContain("NetworkPolicy");
    expect(kinds.filter((k) => k === "Service")).toHaveLength(1);
    const secret = one(run(), "Secret");
    expect(secret["stringData"]).toEqual({ token: USER_TOKEN, "redis-url": USER_REDIS });
    for (const object of run().objects.filter((o) => o.inputs["kind"] !== "Secret")) {
      expect(JSON.stringify(object.inputs)).not.toContain("never-in-clear");
    }
    expect(run().exports["token"]).toEqual({ value: USER_TOKEN, secret: true });
    expect(run().resources.map((r) => r.type)).not.toContain(
      "random:index/randomPassword:RandomPassword",
    );
  });

  it("a LoadBalancer on the given port, in the given namespace, through the given provider", () => {
    const service = one(run(), "Service")["spec"];
    expect(service["type"]).toBe("LoadBalancer");
    expect(service["ports"][0]).toMatchObject({ port: 443, targetPort: "http" });
    expect(one(run(), "Namespace")["metadata"]["name"]).toBe("gpu");
    for (const object of run().objects) {
      expect(object.provider, object.name).toMatch(/pulumi:providers:kubernetes::cluster::/);
    }
    // No address yet (the mock has no load balancer status): the cluster DNS name, on the port.
    expect(run().exports["endpoint"]!.value).toBe(
      `http://${objectNames("gpus").agent}.gpu.svc.cluster.local:443`,
    );
  });
});

describe("a CPU-only pool, NodePort, a sized Redis volume", () => {
  const run = () => runs.get("cpuOnly")!;

  it("requests no GPUs and hands out none", () => {
    const container = agentContainer(run());
    expect(container["resources"]).toBeUndefined();
    expect(envOf(container).get("NVIDIA_VISIBLE_DEVICES")).toEqual({
      name: "NVIDIA_VISIBLE_DEVICES",
      value: "void",
    });
  });

  it("NodePort Service; Redis claim of 50 GiB on the named class", () => {
    expect(one(run(), "Service", objectNames("gpus").agent)["spec"]["type"]).toBe("NodePort");
    const claim = one(run(), "StatefulSet")["spec"]["volumeClaimTemplates"][0]["spec"];
    expect(claim["storageClassName"]).toBe("fast-ssd");
    expect(claim["resources"]["requests"]["storage"]).toBe("50Gi");
  });
});

describe("examples/kubernetes", () => {
  it("evaluates to schema-valid objects: agents on tainted GPU nodes, the app deployed to them", async () => {
    for (const object of objects(example))
      expect(await schemaProblem(object.inputs), `${object.type} ${object.name}`).toBeNull();
    const pod = one(example, "DaemonSet")["spec"]["template"]["spec"];
    expect(pod["tolerations"]).toEqual([
      { key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" },
    ]);
    expect(pod["containers"][0]["resources"]["limits"]).toEqual({ "nvidia.com/gpu": "1" });
    expect(pod["containers"][0]["image"]).toBe(IMAGE);
    const deployment = example.deployments[0]!;
    expect(Object.keys(deployment.inputs.spec.functions).sort()).toEqual(["gpus", "square"]);
    expect(deployment.inputs.endpoint).toBe(example.exports["endpoint"]!.value);
    expect(example.exports["token"]!.secret).toBe(true);
  });
});

describe("kiln preview and kiln deploy of a kubernetes program (the built CLI)", () => {
  // A url where nothing listens (loopback: no lookup of the cluster's DNS name from here).
  const PROGRAM = source(
    `{ gpusPerHost: 1, target: { kind: "kubernetes", image: "${IMAGE}", url: "http://127.0.0.1:9" } }`,
  );
  let dir: string;
  beforeAll(async () => {
    dir = await makeProgram({ "index.ts": PROGRAM, "functions.ts": HANDLERS });
    dirs.push(dir);
  });

  it("preview shows the app as new and lists what 'pulumi up' would create, creating nothing", async () => {
    const result = await kiln(["preview", dir]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe(
      [
        "app demo on http://127.0.0.1:9: new app",
        "  + function square",
        "  1 to add, 0 to change, 0 to remove",
      ].join("\n"),
    );
    const notes = result.stderr.split("\n").filter(Boolean);
    expect(notes).toHaveLength(2);
    expect(notes[0]).toMatch(
      /^note: 'pulumi up' creates or updates these 10 resources of the program's pools; kiln preview cannot \(it runs without the Pulumi engine\): /,
    );
    for (const resource of [
      "RandomPassword gpus-token",
      "Namespace gpus-namespace",
      "ServiceAccount gpus-agent",
      "Secret gpus-secret",
      "DaemonSet gpus-agents",
      "Service gpus-service",
      "StatefulSet gpus-redis",
      "Service gpus-redis",
      "NetworkPolicy gpus-redis",
    ])
      expect(notes[0]).toContain(resource);
    expect(notes[1]).toBe(
      "note: no agent of the kubernetes pool answers at http://127.0.0.1:9: showing app 'demo' as new (its agents come with 'pulumi up'; give the target a url that reaches them to diff against them)",
    );
  });

  it("deploy refuses: the hosts need 'pulumi up'", async () => {
    const result = await kiln(["deploy", dir]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(
      /GpuPool "gpus": target\.kind: a "kubernetes" pool provisions hosts, which needs the Pulumi engine: run 'pulumi up'; with 'kiln deploy', use \{ kind: "endpoint", url, token \}/,
    );
  });
});

describe("bad arguments fail at construction, naming the field", () => {
  it.each([
    ["unknownField", `GpuPool "gpus": target.replicas: unknown field`],
    [
      "loadBalancerNoPort",
      `GpuPool "gpus": target.service.port: required for a LoadBalancer service`,
    ],
    ["noImage", `GpuPool "gpus": target.image: required`],
  ] as const)("%s (a program)", (name, message) => {
    const run = runs.get(name)!;
    expect(run.error?.name).toBe("InvalidError");
    expect(run.error?.message).toContain(message);
    expect(run.objects).toEqual([]);
  });

  const problems = (target: Json, rest: Json = { gpusPerHost: 1 }): string[] => {
    try {
      validateGpuPoolArgs("p", { target, ...rest } as never);
    } catch (error) {
      return (
        error as { details: { issues: { path: string; message: string }[] } }
      ).details.issues.map((i) => `${i.path}: ${i.message}`);
    }
    return [];
  };
  const base = { kind: "kubernetes", image: IMAGE };

  it.each([
    [{ ...base, placement: { replicas: 0 } }, /^target\.placement\.replicas: /],
    [{ ...base, placement: "everywhere" }, /^target\.placement: expected one of "daemonset"/],
    [
      { ...base, placement: { replicas: 2, spread: true } },
      /^target\.placement\.spread: unknown field/,
    ],
    [{ ...base, namespace: "Not_OK" }, /^target\.namespace: expected a namespace name/],
    [
      { ...base, service: { type: "Ingress" } },
      /^target\.service\.type: expected one of "ClusterIP", "NodePort", "LoadBalancer"/,
    ],
    [{ ...base, service: { port: 70000 } }, /^target\.service\.port: /],
    [
      { ...base, tolerations: [{ key: "a", operator: "In" }] },
      /^target\.tolerations\[0\]\.operator: expected one of "Exists", "Equal"/,
    ],
    [
      { ...base, tolerations: [{ key: "a", effects: "NoSchedule" }] },
      /^target\.tolerations\[0\]\.effects: unknown field/,
    ],
    [{ ...base, redis: { inCluster: {}, url: "redis://x:6379" } }, /^target\.redis: give one of/],
    [
      { ...base, redis: { url: "http://x" } },
      /^target\.redis\.url: expected a redis:\/\/ or rediss:\/\/ URL/,
    ],
    [
      { ...base, redis: { inCluster: { storageGiB: 0 } } },
      /^target\.redis\.inCluster\.storageGiB: /,
    ],
    [
      { ...base, gpuResource: "nvidia com/gpu" },
      /^target\.gpuResource: expected an extended resource name/,
    ],
    [{ ...base, agentMemory: 100 }, /^target\.agentMemory: at least 256 MiB/],
    [{ ...base, agentCpu: -1 }, /^target\.agentCpu: /],
    [{ ...base, image: "" }, /^target\.image: must not be empty/],
    [{ ...base, provider: {} }, /^target\.provider: expected a kubernetes\.Provider/],
    [{ ...base, url: "ftp://x" }, /^target\.url: expected an http\(s\) URL/],
  ])("%j", (target, message) => {
    const found = problems(target);
    expect(
      found.some((line) => message.test(line)),
      found.join("\n"),
    ).toBe(true);
  });

  it("gpusPerHost is required: it is what each agent pod requests", () => {
    expect(problems(base, {})).toEqual([
      `gpusPerHost: required for a kubernetes target: the GPUs each agent pod requests as "nvidia.com/gpu" (0 for a CPU-only pool)`,
    ]);
  });

  it("Outputs are taken on trust until they resolve; a good target has no problems", async () => {
    const pulumi = await import("@pulumi/pulumi");
    expect(
      problems({
        ...base,
        image: pulumi.output(IMAGE),
        token: pulumi.secret("t"),
        redis: { url: pulumi.secret("redis://r:6379") },
        placement: { replicas: 2 },
        service: { type: "LoadBalancer", port: 80 },
      }),
    ).toEqual([]);
  });
});
