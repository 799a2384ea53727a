import { describe, expect, it } from "vitest";
import {
  compileAppSpec,
  cronProblem,
  periodSeconds,
  timezoneProblem,
} from "../../runtime/spec/index.js";
import { linesOf } from "./helpers.js";

const withSchedule = (schedule: Record<string, unknown>) => ({
  name: "app",
  functions: { report: { handler: "./jobs.ts#report" } },
  schedules: { nightly: schedule },
});
const compileSchedule = (schedule: Record<string, unknown>) =>
  compileAppSpec(withSchedule(schedule)).schedules.nightly;

describe("schedules", () => {
  it("compiles a cron schedule with defaults", () => {
    expect(compileSchedule({ function: "report", cron: "0 3 * * *" })).toEqual({
      function: "report",
      cron: "0 3 * * *",
      timezone: "UTC",
      period: null,
      args: [],
      catchUp: 0,
    });
  });

  it("takes a time zone, args and catchUp", () => {
    expect(
      compileSchedule({
        function: "report",
        cron: " 0  9 * * MON-FRI ",
        timezone: "Europe/Paris",
        args: [1, { a: "b" }, null],
        catchUp: 1,
      }),
    ).toEqual({
      function: "report",
      cron: "0 9 * * MON-FRI",
      timezone: "Europe/Paris",
      period: null,
      args: [1, { a: "b" }, null],
      catchUp: 1,
    });
  });

  it("compiles a period schedule", () => {
    const schedule = compileSchedule({ function: "report", period: { hours: 1, minutes: 30 } });
    expect(schedule?.period).toEqual({ days: 0, hours: 1, minutes: 30, seconds: 0 });
    expect(schedule?.cron).toBeNull();
    expect(periodSeconds(schedule!.period!)).toBe(5400);
  });

  it("rejects a bad cron expression", () => {
    expect(linesOf(withSchedule({ function: "report", cron: "61 * * * *" }))).toEqual([
      'schedules.nightly.cron: invalid cron expression "61 * * * *": Constraint error, got value 61 expected range 0-59',
    ]);
    expect(linesOf(withSchedule({ function: "report", cron: "every day" }))).toEqual([
      'schedules.nightly.cron: "every day" has 2 fields; expected 5 (minute hour day-of-month month day-of-week)',
    ]);
    expect(linesOf(withSchedule({ function: "report", cron: "0 0 31 2 *" }))[0]).toMatch(
      /^schedules\.nightly\.cron: invalid cron expression/,
    );
    expect(linesOf(withSchedule({ function: "report", cron: "@daily" }))[0]).toMatch(
      /has 1 fields; expected 5/,
    );
  });

  it("rejects 6-field (seconds) expressions", () => {
    expect(linesOf(withSchedule({ function: "report", cron: "0 0 3 * * *" }))).toEqual([
      'schedules.nightly.cron: "0 0 3 * * *" has 6 fields; seconds are not supported: use 5 fields (minute hour day-of-month month day-of-week)',
    ]);
  });

  it("rejects an unknown time zone with a clear message", () => {
    expect(
      linesOf(
        withSchedule({ function: "report", cron: "0 3 * * *", timezone: "Mars/Olympus_Mons" }),
      ),
    ).toEqual([
      'schedules.nightly.timezone: unknown time zone "Mars/Olympus_Mons": expected an IANA name such as "UTC" or "Europe/Paris"',
    ]);
    expect(timezoneProblem("America/New_York")).toBeNull();
    expect(timezoneProblem("")).not.toBeNull();
  });

  it("rejects both cron and period, and neither", () => {
    expect(
      linesOf(withSchedule({ function: "report", cron: "0 3 * * *", period: { hours: 1 } })),
    ).toEqual(["schedules.nightly.period: set either cron or period, not both"]);
    expect(linesOf(withSchedule({ function: "report" }))).toEqual([
      "schedules.nightly.cron: set cron or period (neither is set)",
    ]);
  });

  it("rejects a schedule of an unknown function", () => {
    expect(linesOf(withSchedule({ function: "reprot", cron: "0 3 * * *" }))).toEqual([
      'schedules.nightly.function: no function "reprot" in this app (known: report)',
    ]);
    expect(
      linesOf({ name: "app", schedules: { s: { function: "x", period: { seconds: 5 } } } }),
    ).toEqual(['schedules.s.function: no function "x" in this app (the app has no functions)']);
  });

  it("rejects bad periods", () => {
    expect(linesOf(withSchedule({ function: "report", period: { seconds: 0.5 } }))).toEqual([
      "schedules.nightly.period: a period of 0.5 s is too short: the minimum is 1 s",
    ]);
    expect(linesOf(withSchedule({ function: "report", period: {} }))).toEqual([
      "schedules.nightly.period: a period of 0 s is too short: the minimum is 1 s",
    ]);
    expect(
      linesOf(withSchedule({ function: "report", period: { hours: -1, minutes: 90 } })),
    ).toEqual(["schedules.nightly.period.hours: -1 is below the minimum 0 (allowed >= 0)"]);
    expect(linesOf(withSchedule({ function: "report", period: { weeks: 1 } }))).toContain(
      "schedules.nightly.period.weeks: unknown field",
    );
  });

  it("rejects bad args, catchUp and unknown fields", () => {
    expect(linesOf(withSchedule({ function: "report", cron: "0 3 * * *", args: "x" }))).toEqual([
      "schedules.nightly.args: expected array, got string",
    ]);
    expect(
      linesOf(withSchedule({ function: "report", cron: "0 3 * * *", args: [() => 1] })),
    ).toEqual(["schedules.nightly.args[0]: expected a JSON value, got function"]);
    expect(linesOf(withSchedule({ function: "report", cron: "0 3 * * *", catchUp: 2 }))).toEqual([
      "schedules.nightly.catchUp: expected one of 0, 1, got 2",
    ]);
    expect(linesOf(withSchedule({ function: "report", cron: "0 3 * * *", every: "day" }))).toEqual([
      "schedules.nightly.every: unknown field",
    ]);
  });

  it("exposes cronProblem for other callers", () => {
    expect(cronProblem("*/5 * * * *")).toBeNull();
    expect(cronProblem("0 9 * * 1-5", "Asia/Tokyo")).toBeNull();
    expect(cronProblem("* * * * * *")).toMatch(/seconds are not supported/);
  });
});

describe("schedule args", () => {
  it("must be JSON", () => {
    expect(
      linesOf(
        withSchedule({ function: "report", cron: "0 3 * * *", args: [1, { when: new Date(0) }] }),
      ),
    ).toEqual(["schedules.nightly.args[1].when: expected a JSON value, got Date"]);
    expect(
      linesOf(withSchedule({ function: "report", cron: "0 3 * * *", args: [[Number.NaN]] })),
    ).toEqual(["schedules.nightly.args[0][0]: NaN is not a JSON value"]);
  });
});
