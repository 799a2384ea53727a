/**
 * Every error kiln raises, one class per meaning, in one registry (after fastify's lib/errors.js).
 *
 * Each class has a stable `code` and an HTTP status. Errors cross the wire as
 * {@link WireError} (`toWire` / `fromWire`), so a caller gets the same class the agent threw.
 */

const ERROR_CODES = {
  INVALID: 400,
  UNAUTHENTICATED: 401,
  NOT_FOUND: 404,
  CANCELLED: 409,
  PAYLOAD_TOO_LARGE: 413,
  RESOURCE_EXHAUSTED: 429,
  REMOTE_ERROR: 500,
  FUNCTION_TIMEOUT: 504,
  OUT_OF_MEMORY: 500,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  TIMEOUT: 408,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface KilnErrorOptions {
  cause?: unknown;
  /** Extra machine-readable fields (limit names, values) carried over the wire. */
  details?: Record<string, unknown>;
}

export abstract class KilnError extends Error {
  abstract readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  constructor(message: string, options: KilnErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.details = options.details ?? {};
  }

  get status(): number {
    return ERROR_CODES[this.code];
  }
}

/** A spec, argument or request is out of range or malformed. Fix the input; retrying will not help. */
export class InvalidError extends KilnError {
  readonly code = "INVALID" as const;
}

/** Missing or wrong bearer token. */
export class UnauthenticatedError extends KilnError {
  readonly code = "UNAUTHENTICATED" as const;
}

/** An app, function, call, artifact or map that does not exist. The message names what does. */
export class NotFoundError extends KilnError {
  readonly code = "NOT_FOUND" as const;
}

/** A limit (pending, total, per-map, size) was reached at submission. Back off and retry. */
export class ResourceExhaustedError extends KilnError {
  readonly code = "RESOURCE_EXHAUSTED" as const;
}

/** A payload is larger than the inline limit. */
export class PayloadTooLargeError extends KilnError {
  readonly code = "PAYLOAD_TOO_LARGE" as const;
}

/** One attempt of a function ran past its `timeout`; the worker was killed. */
export class FunctionTimeoutError extends KilnError {
  readonly code = "FUNCTION_TIMEOUT" as const;
}

/** A `get` waited past its bound. The call itself goes on. */
export class TimeoutError extends KilnError {
  readonly code = "TIMEOUT" as const;
}

/** The call was cancelled; its work was stopped. */
export class CancelledError extends KilnError {
  readonly code = "CANCELLED" as const;
}

/** The worker was killed at its hard memory limit. */
export class OutOfMemoryError extends KilnError {
  readonly code = "OUT_OF_MEMORY" as const;
}

/** The agent or its store cannot be reached. Usually transient: retry with backoff. */
export class UnavailableError extends KilnError {
  readonly code = "UNAVAILABLE" as const;
}

/** A bug or broken invariant inside kiln itself. */
export class InternalError extends KilnError {
  readonly code = "INTERNAL" as const;
}

/** The handler threw. Carries the remote error's name, message and stack. */
/** What the handler threw, as it crosses to the caller. */
export interface RemoteInfo {
  name: string;
  message: string;
  stack?: string | undefined;
  fields?: Record<string, unknown> | undefined;
}

export class RemoteError extends KilnError {
  readonly code = "REMOTE_ERROR" as const;
  readonly remoteName: string;
  readonly remoteMessage: string;
  readonly remoteStack: string | undefined;
  /** The thrown value's own fields (JSON), e.g. `{ code: 42 }` for `throw { code: 42 }`. */
  readonly remoteFields: Record<string, unknown> | undefined;

  constructor(remote: RemoteInfo, options: KilnErrorOptions = {}) {
    super(`${remote.name}: ${remote.message}`, options);
    this.remoteName = remote.name;
    this.remoteMessage = remote.message;
    this.remoteStack = remote.stack;
    this.remoteFields = remote.fields;
    if (remote.stack)
      this.stack = `${this.name}: ${this.message}\n--- remote stack ---\n${remote.stack}`;
  }
}

const CLASSES = {
  INVALID: InvalidError,
  UNAUTHENTICATED: UnauthenticatedError,
  NOT_FOUND: NotFoundError,
  RESOURCE_EXHAUSTED: ResourceExhaustedError,
  PAYLOAD_TOO_LARGE: PayloadTooLargeError,
  FUNCTION_TIMEOUT: FunctionTimeoutError,
  TIMEOUT: TimeoutError,
  CANCELLED: CancelledError,
  OUT_OF_MEMORY: OutOfMemoryError,
  UNAVAILABLE: UnavailableError,
  INTERNAL: InternalError,
} as const;

/** The JSON shape of an error on the wire (HTTP bodies, stored results). */
export interface WireError {
  type: string;
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
  remote?: { name: string; message: string; stack?: string; fields?: Record<string, unknown> };
}

export function isKilnError(value: unknown): value is KilnError {
  return value instanceof KilnError;
}

export function toWire(error: unknown): WireError {
  if (error instanceof RemoteError) {
    return {
      type: error.name,
      code: error.code,
      message: error.message,
      details: error.details,
      remote: {
        name: error.remoteName,
        message: error.remoteMessage,
        ...(error.remoteStack ? { stack: error.remoteStack } : {}),
        ...(error.remoteFields ? { fields: error.remoteFields } : {}),
      },
    };
  }
  if (error instanceof KilnError) {
    return { type: error.name, code: error.code, message: error.message, details: error.details };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { type: "InternalError", code: "INTERNAL", message };
}

export function fromWire(wire: WireError): KilnError {
  if (wire.code === "REMOTE_ERROR") {
    return new RemoteError(wire.remote ?? { name: "Error", message: wire.message }, {
      details: wire.details ?? {},
    });
  }
  const Class = CLASSES[wire.code as Exclude<ErrorCode, "REMOTE_ERROR">] ?? InternalError;
  return new Class(wire.message, { details: wire.details ?? {} });
}

/** The error's message, whatever was thrown. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
