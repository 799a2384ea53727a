/**
 * batch-embeddings as a Pulumi program: a batched embedder, a dict that caches its results, and a
 * nightly schedule that reindexes a corpus. `pulumi up` here (Pulumi.yaml) deploys it;
 * `kiln preview examples/batch-embeddings` shows the diff; `kiln run examples/batch-embeddings
 * examples/batch-embeddings/main.ts` runs main.ts against a temporary copy (schedules do not fire there).
 */
import * as pulumi from "@pulumi/pulumi";
import { App, DistributedDict, GpuPool, Schedule, ServerlessFunction } from "kiln";

const config = new pulumi.Config();

// The agent on this machine; containers of at most 4 cores and 4 GiB.
const pool = new GpuPool("cpu-pool", { target: { kind: "local" }, maxCpu: 4, maxMemory: 4096 });
const app = new App("batch-embeddings", { pool });

new DistributedDict("embedding-cache", { app, inactivityExpiryS: 30 * 86_400 });

// Inputs from many callers ride together: up to 32 per call, waiting at most 20 ms for a batch to fill.
new ServerlessFunction("embed", {
  app,
  handler: "./embeddings.ts#Embedder.embed",
  memory: 512,
  maxContainers: 2,
  batched: { maxBatchSize: 32, waitMs: 20 },
});
new ServerlessFunction("embedCached", {
  app,
  handler: "./embeddings.ts#embedCached",
  maxInputs: 16,
});
const reindex = new ServerlessFunction("reindex", {
  app,
  handler: "./embeddings.ts#reindex",
  timeout: 3600,
  retries: 2,
});

new Schedule("nightly", {
  app,
  function: reindex,
  cron: config.get("reindexCron") ?? "0 3 * * *",
  timezone: "UTC",
  args: [["kiln fires functions fast", "batches fill in milliseconds", "the cache remembers"]],
});

export const appName = app.name;
export const specHash = app.specHash;
