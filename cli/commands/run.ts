/**
 * `kiln run <program-dir> <entry.ts> [-- --flag value]` and `kiln run <program-dir> ::fn --x 3`:
 * like `modal run`. Evaluates the Pulumi program (no Pulumi CLI needed), deploys its apps under
 * temporary names (`<app>-run-<id>`), streams the workers' logs while the entry's `main(args, ctx)`
 * (or the one function) runs, then removes the apps: at the end, and on Ctrl-C, unless `--detach`.
 * With a `local` pool and no agent answering, it starts an embedded agent for the run.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Command } from "commander";
import { Agent } from "../../runtime/agent/agent.js";
import { connect, type Kiln } from "../../runtime/client/index.js";
import { InvalidError, NotFoundError, UnavailableError } from "../../runtime/errors.js";
import type { LogLine } from "../../runtime/protocol.js";
import {
  compileAppSpec,
  MAX_APP_NAME_LENGTH,
  type CompiledFunctionSpec,
} from "../../runtime/spec/index.js";
import type { RunContext, RunEntry } from "../../components/run-context.js";
import { create, remove } from "../../provider/ops.js";
import {
  agentSpec,
  type AppDeploymentInputs,
  type AppDeploymentOutputs,
} from "../../provider/state.js";
import { jsonArg, parseArg } from "../args.js";
import { formatValue } from "../output.js";
import { evaluateProgram } from "./program.js";
import { agentAnswers } from "./program-diff.js";
import { checkInputs } from "./preview.js";

interface RunFlags {
  stack: string;
  detach?: boolean;
}

/** How long removing the apps may take at the end of a run (in-flight inputs get this long). */
const CLEANUP_GRACE_MS = 5_000;

export function registerRun(program: Command): void {
  program
    .command("run")
    .description(
      "run a Pulumi program's apps for one entrypoint: deploy them under temporary names, call the entry's main(args, ctx) " +
        "(or '::fn' with its arguments), stream the workers' logs, then remove the apps (also on Ctrl-C) unless --detach",
    )
    .argument("<program-dir>", "the program: a folder with Pulumi.yaml or index.ts")
    .argument(
      "<entry>",
      "an entry module exporting main(args, ctx) (e.g. main.ts), or ::fn to call one function",
    )
    .argument(
      "[args...]",
      "flags for main after '--' (--n 5 --name=x; an exported zod schema 'args' checks them), or ::fn's arguments (--x 3, or positional JSON)",
    )
    .option("--stack <name>", "stack whose config (Pulumi.<stack>.yaml) the program reads", "dev")
    .option("--detach", "leave the apps running after the run (needs an agent that outlives it)")
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async (dir: string, entry: string, rest: string[], flags: RunFlags, command: Command) =>
      runRun(dir, entry, rest, flags, Boolean(command.optsWithGlobals()["verbose"])),
    );
}

// ---- flags ----------------------------------------------------------------------------------------

export interface ParsedFlags {
  /** `--max-items 5` → `{ maxItems: 5 }`; values are JSON when they parse, else strings; a bare `--flag` is true, `--no-flag` false (it takes no value). */
  named: Record<string, unknown>;
  positional: unknown[];
}

export function parseFlags(tokens: readonly string[]): ParsedFlags {
  const named: Record<string, unknown> = {};
  const positional: unknown[] = [];
  const camel = (key: string) => key.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] ?? "";
    if (token === "--") continue;
    if (!token.startsWith("--") || token.length === 2) {
      positional.push(parseArg(jsonArg, token, `argument ${positional.length + 1}`));
      continue;
    }
    const body = token.slice(2);
    const eq = body.indexOf("=");
    if (eq < 0 && body.startsWith("no-")) {
      named[camel(body.slice(3))] = false;
    } else if (eq >= 0) {
      named[camel(body.slice(0, eq))] = parseArg(
        jsonArg,
        body.slice(eq + 1),
        `--${body.slice(0, eq)}`,
      );
    } else if (tokens[i + 1] !== undefined && !(tokens[i + 1] ?? "").startsWith("--")) {
      named[camel(body)] = parseArg(jsonArg, tokens[++i] ?? "", `--${body}`);
    } else {
      named[camel(body)] = true;
    }
  }
  return { named, positional };
}

// ---- the run --------------------------------------------------------------------------------------

