import { describe, expect, it } from "vitest";
import { compileAppSpec } from "../../runtime/spec/index.js";
import { appWith, linesOf } from "./helpers.js";

const gpuOf = (gpu: unknown) => compileAppSpec(appWith({ gpu })).functions.f?.gpu;

describe("gpu", () => {
  it.each([
    ["A100:2", [{ type: "A100", count: 2 }]],
    ["H100", [{ type: "H100", count: 1 }]],
    ["a100-80gb:1", [{ type: "A100-80GB", count: 1 }]],
    ["l4:8", [{ type: "L4", count: 8 }]],
    ["any", [{ type: "any", count: 1 }]],
    ["ANY:2", [{ type: "any", count: 2 }]],
  ])("normalizes %j", (gpu, options) => {
    expect(gpuOf(gpu)).toEqual({ options });
  });

  it("keeps the order of a fallback list", () => {
    expect(gpuOf(["H100", "A100-80GB:2", "any:4"])).toEqual({
      options: [
        { type: "H100", count: 1 },
        { type: "A100-80GB", count: 2 },
        { type: "any", count: 4 },
      ],
    });
  });

  it("is null when absent or null", () => {
    expect(gpuOf(undefined)).toBeNull();
    expect(gpuOf(null)).toBeNull();
  });

  it.each([
    ["A100:9", 'functions.f.gpu: "A100:9": count 9 is above the maximum 8 GPUs (allowed 1..8)'],
    ["A100:0", 'functions.f.gpu: "A100:0": count 0 is below the minimum 1 GPUs (allowed 1..8)'],
    [
      "",
      'functions.f.gpu: "" is not a GPU request (expected "TYPE" or "TYPE:COUNT", e.g. "A100:2", "H100", "any")',
    ],
    [
      "A100:",
      'functions.f.gpu: "A100:" is not a GPU request (expected "TYPE" or "TYPE:COUNT", e.g. "A100:2", "H100", "any")',
    ],
    [
      "A100:-1",
      'functions.f.gpu: "A100:-1" is not a GPU request (expected "TYPE" or "TYPE:COUNT", e.g. "A100:2", "H100", "any")',
    ],
    [
      "A100:1.5",
      'functions.f.gpu: "A100:1.5" is not a GPU request (expected "TYPE" or "TYPE:COUNT", e.g. "A100:2", "H100", "any")',
    ],
    [
      "A100 x2",
      'functions.f.gpu: "A100 x2" is not a GPU request (expected "TYPE" or "TYPE:COUNT", e.g. "A100:2", "H100", "any")',
    ],
  ])("rejects %j", (gpu, line) => {
    expect(linesOf(appWith({ gpu }))).toEqual([line]);
  });

  it("names the bad entries of a fallback list by index", () => {
    expect(linesOf(appWith({ gpu: ["H100", "A100:9", ""] }))).toEqual([
      'functions.f.gpu[1]: "A100:9": count 9 is above the maximum 8 GPUs (allowed 1..8)',
      'functions.f.gpu[2]: "" is not a GPU request (expected "TYPE" or "TYPE:COUNT", e.g. "A100:2", "H100", "any")',
    ]);
  });

  it("rejects an empty list and wrong types", () => {
    expect(linesOf(appWith({ gpu: [] }))).toEqual([
      "functions.f.gpu: an empty list: give at least one GPU option, or null for none",
    ]);
    expect(linesOf(appWith({ gpu: 2 }))[0]).toMatch(
      /^functions\.f\.gpu: expected a GPU string or a list of them .*got number$/,
    );
    expect(linesOf(appWith({ gpu: ["H100", 2] }))).toEqual([
      "functions.f.gpu[1]: expected string, got number",
    ]);
  });
});
