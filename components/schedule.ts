/**
 * `Schedule`: call a function of an App on a cron expression (in a time zone) or every period.
 * Declared in the AppSpec; schedules do not fire in ephemeral apps (`kiln run`).
 */
import * as pulumi from "@pulumi/pulumi";
import {
  RESOURCE_NAME_PATTERN,
  ScheduleSpecSchema,
  type SpecIssue,
} from "../runtime/spec/index.js";
import { App } from "./app.js";
import { ServerlessFunction } from "./serverless-function.js";
import {
  componentError,
  defined,
  knownFields,
  labelOf,
  secretFields,
  specKeys,
  zodIssues,
} from "./validate.js";

export interface SchedulePeriod {
  days?: number;
  hours?: number;
  minutes?: number;
  seconds?: number;
}

export interface ScheduleArgs {
  /** The App the schedule belongs to. */
  readonly app: App;
  /** The function to call: a ServerlessFunction of the same App. */
  readonly function: ServerlessFunction;
  /** The schedule's name in the app (a plain string). Default: the resource name. */
  readonly name?: string;
  /** A 5-field cron expression, e.g. `"0 3 * * *"`. Set this or `period`. */
  readonly cron?: pulumi.Input<string>;
  /** The IANA time zone `cron` is read in. Default "UTC". */
  readonly timezone?: pulumi.Input<string>;
  /** Every `{ days, hours, minutes, seconds }`, at least 1 s in total. Set this or `cron`. */
  readonly period?: pulumi.Input<SchedulePeriod>;
  /** Arguments the function is called with (JSON values). Default []. */
  readonly args?: pulumi.Input<unknown[]>;
  /** 1: after downtime, run one missed occurrence; 0: skip missed ones. Default 0. */
  readonly catchUp?: pulumi.Input<0 | 1>;
}

/** Check a schedule's (known) arguments; `fields.function` is the target's name. */
export function validateScheduleArgs(name: string, fields: Record<string, unknown>): void {
  const issues: SpecIssue[] = [];
  if (!RESOURCE_NAME_PATTERN.test(name))
    issues.push({
      path: "name",
      message: `invalid schedule name ${JSON.stringify(name)}: use 1-64 letters, digits, "_" or "-", starting with a letter or "_"`,
    });
  const parsed = ScheduleSpecSchema.safeParse(fields, { reportInput: true });
  if (!parsed.success) issues.push(...zodIssues(parsed.error));
  if (issues.length > 0) throw componentError(labelOf("Schedule", name), issues);
}

export class Schedule extends pulumi.ComponentResource {
  static readonly __pulumiType = "kiln:index:Schedule";

  static override isInstance(obj: unknown): obj is Schedule {
    return (
      typeof obj === "object" &&
      obj !== null &&
      (obj as { __pulumiType?: unknown }).__pulumiType === Schedule.__pulumiType
    );
  }

  /** The schedule's name in the app. */
  readonly name: pulumi.Output<string>;
  /** The app's name on the agent. */
  readonly appName: pulumi.Output<string>;
  /** The name of the function it calls. */
  readonly functionName: pulumi.Output<string>;

  constructor(name: string, args: ScheduleArgs, opts?: pulumi.ComponentResourceOptions) {
    super(
      Schedule.__pulumiType,
      name,
      {},
      pulumi.mergeOptions({ parent: App.isInstance(args?.app) ? args.app : undefined }, opts),
    );
    const scheduleName = args?.name ?? name;
    const label = labelOf("Schedule", scheduleName);
    if (!App.isInstance(args?.app))
      throw componentError(label, [{ path: "app", message: "required: an App" }]);
    const fn = args.function;
    if (!ServerlessFunction.isInstance(fn))
      throw componentError(label, [
        { path: "function", message: "required: a ServerlessFunction of the same App" },
      ]);
    if (fn.app !== args.app) {
      throw componentError(label, [
        {
          path: "function",
          message: `ServerlessFunction ${JSON.stringify(fn.functionName)} belongs to another App; a schedule calls a function of its own App`,
        },
      ]);
    }
    validateScheduleArgs(scheduleName, {
      function: fn.functionName,
      ...knownFields(args, specKeys(args, ["app", "name", "function"])),
    });
    const given = {
      cron: args.cron,
      timezone: args.timezone,
      period: args.period,
      args: args.args,
      catchUp: args.catchUp,
    };
    const spec = pulumi.output(defined(given)).apply((fields) => {
      const full = { function: fn.functionName, ...fields };
      validateScheduleArgs(scheduleName, full);
      return full as Record<string, unknown>;
    });
    args.app.addMember("schedule", scheduleName, spec, secretFields(given));
    this.name = pulumi.output(scheduleName);
    this.appName = args.app.name;
    this.functionName = pulumi.output(fn.functionName);
    this.registerOutputs({
      name: this.name,
      appName: this.appName,
      functionName: this.functionName,
    });
  }
}
