/**
 * The one value encoding of kiln: arguments, results, dict keys and values, queue items.
 *
 * devalue (the serializer of SvelteKit) keeps Date, Map, Set, BigInt, typed arrays, undefined vs
 * null, -0, NaN and repeated / cyclic references; kiln adds Buffer (arrives as a Buffer, not a bare
 * Uint8Array) and Error (name, message, stack, cause, code and own enumerable fields). The encoded
 * form is a string, so it travels inside JSON bodies and store values unchanged.
 *
 * Not promised: class instances other than Error keep their fields but not their prototype, and
 * functions and symbols are refused with an InvalidError that names the path.
 */
import * as devalue from "devalue";
import { InvalidError, PayloadTooLargeError } from "./errors.js";

/** Inline payload limit: arguments or a result larger than this are refused. */
export const MAX_INLINE_PAYLOAD_BYTES = 2 * 1024 * 1024;

interface EncodedError {
  name: string;
  message: string;
  stack?: string;
  cause?: unknown;
  fields: Record<string, unknown>;
}

const reducers: Record<string, (value: unknown) => unknown> = {
  Buffer: (value) => Buffer.isBuffer(value) && value.toString("base64"),
  Error: (value) => {
    if (!(value instanceof Error)) return false;
    const fields: Record<string, unknown> = {};
    for (const [key, field] of Object.entries(value)) {
      if (typeof field !== "function" && typeof field !== "symbol") fields[key] = field;
    }
    const encoded: EncodedError = { name: value.name, message: value.message, fields };
    if (value.stack !== undefined) encoded.stack = value.stack;
    if (value.cause !== undefined) encoded.cause = value.cause;
    return encoded;
  },
  Object: (value) => {
    // Class instances other than the built-ins: keep their own fields as a plain object.
    if (value === null || typeof value !== "object") return false;
    const proto = Object.getPrototypeOf(value) as object | null;
    if (proto === null || proto === Object.prototype || Array.isArray(value)) return false;
    if (isBuiltin(value)) return false;
    return Object.fromEntries(Object.entries(value));
  },
};

const revivers: NonNullable<Parameters<typeof devalue.parse>[1]> = {
  Buffer: (value: string) => Buffer.from(value, "base64"),
  Error: (value: EncodedError) => {
    const error = new Error(
      value.message,
      value.cause === undefined ? undefined : { cause: value.cause },
    );
    error.name = value.name;
    if (value.stack !== undefined) error.stack = value.stack;
    Object.assign(error, value.fields);
    return error;
  },
  Object: (value: Record<string, unknown>) => value,
};

function isBuiltin(value: object): boolean {
  return (
    value instanceof Date ||
    value instanceof Map ||
    value instanceof Set ||
    value instanceof RegExp ||
    ArrayBuffer.isView(value) ||
    value instanceof ArrayBuffer ||
    value instanceof Error ||
    value instanceof Boolean ||
    value instanceof Number ||
    value instanceof String ||
    value instanceof URL ||
    value instanceof URLSearchParams
  );
}

/** Encode any supported value. Throws InvalidError (naming the path) for functions and symbols. */
export function encode(value: unknown): string {
  try {
    return devalue.stringify(value, reducers);
  } catch (error) {
    const path = (error as { path?: string }).path;
    throw new InvalidError(
      `cannot serialize value${path ? ` at ${path}` : ""}: ${(error as Error).message}. ` +
        "Return plain data: objects, arrays, Date, Map, Set, BigInt, Buffer/Uint8Array, Error.",
      { cause: error },
    );
  }
}

export function decode<T = unknown>(text: string): T {
  return devalue.parse(text, revivers) as T;
}

/** Encode and refuse payloads over the inline limit with a message that says what to do. */
export function encodeBounded(
  value: unknown,
  what: string,
  limit = MAX_INLINE_PAYLOAD_BYTES,
): string {
  const text = encode(value);
  checkPayloadSize(text, what, limit);
  return text;
}

export function checkPayloadSize(
  text: string,
  what: string,
  limit = MAX_INLINE_PAYLOAD_BYTES,
): void {
  const bytes = Buffer.byteLength(text);
  if (bytes > limit) {
    throw new PayloadTooLargeError(
      `${what}: ${formatBytes(bytes)} encoded, over the ${formatBytes(limit)} inline limit; ` +
        "pass a reference instead (a path, a URL, a Dict key).",
      { details: { bytes, limit } },
    );
  }
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}
