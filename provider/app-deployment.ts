/**
 * `AppDeployment`: a Pulumi dynamic resource, one per App, that keeps an agent running exactly
 * the app the program declares. Its provider is serialized by `pulumi up`
 * (`pulumi.runtime.serializeFunction`) and run in another process, so its methods capture
 * nothing: each imports `kiln/provider/ops` when called, and the endpoint and token arrive as
 * inputs (the token a secret), never through the closure.
 */
import * as pulumi from "@pulumi/pulumi";
import type { AppSpecInput, Maxima } from "../runtime/spec/index.js";
import {
  APP_DEPLOYMENT_MODULE,
  APP_DEPLOYMENT_TYPE,
  APP_DEPLOYMENT_TYPE_NAME,
  type AppDeploymentInputs,
  type AppDeploymentOutputs,
  type SecretValues,
} from "./state.js";

type Ops = typeof import("./ops.js");

/**
 * The provider. Keep every method a one-liner around `import("kiln/provider/ops")`: anything a
 * method referenced from this module would be serialized with it (pulumi/pulumi#8090, #5130).
 * The specifier is cast so that TypeScript leaves it alone; at run time it resolves from the
 * program's project (the Pulumi CLI runs providers there) or from kiln itself (`kiln preview`).
 */
export const appDeploymentProvider: pulumi.dynamic.ResourceProvider<
  AppDeploymentInputs,
  AppDeploymentOutputs
> = {
  async check(olds, news) {
    const ops: Ops = await import("kiln/provider/ops" as string);
    return ops.check(olds, news);
  },
  async diff(id, olds, news) {
    const ops: Ops = await import("kiln/provider/ops" as string);
    return ops.diff(id, olds, news);
  },
  async create(inputs) {
    const ops: Ops = await import("kiln/provider/ops" as string);
    return ops.create(inputs);
  },
  async update(id, olds, news) {
    const ops: Ops = await import("kiln/provider/ops" as string);
    return ops.update(id, olds, news);
  },
  async delete(id, props) {
    const ops: Ops = await import("kiln/provider/ops" as string);
    return ops.remove(id, props);
  },
  async read(id, props) {
    const ops: Ops = await import("kiln/provider/ops" as string);
    return ops.read(id, props as AppDeploymentOutputs);
  },
};

export interface AppDeploymentArgs {
  /** The app's name on the agent. Changing it replaces the deployment. */
  readonly appName: pulumi.Input<string>;
  /** The AppSpec as written, without secret values; `name` equals `appName`. */
  readonly spec: pulumi.Input<AppSpecInput>;
  /** Secret values per function: function → name → value. Pass a secret. Default none. */
  readonly secrets?: pulumi.Input<SecretValues>;
  /** Handler file → sha256 of its bundle, as evaluated. */
  readonly bundles: pulumi.Input<Record<string, string>>;
  /** Absolute directory the handler files are relative to (not diffed). */
  readonly root: pulumi.Input<string>;
  /** The agent's URL. Changing it replaces the deployment. */
  readonly endpoint: pulumi.Input<string>;
  /** The agent's bearer token. Pass a secret. */
  readonly token: pulumi.Input<string>;
  /** The pool's target kind ("local", "endpoint"). */
  readonly target: pulumi.Input<string>;
  /** Per-container maxima of the pool. Default none (kiln's own ceilings). */
  readonly maxima?: pulumi.Input<Maxima>;
  /** Content hash of the bundles and the canonical spec. */
  readonly specHash: pulumi.Input<string>;
  /** Spec paths whose values came from secret Outputs (`functions.f.cpu`, `schedules.s.args`). Default none. */
  readonly secretPaths?: pulumi.Input<string[]>;
}

export class AppDeployment extends pulumi.dynamic.Resource {
  static readonly __pulumiType = APP_DEPLOYMENT_TYPE;

  /** True for an AppDeployment, also one made by another copy of this module. */
  static override isInstance(obj: unknown): obj is AppDeployment {
    return (
      typeof obj === "object" &&
      obj !== null &&
      (obj as { __pulumiType?: unknown }).__pulumiType === AppDeployment.__pulumiType
    );
  }

  declare readonly appName: pulumi.Output<string>;
  declare readonly endpoint: pulumi.Output<string>;
  declare readonly specHash: pulumi.Output<string>;
  declare readonly bundles: pulumi.Output<Record<string, string>>;
  /** The agent's version number of the app. */
  declare readonly version: pulumi.Output<number>;
  /** The agent's digest of what it runs. */
  declare readonly digest: pulumi.Output<string>;

  constructor(name: string, args: AppDeploymentArgs, opts?: pulumi.CustomResourceOptions) {
    const props: Record<string, unknown> = {
      ...args,
      secrets: pulumi.secret(args.secrets ?? {}),
      token: pulumi.secret(args.token),
      maxima: args.maxima ?? {},
      version: undefined,
      digest: undefined,
    };
    super(
      appDeploymentProvider,
      name,
      props,
      pulumi.mergeOptions(opts, { additionalSecretOutputs: ["token", "secrets"] }),
      APP_DEPLOYMENT_MODULE,
      APP_DEPLOYMENT_TYPE_NAME,
    );
  }
}