interface RunningApp {
  declared: string;
  running: string;
  outs: AppDeploymentOutputs;
  spec: ReturnType<typeof compileAppSpec>;
}

/** Ephemeral name: `<app>-run-<6 hex>`, within the 63 characters an app name may have. */
export function ephemeralName(app: string, id: string): string {
  const suffix = `-run-${id}`;
  return `${app.slice(0, MAX_APP_NAME_LENGTH - suffix.length).replace(/-+$/, "")}${suffix}`;
}

class RunSession {
  readonly apps: RunningApp[] = [];
  readonly abort = new AbortController();
  private readonly logs = new AbortController();
  private readonly logTasks: Promise<void>[] = [];
  private embedded: { agent: Agent; stateDir: string } | null = null;
  private closing: Promise<void> | null = null;

  constructor(
    private readonly detach: boolean,
    private readonly say: (text: string) => void,
  ) {}

  /** Deploy each app under its ephemeral name; schedules are left out (they do not fire in ephemeral apps). */
  async deploy(deployments: readonly AppDeploymentInputs[]): Promise<void> {
    const id = randomBytes(3).toString("hex");
    for (const declared of deployments) {
      await checkInputs(declared);
      let { endpoint, token } = declared;
      if (!(await agentAnswers(endpoint))) {
        if (declared.target !== "local")
          throw new UnavailableError(
            `no agent answers at ${endpoint} (the pool's endpoint target); is it running?`,
            { details: { agentUnreachable: endpoint } },
          );
        ({ endpoint, token } = await this.embeddedAgent(endpoint));
      }
      const running = ephemeralName(declared.appName, id);
      const schedules = Object.keys(
        (declared.spec as { schedules?: Record<string, unknown> }).schedules ?? {},
      );
      if (schedules.length > 0)
        this.say(
          `note: schedules do not fire in ephemeral apps; not deployed: ${schedules.join(", ")}`,
        );
      const inputs: AppDeploymentInputs = {
        ...declared,
        appName: running,
        spec: { ...declared.spec, name: running, schedules: {} },
        endpoint,
        token,
      };
      const { outs } = await create(inputs, undefined, { ephemeral: true });
      if (this.closing) {
        // Interrupted while this app was being created: the cleanup has already gone by.
        if (!this.detach) await remove(running, outs, { graceMs: 0 }).catch(() => undefined);
        return;
      }
      const spec = compileAppSpec(agentSpec(inputs));
      this.apps.push({ declared: declared.appName, running, outs, spec });
      const functions = Object.keys(spec.functions);
      this.say(
        `deployed app '${declared.appName}' as '${running}' on ${endpoint} (${functions.length} function(s): ${functions.join(", ")})`,
      );
    }
  }

  private async embeddedAgent(url: string): Promise<{ endpoint: string; token: string }> {
    if (this.embedded)
      return { endpoint: this.embedded.agent.url, token: this.embedded.agent.token };
    if (this.detach) {
      throw new InvalidError(
        `--detach needs an agent that outlives the run, and none answers at ${url}: start one with 'kiln agent', then run again`,
      );
    }
    const stateDir = await mkdtemp(join(tmpdir(), "kiln-run-"));
    const agent = await Agent.start({ stateDir, port: 0 });
    this.embedded = { agent, stateDir };
    this.say(
      `no agent answers at ${url}: started an embedded agent for this run at ${agent.url} (state in ${stateDir}; it stops when the run ends)`,
    );
    return { endpoint: agent.url, token: agent.token };
  }

  /** Print the workers' output, `[fn] text` (`[app.fn]` with several apps), until the run ends. */
  followLogs(): void {
    const several = this.apps.length > 1;
    for (const app of this.apps) {
      const prefix = several ? `${app.declared}.` : "";
      this.logTasks.push(follow(app.outs, app.running, prefix, this.logs.signal));
    }
  }

  async client(app?: RunningApp): Promise<Kiln> {
    const target = app ?? this.apps[0];
    if (!target) throw new InvalidError("the program deployed no app");
    return connect({ url: target.outs.endpoint, token: target.outs.token });
  }

