/** A stable identity for a spec: sha256 of its canonical JSON (keys sorted at every level). */
import { createHash } from "node:crypto";
import { InvalidError } from "../errors.js";
import type { CompiledAppSpec } from "./app-spec.js";

/**
 * JSON with object keys sorted at every level, no whitespace. Follows `JSON.stringify` (toJSON,
 * undefined object fields dropped, undefined in arrays as null) but throws `InvalidError` for
 * values with no JSON form: NaN, Infinity, BigInt, functions, symbols, cycles.
 */
export function canonicalJson(value: unknown): string {
  return write(value, "(root)", new Set());
}

function write(value: unknown, path: string, seen: Set<object>): string {
  if (
    value !== null &&
    typeof value === "object" &&
    typeof (value as { toJSON?: unknown }).toJSON === "function"
  ) {
    value = (value as { toJSON: () => unknown }).toJSON();
  }
  if (value === null || typeof value === "boolean" || typeof value === "string")
    return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new InvalidError(`${path}: ${value} has no JSON form`);
    return JSON.stringify(value);
  }
  if (typeof value !== "object")
    throw new InvalidError(`${path}: a ${typeof value} has no JSON form`);
  if (seen.has(value)) throw new InvalidError(`${path}: a cycle has no JSON form`);
  seen.add(value);
  try {
    if (Array.isArray(value)) {
      const items = value.map((item: unknown, index) =>
        item === undefined || typeof item === "function" || typeof item === "symbol"
          ? "null"
          : write(item, `${path}[${index}]`, seen),
      );
      return `[${items.join(",")}]`;
    }
    const record = value as Record<string, unknown>;
    const fields: string[] = [];
    for (const key of Object.keys(record).sort()) {
      const field = record[key];
      if (field === undefined || typeof field === "function" || typeof field === "symbol") continue;
      fields.push(`${JSON.stringify(key)}:${write(field, `${path}.${key}`, seen)}`);
    }
    return `{${fields.join(",")}}`;
  } finally {
    seen.delete(value);
  }
}

/** sha256 hex of the spec's canonical JSON: equal specs give equal digests whatever their key order. */
export function specDigest(spec: CompiledAppSpec): string {
  return createHash("sha256").update(canonicalJson(spec)).digest("hex");
}
