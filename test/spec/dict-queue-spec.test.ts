import { describe, expect, it } from "vitest";
import { compileAppSpec } from "../../runtime/spec/index.js";
import { linesOf } from "./helpers.js";

describe("dicts", () => {
  it("fills defaults", () => {
    expect(compileAppSpec({ name: "app", dicts: { cache: {} } }).dicts.cache).toEqual({
      inactivityExpiryS: 604_800,
      maxEntries: 10_000_000,
    });
  });
  it.each([
    ["inactivityExpiryS", 59, "59 is below the minimum 60 s (allowed 60..31536000)"],
    [
      "inactivityExpiryS",
      31_536_001,
      "31536001 is above the maximum 31536000 s (allowed 60..31536000)",
    ],
    ["maxEntries", 0, "0 is below the minimum 1 (allowed 1..1000000000)"],
    ["maxEntries", 1e9 + 1, "1000000001 is above the maximum 1000000000 (allowed 1..1000000000)"],
  ])("rejects %s = %j", (field, value, message) => {
    expect(linesOf({ name: "app", dicts: { cache: { [field]: value } } })).toEqual([
      `dicts.cache.${field}: ${message}`,
    ]);
  });
  it("rejects unknown fields", () => {
    expect(linesOf({ name: "app", dicts: { cache: { ttl: 1 } } })).toEqual([
      "dicts.cache.ttl: unknown field",
    ]);
  });
});

describe("queues", () => {
  it("fills defaults", () => {
    expect(compileAppSpec({ name: "app", queues: { jobs: {} } }).queues.jobs).toEqual({
      partitionTtlS: 86_400,
      maxPartitionItems: 5000,
      maxPartitions: 100_000,
    });
  });
  it.each([
    ["partitionTtlS", 0, "0 is below the minimum 1 s (allowed 1..604800)"],
    ["partitionTtlS", 604_801, "604801 is above the maximum 604800 s (allowed 1..604800)"],
    ["maxPartitionItems", 0, "0 is below the minimum 1 (allowed 1..5000)"],
    ["maxPartitionItems", 5001, "5001 is above the maximum 5000 (allowed 1..5000)"],
    ["maxPartitions", 0, "0 is below the minimum 1 (allowed 1..1000000)"],
    ["maxPartitions", 1_000_001, "1000001 is above the maximum 1000000 (allowed 1..1000000)"],
  ])("rejects %s = %j", (field, value, message) => {
    expect(linesOf({ name: "app", queues: { jobs: { [field]: value } } })).toEqual([
      `queues.jobs.${field}: ${message}`,
    ]);
  });
  it("rejects unknown fields", () => {
    expect(linesOf({ name: "app", queues: { jobs: { size: 1 } } })).toEqual([
      "queues.jobs.size: unknown field",
    ]);
  });
});
