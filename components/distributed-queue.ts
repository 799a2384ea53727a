/** `DistributedQueue`: a FIFO queue with named partitions that belongs to an App (declared in its AppSpec). */
import * as pulumi from "@pulumi/pulumi";
import { QueueSpecSchema, RESOURCE_NAME_PATTERN, type SpecIssue } from "../runtime/spec/index.js";
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

export interface DistributedQueueArgs {
  /** The App the queue belongs to. */
  readonly app: App;
  /** The queue's name in the app (a plain string). Default: the resource name. */
  readonly name?: string;
  /** A partition with no activity for this many seconds expires, 1..604,800. Default 86,400 (1 day). */
  readonly partitionTtlS?: pulumi.Input<number>;
  /** Most items in one partition, 1..5000. Default 5000. */
  readonly maxPartitionItems?: pulumi.Input<number>;
  /** Most partitions, 1..1,000,000. Default 100,000. */
  readonly maxPartitions?: pulumi.Input<number>;
}

/** Check a queue's (known) arguments. */
export function validateQueueArgs(name: string, fields: Record<string, unknown>): void {
  const issues: SpecIssue[] = [];
  if (!RESOURCE_NAME_PATTERN.test(name))
    issues.push({
      path: "name",
      message: `invalid queue name ${JSON.stringify(name)}: use 1-64 letters, digits, "_" or "-", starting with a letter or "_"`,
    });
  const parsed = QueueSpecSchema.safeParse(fields, { reportInput: true });
  if (!parsed.success) issues.push(...zodIssues(parsed.error));
  if (issues.length > 0) throw componentError(labelOf("DistributedQueue", name), issues);
}

export class DistributedQueue extends pulumi.ComponentResource {
  static readonly __pulumiType = "kiln:index:DistributedQueue";

  static override isInstance(obj: unknown): obj is DistributedQueue {
    return (
      typeof obj === "object" &&
      obj !== null &&
      (obj as { __pulumiType?: unknown }).__pulumiType === DistributedQueue.__pulumiType
    );
  }

  /** The queue's name in the app. */
  readonly name: pulumi.Output<string>;
  /** The app's name on the agent. */
  readonly appName: pulumi.Output<string>;

  constructor(name: string, args: DistributedQueueArgs, opts?: pulumi.ComponentResourceOptions) {
    super(
      DistributedQueue.__pulumiType,
      name,
      {},
      pulumi.mergeOptions({ parent: App.isInstance(args?.app) ? args.app : undefined }, opts),
    );
    const queueName = args?.name ?? name;
    if (!App.isInstance(args?.app))
      throw componentError(labelOf("DistributedQueue", queueName), [
        { path: "app", message: "required: an App" },
      ]);
    validateQueueArgs(queueName, knownFields(args, specKeys(args, ["app", "name"])));
    const given = {
      partitionTtlS: args.partitionTtlS,
      maxPartitionItems: args.maxPartitionItems,
      maxPartitions: args.maxPartitions,
    };
    const spec = pulumi.output(defined(given)).apply((fields) => {
      validateQueueArgs(queueName, fields);
      return fields as Record<string, unknown>;
    });
    args.app.addMember("queue", queueName, spec, secretFields(given));
    this.name = pulumi.output(queueName);
    this.appName = args.app.name;
    this.registerOutputs({ name: this.name, appName: this.appName });
  }
}
