/**
 * Messages between the agent and a worker process, over the Node IPC channel (`serialization:
 * "advanced"`, so encoded payload strings are not escaped a second time).
 *
 * Arguments and results stay in their serde-encoded form; the agent never decodes them. Either
 * side may send several messages as one `{ t: "many", messages }` (outbox.ts) while a send is in
 * flight; the receiver handles them in order.
 */

/** How the caller consumes the input: one value, or a stream of yielded values. */
export type InputMode = "value" | "stream";

export interface RemoteErrorInfo {
  name: string;
  message: string;
  stack?: string;
  /** The thrown value's own fields that survive JSON (`throw { code: 42 }` -> `{ code: 42 }`). */
  fields?: Record<string, unknown>;
  /** Set when the failure is the caller's fault (wrong call style), not the handler's. */
  invalid?: boolean;
}

export type ToWorker =
  | { t: "input"; id: string; args: string; mode: InputMode }
  /** A dynamic batch: each item is one input's encoded argument list; the handler gets one list per parameter. */
  | { t: "batch"; id: string; items: string[] }
  | { t: "shutdown" };

export type FromWorker =
  /** The handler is loaded and `enter()` has run; inputs may be sent. */
  | { t: "ready"; loadMs: number }
  /** Loading the bundle, finding the export, or `enter()` failed. The process exits after this. */
  | { t: "start-failed"; error: RemoteErrorInfo }
  | { t: "yield"; id: string; value: string }
  | { t: "result"; id: string; ok: true; value: string }
  | { t: "result"; id: string; ok: false; error: RemoteErrorInfo }
  /** One encoded result per batch item, in order. */
  | { t: "batch-result"; id: string; ok: true; values: string[] }
  | { t: "batch-result"; id: string; ok: false; error: RemoteErrorInfo }
  /** Output the handler wrote; `id` is the input it was running, when known. */
  | { t: "log"; id: string | null; stream: "stdout" | "stderr"; text: string };

/** Environment variables the agent sets for a worker. */
export const WORKER_ENV = {
  bundle: "KILN_BUNDLE",
  exportName: "KILN_EXPORT",
  method: "KILN_METHOD",
  app: "KILN_APP",
  fn: "KILN_FUNCTION",
  containerId: "KILN_CONTAINER_ID",
  url: "KILN_URL",
  token: "KILN_TOKEN",
} as const;
