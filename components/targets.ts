/**
 * Where a GpuPool's functions run. One discriminated union, one entry per kind in `TARGET_KINDS`:
 * `local` and `endpoint` reach agents that already run; kinds that provision hosts (kubernetes,
 * docker, ec2) slot in here with their own fields and need the Pulumi engine.
 */
import type * as pulumi from "@pulumi/pulumi";

/** The agent on this machine: `kiln agent`, or the one `kiln run` starts when none answers. */
export interface LocalTarget {
  readonly kind: "local";
  /** Agent URL. Default: config `kiln:url`, else KILN_URL, else http://127.0.0.1:7070. */
  readonly url?: pulumi.Input<string>;
  /** The agent's state dir, where its token file is. Default: config `kiln:stateDir`, else KILN_STATE_DIR, else ~/.kiln. */
  readonly stateDir?: string;
  /** Bearer token. Default: config `kiln:token` (secret), else KILN_TOKEN, else `<stateDir>/token`. */
  readonly token?: pulumi.Input<string>;
}

/** An agent (or a cluster behind one URL) that already runs somewhere. */
export interface EndpointTarget {
  readonly kind: "endpoint";
  /** Agent URL, e.g. https://kiln.internal:7070. */
  readonly url: pulumi.Input<string>;
  /** Bearer token. Pass a secret (`pulumi.secret`, or `config.requireSecret`). */
  readonly token: pulumi.Input<string>;
}

export type GpuPoolTarget = LocalTarget | EndpointTarget;

/** Every target kind kiln knows, and whether reaching it needs the Pulumi engine (it provisions hosts). */
export const TARGET_KINDS = {
  local: { provisions: false, implemented: true },
  endpoint: { provisions: false, implemented: true },
  kubernetes: { provisions: true, implemented: false },
  docker: { provisions: true, implemented: false },
  ec2: { provisions: true, implemented: false },
} as const;

export type TargetKind = keyof typeof TARGET_KINDS;

/** Why a kind cannot be used here, or null. `evaluator` is the kiln command evaluating the program without the engine. */
export function targetKindProblem(kind: unknown, evaluator: string | null): string | null {
  const kinds = Object.keys(TARGET_KINDS);
  if (typeof kind !== "string" || !Object.hasOwn(TARGET_KINDS, kind)) {
    return `unknown target kind ${JSON.stringify(kind)} (known: ${kinds.map((k) => JSON.stringify(k)).join(", ")})`;
  }
  const entry = TARGET_KINDS[kind as TargetKind];
  if (!entry.provisions) return null;
  const instead = `use { kind: "endpoint", url, token } for agents that already run, or { kind: "local" }`;
  if (evaluator !== null) {
    return `a ${JSON.stringify(kind)} pool provisions hosts, which needs the Pulumi engine: run 'pulumi up'${entry.implemented ? "" : ` (once ${kind} targets are implemented)`}; with '${evaluator}', ${instead}`;
  }
  return `${JSON.stringify(kind)} targets are provisioned by 'pulumi up' and are not implemented yet: ${instead}`;
}