  /** Stop following logs, remove the apps (unless detached), stop the embedded agent. Once. In-flight inputs get `graceMs`. */
  close(graceMs = CLEANUP_GRACE_MS): Promise<void> {
    this.closing ??= (async () => {
      // Lines written just before the end are still on their way.
      await new Promise((r) => setTimeout(r, 150));
      this.logs.abort();
      await Promise.allSettled(this.logTasks);
      for (const app of this.apps) {
        if (this.detach) {
          this.say(
            `left app '${app.running}' running (--detach); stop it with 'kiln stop ${app.running}'`,
          );
          continue;
        }
        try {
          await remove(app.running, app.outs, { graceMs });
          this.say(`removed app '${app.running}'`);
        } catch (error) {
          this.say(`could not remove app '${app.running}': ${(error as Error).message}`);
        }
      }
      if (this.embedded) {
        await this.embedded.agent.stop();
        await rm(this.embedded.stateDir, { recursive: true, force: true });
      }
    })();
    return this.closing;
  }
}

/**
 * Follow an app's logs over a plain node:http request, destroyed (socket and all) when the run
 * ends: a fetch left half-open would keep an embedded agent's server from closing for its
 * keep-alive timeout.
 */
async function follow(
  outs: AppDeploymentOutputs,
  app: string,
  prefix: string,
  signal: AbortSignal,
): Promise<void> {
  const url = new URL(
    `v1/apps/${encodeURIComponent(app)}/logs?follow=true&tail=0`,
    outs.endpoint.endsWith("/") ? outs.endpoint : `${outs.endpoint}/`,
  );
  const { request } =
    url.protocol === "https:" ? await import("node:https") : await import("node:http");
  await new Promise<void>((done) => {
    const req = request(
      url,
      { headers: { authorization: `Bearer ${outs.token}` }, agent: false },
      (response) => {
        if (response.statusCode !== 200) {
          response.resume();
          done();
          return;
        }
        let buffered = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => {
          buffered += chunk;
          let newline: number;
          while ((newline = buffered.indexOf("\n")) >= 0) {
            const text = buffered.slice(0, newline).trim();
            buffered = buffered.slice(newline + 1);
            if (text === "") continue; // keep-alive ping
            try {
              const line = JSON.parse(text) as LogLine;
              if (line.stream === "system") continue;
              for (const part of line.text.replace(/\r?\n$/, "").split(/\r?\n/))
                process.stderr.write(`[${prefix}${line.function}] ${part}\n`);
            } catch {
              // not a log line
            }
          }
        });
        response.on("end", done);
        response.on("error", () => done());
      },
    );
    req.on("error", () => done());
    req.end();
    const stop = () => {
      req.destroy();
      done();
    };
    if (signal.aborted) stop();
    else signal.addEventListener("abort", stop, { once: true });
  });
}

