/**
 * Helpers for the bench's child processes (client processes, a BullMQ worker): where their
 * compiled scripts are, waiting for their next IPC message with a bound, and (in a child) sending
 * one to the parent.
 */
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The compiled bench script `name` (e.g. "remote-client.js"), whether this runs from dist/ or from source. */
export function benchScript(name: string): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith(".js")) return join(dirname(here), name);
  return resolve(dirname(here), "..", "dist", "bench", name);
}

/** Fork a bench script with an IPC channel; its stderr is piped (nextMessage quotes it on failure). */
export function forkBench(name: string, args: readonly string[]): ChildProcess {
  return fork(benchScript(name), args, {
    execArgv: [],
    stdio: ["ignore", "ignore", "pipe", "ipc"],
  });
}

/**
 * The child's next message; rejects when it sends `{ t: "error", message }`, exits, or says
 * nothing within `timeoutMs` (naming `what` it was waiting for, with its stderr).
 */
export function nextMessage<M extends { t: string }>(
  child: ChildProcess,
  what: string,
  timeoutMs: number,
): Promise<M> {
  return new Promise((resolveMessage, rejectMessage) => {
    let stderr = "";
    const onData = (chunk: Buffer): void => void (stderr += chunk.toString());
    child.stderr?.on("data", onData);
    const finish = (error: Error | null, message?: M): void => {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
      child.stderr?.off("data", onData);
      const failed = message as { t: string; message?: string } | undefined;
      if (error) rejectMessage(error);
      else if (failed?.t === "error")
        rejectMessage(new Error(`child process failed: ${failed.message ?? "(no message)"}`));
      else resolveMessage(message as M);
    };
    const onMessage = (message: M): void => finish(null, message);
    const onExit = (code: number | null): void =>
      finish(
        new Error(
          `child process exited (code ${code}) before ${what}${stderr ? `:\n${stderr}` : ""}`,
        ),
      );
    const timer = setTimeout(
      () => finish(new Error(`child process: no ${what} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    child.on("message", onMessage);
    child.once("exit", onExit);
  });
}

/** In a child: send `message` to the bench; resolves once it is written (at once without a parent). */
export function sendToParent(message: { t: string }): Promise<void> {
  return new Promise(
    (resolveSent) => process.send?.(message, () => resolveSent()) ?? resolveSent(),
  );
}

/** SIGKILL the children still running and wait for them to go. */
export async function killAll(children: readonly ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGKILL");
      await exited;
    }),
  );
}
