/**
 * Starting a process already confined: a tiny `/bin/sh` prelude writes the shell's own pid into
 * the container's `cgroup.procs` files and sets rlimits, then `exec`s the real program, which
 * keeps the pid, the cgroup, the rlimits and every inherited fd (the Node IPC channel included).
 * So no user code ever runs outside the group, unlike placing the pid after spawn.
 *
 * With `fork()`: `{ execPath: "/bin/sh", execArgv: ["-c", script, process.execPath, ...nodeFlags] }`
 * makes Node run `/bin/sh -c script node ...nodeFlags module ...args`; in the script `$0` is node
 * and `"$@"` the rest, so `exec "$0" "$@"` starts the worker exactly as fork would have.
 */

export interface SpawnWrapper {
  /** The shell run first. */
  shell: string;
  /** Shell commands run before `exec`; a failing one aborts the start (exit 125). */
  prelude: string[];
  /** Commands whose failure is ignored (best-effort rlimits). */
  bestEffort: string[];
}

/** Exit status of a wrapper that could not confine the process; nothing of the worker ran. */
const WRAPPER_FAILED_EXIT = 125;

/** Quote for /bin/sh: single quotes, with embedded ones closed and escaped. */
export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** A wrapper that enters `procsFiles` (every hierarchy's cgroup.procs) and sets `rlimits`. */
export function cgroupWrapper(
  procsFiles: readonly string[],
  rlimits: readonly string[] = [],
): SpawnWrapper {
  return {
    shell: "/bin/sh",
    prelude: procsFiles.map((file) => `echo $$ > ${shellQuote(file)}`),
    bestEffort: [...rlimits],
  };
}

/** `ulimit` commands for /bin/sh: no core files (a heap-OOM abort would write GBs), a data cap. */
export function rlimitCommands(
  options: { dataBytes?: number | null; core?: boolean } = {},
): string[] {
  const commands = options.core === true ? [] : ["ulimit -c 0"];
  if (options.dataBytes != null) commands.push(`ulimit -d ${Math.ceil(options.dataBytes / 1024)}`);
  return commands;
}

/** The `sh -c` script of a wrapper. */
export function wrapperScript(wrapper: SpawnWrapper): string {
  const lines: string[] = [];
  for (const command of wrapper.bestEffort) lines.push(`${command} 2>/dev/null`);
  if (wrapper.prelude.length > 0) {
    lines.push(
      `{ ${wrapper.prelude.join(" && ")}; } || { echo "kiln: could not confine the worker (cgroup placement failed)" >&2; exit ${WRAPPER_FAILED_EXIT}; }`,
    );
  }
  lines.push(`exec "$0" "$@"`);
  return lines.join("\n");
}

/** `fork()` options that run Node through the wrapper: pass as `execPath` and `execArgv`. */
export function wrapFork(
  wrapper: SpawnWrapper,
  nodeFlags: readonly string[],
  nodePath = process.execPath,
): { execPath: string; execArgv: string[] } {
  return {
    execPath: wrapper.shell,
    execArgv: ["-c", wrapperScript(wrapper), nodePath, ...nodeFlags],
  };
}

/** `spawn()` arguments that run `file args...` through the wrapper. */
export function wrapSpawn(
  wrapper: SpawnWrapper,
  file: string,
  args: readonly string[],
): { file: string; args: string[] } {
  return { file: wrapper.shell, args: ["-c", wrapperScript(wrapper), file, ...args] };
}
