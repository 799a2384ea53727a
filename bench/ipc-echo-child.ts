/**
 * The floor's child process: the smallest program that speaks the worker's IPC protocol. It says
 * "ready" at once (the fork floor times that), then answers every input with its arguments as
 * the result (the IPC echo floor), exactly in the message shapes of `runtime/worker/protocol.ts`.
 */
import type { FromWorker, ToWorker } from "../runtime/worker/protocol.js";

function send(message: FromWorker): void {
  process.send?.(message);
}

process.on("message", (message: ToWorker) => {
  if (message.t === "input") send({ t: "result", id: message.id, ok: true, value: message.args });
  else if (message.t === "shutdown") process.disconnect?.();
});
process.on("disconnect", () => process.exit(0));
send({ t: "ready", loadMs: 0 });
