/**
 * ScheduleSpec: call a function of the app on a 5-field cron expression (in a time zone) or every
 * `period`. Exactly one of `cron` and `period`.
 */
import { CronExpressionParser } from "cron-parser";
import { z } from "zod";
import { always, bounded } from "./checks.js";
import { messageOf } from "../errors.js";
import { DEFAULT_SCHEDULE_TIMEZONE, MIN_SCHEDULE_PERIOD_S } from "./limits.js";

const CRON_FIELDS = "minute hour day-of-month month day-of-week";

/** What is wrong with a cron expression, or null. Only 5-field expressions (no seconds). */
export function cronProblem(
  expression: string,
  timezone: string = DEFAULT_SCHEDULE_TIMEZONE,
): string | null {
  const fields = expression
    .trim()
    .split(/\s+/)
    .filter((field) => field !== "");
  const shown = JSON.stringify(expression);
  if (fields.length === 6)
    return `${shown} has 6 fields; seconds are not supported: use 5 fields (${CRON_FIELDS})`;
  if (fields.length !== 5)
    return `${shown} has ${fields.length} fields; expected 5 (${CRON_FIELDS})`;
  try {
    CronExpressionParser.parse(fields.join(" "), { tz: timezone });
  } catch (error) {
    return `invalid cron expression ${shown}: ${messageOf(error)}`;
  }
  return null;
}

/** What is wrong with an IANA time zone name, or null. */
export function timezoneProblem(timezone: string): string | null {
  const unknown = `unknown time zone ${JSON.stringify(timezone)}: expected an IANA name such as "UTC" or "Europe/Paris"`;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
    // cron-parser (luxon) must resolve it too: an unresolvable zone surfaces on the first `next()`.
    CronExpressionParser.parse("0 0 * * *", { tz: timezone }).next();
  } catch {
    return unknown;
  }
  return null;
}

/** The first value in `value` with no JSON form (functions, undefined, NaN, class instances), or null. */
function jsonProblem(
  value: unknown,
  path: (string | number)[],
): { path: (string | number)[]; message: string } | null {
  if (value === null || typeof value === "string" || typeof value === "boolean") return null;
  if (typeof value === "number")
    return Number.isFinite(value) ? null : { path, message: `${value} is not a JSON value` };
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const problem = jsonProblem(item, [...path, index]);
      if (problem !== null) return problem;
    }
    return null;
  }
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [key, item] of Object.entries(value)) {
      const problem = jsonProblem(item, [...path, key]);
      if (problem !== null) return problem;
    }
    return null;
  }
  const kind = typeof value === "object" ? (value.constructor?.name ?? "object") : typeof value;
  return { path, message: `expected a JSON value, got ${kind}` };
}

const nonNegative = bounded({ min: 0, max: null });

export const PeriodSchema = z
  .strictObject({
    days: nonNegative.default(0),
    hours: nonNegative.default(0),
    minutes: nonNegative.default(0),
    seconds: nonNegative.default(0),
  })
  .superRefine((period, ctx) => {
    const total = periodSeconds(period);
    if (Number.isFinite(total) && total < MIN_SCHEDULE_PERIOD_S) {
      ctx.addIssue({
        code: "custom",
        input: period,
        message: `a period of ${total} s is too short: the minimum is ${MIN_SCHEDULE_PERIOD_S} s`,
      });
    }
  });

/** The length of a period in seconds. */
export function periodSeconds(period: {
  days: number;
  hours: number;
  minutes: number;
  seconds: number;
}): number {
  return period.days * 86_400 + period.hours * 3600 + period.minutes * 60 + period.seconds;
}

export const ScheduleSpecSchema = z
  .strictObject({
    /** The name of a function of this app. */
    function: z.string(),
    /** A 5-field cron expression: `"0 9 * * MON-FRI"`. */
    cron: z
      .string()
      .nullish()
      .transform((value) =>
        value === null || value === undefined ? null : value.trim().split(/\s+/).join(" "),
      ),
    /** The time zone `cron` is read in. Default "UTC". */
    timezone: z
      .string()
      .superRefine((timezone, ctx) => {
        const problem = timezoneProblem(timezone);
        if (problem !== null) ctx.addIssue({ code: "custom", input: timezone, message: problem });
      })
      .default(DEFAULT_SCHEDULE_TIMEZONE),
    /** Every `{ days, hours, minutes, seconds }`, at least 1 s in total. */
    period: PeriodSchema.nullish().transform((value) => value ?? null),
    /** Arguments the function is called with (JSON). Default []. */
    args: z
      .array(z.unknown())
      .superRefine((args, ctx) => {
        const problem = jsonProblem(args, []);
        if (problem !== null)
          ctx.addIssue({
            code: "custom",
            input: args,
            path: problem.path,
            message: problem.message,
          });
      })
      .default(() => []),
    /** 1: after downtime, run one missed occurrence; 0: skip missed ones. Default 0. */
    catchUp: z.literal([0, 1]).default(0),
  })
  .superRefine(
    (spec, ctx) => {
      if (typeof spec !== "object" || spec === null) return;
      // Present means set, even with a wrong type (already reported on its own field).
      const hasCron = spec.cron !== null && spec.cron !== undefined;
      const hasPeriod = spec.period !== null && spec.period !== undefined;
      if (hasCron && hasPeriod) {
        ctx.addIssue({
          code: "custom",
          input: spec,
          path: ["period"],
          message: "set either cron or period, not both",
        });
      } else if (!hasCron && !hasPeriod) {
        ctx.addIssue({
          code: "custom",
          input: spec,
          path: ["cron"],
          message: "set cron or period (neither is set)",
        });
      }
      if (typeof spec.cron === "string") {
        const timezone =
          typeof spec.timezone === "string" && timezoneProblem(spec.timezone) === null
            ? spec.timezone
            : DEFAULT_SCHEDULE_TIMEZONE;
        const problem = cronProblem(spec.cron, timezone);
        if (problem !== null)
          ctx.addIssue({ code: "custom", input: spec.cron, path: ["cron"], message: problem });
      }
    },
    { when: always },
  );

export type ScheduleSpecInput = z.input<typeof ScheduleSpecSchema>;
export type CompiledScheduleSpec = z.output<typeof ScheduleSpecSchema>;
export type CompiledPeriod = NonNullable<CompiledScheduleSpec["period"]>;
