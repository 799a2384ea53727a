import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import {
  compileFunctionSpec,
  type CompiledFunctionSpec,
  type FunctionSpecInput,
} from "../../runtime/spec/index.js";
import { wrapSpawn, type SpawnWrapper } from "../../runtime/containers/spawn-wrapper.js";

/** A unique agent id per test file, so groups never collide with a real agent or another run. */
export function testAgentId(): string {
  return `test-${randomUUID().slice(0, 8)}`;
}

/** A compiled function spec with `fields` (handler filled in). */
export function specWith(fields: Omit<FunctionSpecInput, "handler">): CompiledFunctionSpec {
  return compileFunctionSpec("f", { handler: "./functions.ts#f", ...fields });
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Node running `code` through `wrapper`, with stderr collected; `exit` settles when it dies. */
export function spawnNode(
  wrapper: SpawnWrapper,
  code: string,
  nodeFlags: string[] = [],
  env: Record<string, string> = {},
  /** Pin to these CPUs (taskset list, e.g. "0,1"). */
  cpus?: string,
  /** process.argv[1...] of the script. */
  scriptArgs: string[] = [],
): { child: ChildProcess; exit: Promise<Exit> } {
  const node = [...nodeFlags, "-e", code, "--", ...scriptArgs];
  const { file, args } =
    cpus === undefined
      ? wrapSpawn(wrapper, process.execPath, node)
      : wrapSpawn(wrapper, "taskset", ["-c", cpus, process.execPath, ...node]);
  const child = spawn(file, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (text: string) => (stderr += text));
  child.stdout?.resume();
  const exit = new Promise<Exit>((resolve) =>
    child.once("close", (code, signal) => resolve({ code, signal, stderr })),
  );
  return { child, exit };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Busy loop, JS. */
export const BUSY = "for(;;){}";