async function runRun(
  dir: string,
  entry: string,
  rest: string[],
  flags: RunFlags,
  verbose: boolean,
): Promise<void> {
  const say = (text: string) => process.stderr.write(`kiln run: ${text}\n`);
  const fnName = entry.startsWith("::") ? entry.slice(2) : null;
  if (fnName === "") throw new InvalidError("::fn: name a function, e.g. ::square");
  const entryPath = fnName === null ? resolveEntry(entry, dir) : null;
  const parsed = parseFlags(rest);

  const program = await evaluateProgram(dir, {
    stack: flags.stack,
    evaluator: "kiln run",
    preview: false,
  });
  for (const note of program.notes) say(`note: ${note}`);
  // What would fail anyway (no such function, a bad flag, an entry that does not load) fails
  // before anything is deployed.
  const work =
    fnName !== null
      ? await prepareCall(program.deployments, fnName, parsed)
      : await prepareEntry(entryPath ?? entry, parsed);
  const session = new RunSession(Boolean(flags.detach), say);
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) {
      say(`${signal} again: exiting without cleaning up`);
      process.exit(130);
    }
    interrupted = true;
    say(`${signal}: stopping${flags.detach ? "" : " and removing the run's apps"}`);
    session.abort.abort();
    const deadline = setTimeout(() => process.exit(130), 30_000);
    // Ctrl-C: in-flight inputs of the run are not waited for.
    void session.close(0).finally(() => {
      clearTimeout(deadline);
      process.exit(130);
    });
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    await session.deploy(program.deployments);
    session.followLogs();
    if (work.kind === "call") {
      await callOne(session, work, verbose);
    } else {
      say(`running ${entry}`);
      const result = await runEntry(session, work);
      if (result !== undefined)
        process.stdout.write(`${formatValue(result, { stacks: verbose })}\n`);
    }
  } finally {
    // Interrupted: whatever main is doing now (a call failing as its app goes) waits for the cleanup, then exit 130.
    await session.close(interrupted ? 0 : CLEANUP_GRACE_MS);
    if (interrupted) process.exit(130);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** The entry module: relative to the current directory, else to the program's. */
function resolveEntry(entry: string, dir: string): string {
  for (const candidate of [resolve(entry), resolve(dir, entry)])
    if (existsSync(candidate)) return candidate;
  throw new InvalidError(
    `entry ${entry}: no such file (looked in ${process.cwd()} and ${resolve(dir)})`,
  );
}

/** An entry, loaded and its flags checked: what runs once the apps are deployed. */
interface PreparedEntry {
  kind: "entry";
  main: RunEntry["main"];
  args: unknown;
}

/** Load the entry module and check the flags against its `args` schema (zod or anything with safeParse). */
async function prepareEntry(path: string, flags: ParsedFlags): Promise<PreparedEntry> {
  let mod: Partial<RunEntry> & { default?: unknown };
  try {
    mod = (await import(pathToFileURL(path).href)) as Partial<RunEntry> & { default?: unknown };
  } catch (error) {
    throw new InvalidError(`entry ${path} failed to load: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const main =
    typeof mod.main === "function"
      ? mod.main
      : typeof mod.default === "function"
        ? (mod.default as RunEntry["main"])
        : null;
  if (main === null) throw new InvalidError(`entry ${path} exports no main(args, ctx) function`);
  let args: unknown =
    flags.positional.length > 0 ? { ...flags.named, _: flags.positional } : flags.named;
  if (mod.args && typeof mod.args.safeParse === "function") {
    const result = mod.args.safeParse(flags.named);
    if (!result.success) throw new InvalidError(`entry flags: ${flagIssues(result.error)}`);
    args = result.data;
  }
  return { kind: "entry", main, args };
}

async function runEntry(session: RunSession, entry: PreparedEntry): Promise<unknown> {
  const kiln = await session.client();
  const apps = Object.fromEntries(session.apps.map((a) => [a.declared, a.running]));
  const first = session.apps[0];
  const ctx: RunContext = {
    app: first?.running ?? "",
    apps,
    kiln,
    function: (name, app) =>
      kiln.function(app === undefined ? (first?.running ?? "") : (apps[app] ?? app), name),
    functionCall: (id) => kiln.functionCall(id),
    signal: session.abort.signal,
  };
  return entry.main(entry.args, ctx);
}

function flagIssues(error: unknown): string {
  const issues = (error as { issues?: { path?: PropertyKey[]; message?: string }[] })?.issues;
  if (!Array.isArray(issues)) return String((error as Error)?.message ?? error);
  return issues
    .map(
      (issue) =>
        `${issue.path?.length ? `--${issue.path.map(String).join(".")}: ` : ""}${issue.message ?? "invalid"}`,
    )
    .join("; ");
}

/** `::fn`, found in the program and its flags mapped to arguments: what runs once the apps are deployed. */
interface PreparedCall {
  kind: "call";
  fnName: string;
  /** The declared name of the app that has the function. */
  app: string;
  args: unknown[];
  generator: boolean;
}

async function prepareCall(
  deployments: readonly AppDeploymentInputs[],
  fnName: string,
  flags: ParsedFlags,
): Promise<PreparedCall> {
  const apps = deployments.map((inputs) => ({
    inputs,
    functions: compileAppSpec(agentSpec(inputs)).functions,
  }));
  const found = apps.flatMap(({ inputs, functions }) =>
    functions[fnName] ? [{ inputs, spec: functions[fnName] }] : [],
  );
  const target = found[0];
  if (!target) {
    const known = apps.flatMap(({ functions }) => Object.keys(functions)).sort();
    throw new NotFoundError(
      `::${fnName}: the program has no function '${fnName}'; its functions: ${known.join(", ") || "(none)"}`,
    );
  }
  const handler = await loadHandler(target.inputs.root, target.spec);
  let args = flags.positional;
  if (Object.keys(flags.named).length > 0)
    args = [...args, ...namedToPositional(fnName, handler, flags.named)];
  return { kind: "call", fnName, app: target.inputs.appName, args, generator: handler.generator };
}

/** Call the function with the prepared arguments and print the result (each value, for a generator). */
async function callOne(session: RunSession, call: PreparedCall, verbose: boolean): Promise<void> {
  const app = session.apps.find((a) => a.declared === call.app);
  if (!app) throw new NotFoundError(`::${call.fnName}: app '${call.app}' was not deployed`);
  const kiln = await session.client(app);
  const remote = kiln.function(app.running, call.fnName);
  if (call.generator) {
    for await (const value of remote.remoteGen(...call.args))
      process.stdout.write(`${formatValue(value, { stacks: verbose })}\n`);
    return;
  }
  const value = await remote.remote(...call.args);
  if (value !== undefined) process.stdout.write(`${formatValue(value, { stacks: verbose })}\n`);
}

interface HandlerShape {
  /** Parameter names in order; "object" for one destructured object parameter. */
  params: string[] | "object" | null;
  generator: boolean;
}

/**
 * Import the handler's module here (as `modal run` imports the module) to learn its parameters and
 * kind: its source, through the TypeScript loader the program was evaluated with, so that its own
 * imports (kiln/client among them) resolve from the program's folder as they do for the program.
 */
async function loadHandler(root: string, spec: CompiledFunctionSpec): Promise<HandlerShape> {
  const mod = (await import(pathToFileURL(resolve(root, spec.handler.file)).href)) as Record<
    string,
    unknown
  >;
  const exported = mod[spec.handler.exportName];
  const fn =
    spec.handler.method === null
      ? exported
      : (exported as { prototype?: Record<string, unknown> } | undefined)?.prototype?.[
          spec.handler.method
        ];
  if (typeof fn !== "function") return { params: null, generator: false };
  return {
    params: parameterNames(fn.toString()),
    generator:
      fn.constructor.name === "AsyncGeneratorFunction" ||
      fn.constructor.name === "GeneratorFunction",
  };
}

function namedToPositional(
  fnName: string,
  handler: HandlerShape,
  named: Record<string, unknown>,
): unknown[] {
  if (handler.params === "object") return [named];
  const params = handler.params ?? [];
  const unknown = Object.keys(named).filter((key) => !params.includes(key));
  if (unknown.length > 0) {
    throw new InvalidError(
      `::${fnName}: ${unknown.map((k) => `--${k}`).join(", ")}: not a parameter of ${fnName} (its parameters: ${params.join(", ") || "(none)"}); ` +
        "or pass the arguments as JSON, in order: ::fn 1 '\"text\"'",
    );
  }
  const last = Math.max(...Object.keys(named).map((key) => params.indexOf(key)));
  return params.slice(0, last + 1).map((param) => named[param]);
}

/** Parameter names from a function's source: `(a, b = 1, ...rest)` → ["a", "b", "rest"]; one `{...}` → "object". */
export function parameterNames(source: string): string[] | "object" | null {
  const arrow = /^\s*(?:async\s+)?([A-Za-z_$][\w$]*)\s*=>/.exec(source);
  if (arrow?.[1]) return [arrow[1]];
  const open = source.indexOf("(");
  if (open < 0) return null;
  let depth = 0;
  let quote: string | null = null;
  const parts: string[] = [];
  let current = "";
  for (let i = open + 1; i < source.length; i++) {
    const ch = source[i] ?? "";
    if (quote) {
      current += ch;
      if (ch === "\\") current += source[++i] ?? "";
      else if (ch === quote) quote = null;
      continue;
    }
    if (ch === '"' || ch === "'" || ch === "`") quote = ch;
    if ("([{".includes(ch)) depth++;
    if (")]}".includes(ch)) {
      if (depth === 0 && ch === ")") {
        parts.push(current);
        break;
      }
      depth--;
    }
    if (ch === "," && depth === 0) {
      parts.push(current);
      current = "";
      continue;
    }
    current += ch;
  }
  const params = parts.map((p) => p.trim()).filter((p) => p !== "");
  if (params.length === 1 && params[0]?.startsWith("{")) return "object";
  const names: string[] = [];
  for (const param of params) {
    const match = /^(?:\.\.\.)?([A-Za-z_$][\w$]*)/.exec(param);
    if (!match?.[1]) return null;
    names.push(match[1]);
  }
  return names;
}
