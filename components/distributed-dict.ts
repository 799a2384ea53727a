/** `DistributedDict`: a key-value dict that belongs to an App (declared in its AppSpec). */
import * as pulumi from "@pulumi/pulumi";
import { DictSpecSchema, RESOURCE_NAME_PATTERN, type SpecIssue } from "../runtime/spec/index.js";
import { App } from "./app.js";
import {
  componentError,
  defined,
  knownFields,
  labelOf,
  secretFields,
  specKeys,
  zodIssues,
} from "./validate.js";

export interface DistributedDictArgs {
  /** The App the dict belongs to. */
  readonly app: App;
  /** The dict's name in the app (a plain string). Default: the resource name. */
  readonly name?: string;
  /** An entry neither read nor written for this many seconds expires, 60..31,536,000. Default 604,800 (7 days). */
  readonly inactivityExpiryS?: pulumi.Input<number>;
  /** Most entries, 1..1,000,000,000. Default 10,000,000. */
  readonly maxEntries?: pulumi.Input<number>;
}

/** Check a dict's (known) arguments. Throws `DistributedDict "cache": maxEntries: 0 is below the minimum 1 ...`. */
export function validateDictArgs(name: string, fields: Record<string, unknown>): void {
  const issues: SpecIssue[] = [];
  if (!RESOURCE_NAME_PATTERN.test(name))
    issues.push({
      path: "name",
      message: `invalid dict name ${JSON.stringify(name)}: use 1-64 letters, digits, "_" or "-", starting with a letter or "_"`,
    });
  const parsed = DictSpecSchema.safeParse(fields, { reportInput: true });
  if (!parsed.success) issues.push(...zodIssues(parsed.error));
  if (issues.length > 0) throw componentError(labelOf("DistributedDict", name), issues);
}

export class DistributedDict extends pulumi.ComponentResource {
  static readonly __pulumiType = "kiln:index:DistributedDict";

  static override isInstance(obj: unknown): obj is DistributedDict {
    return (
      typeof obj === "object" &&
      obj !== null &&
      (obj as { __pulumiType?: unknown }).__pulumiType === DistributedDict.__pulumiType
    );
  }

  /** The dict's name in the app. */
  readonly name: pulumi.Output<string>;
  /** The app's name on the agent. */
  readonly appName: pulumi.Output<string>;

  constructor(name: string, args: DistributedDictArgs, opts?: pulumi.ComponentResourceOptions) {
    super(
      DistributedDict.__pulumiType,
      name,
      {},
      pulumi.mergeOptions({ parent: App.isInstance(args?.app) ? args.app : undefined }, opts),
    );
    const dictName = args?.name ?? name;
    if (!App.isInstance(args?.app))
      throw componentError(labelOf("DistributedDict", dictName), [
        { path: "app", message: "required: an App" },
      ]);
    validateDictArgs(dictName, knownFields(args, specKeys(args, ["app", "name"])));
    const spec = pulumi
      .output(defined({ inactivityExpiryS: args.inactivityExpiryS, maxEntries: args.maxEntries }))
      .apply((fields) => {
        validateDictArgs(dictName, fields);
        return fields as Record<string, unknown>;
      });
    const fields = { inactivityExpiryS: args.inactivityExpiryS, maxEntries: args.maxEntries };
    args.app.addMember("dict", dictName, spec, secretFields(fields));
    this.name = pulumi.output(dictName);
    this.appName = args.app.name;
    this.registerOutputs({ name: this.name, appName: this.appName });
  }
}
