/**
 * AppSpec: a whole app. `{ name, functions, dicts, queues, schedules }`, each a record keyed by
 * name. The single source of truth for what an app is.
 */
import { z } from "zod";
import { always } from "./checks.js";
import { DictSpecSchema } from "./dict-spec.js";
import { createFunctionSpecSchema } from "./function-spec.js";
import type { Maxima } from "./maxima.js";
import { AppNameSchema, resourceNameSchema } from "./names.js";
import { QueueSpecSchema } from "./queue-spec.js";
import { ScheduleSpecSchema } from "./schedule-spec.js";

/** The AppSpec schema, checking resource requests against `maxima` (kiln's ceilings when absent). */
export function createAppSpecSchema(maxima?: Maxima) {
  return z
    .strictObject({
      /** 1-63 lowercase letters, digits and dashes. */
      name: AppNameSchema,
      functions: z
        .record(resourceNameSchema("function"), createFunctionSpecSchema(maxima))
        .default(() => ({})),
      dicts: z.record(resourceNameSchema("dict"), DictSpecSchema).default(() => ({})),
      queues: z.record(resourceNameSchema("queue"), QueueSpecSchema).default(() => ({})),
      schedules: z.record(resourceNameSchema("schedule"), ScheduleSpecSchema).default(() => ({})),
    })
    .superRefine(
      (app, ctx) => {
        // Every schedule calls a function of this app. Runs even when other parts failed.
        if (typeof app !== "object" || app === null) return;
        const functions =
          typeof app.functions === "object" && app.functions !== null ? app.functions : {};
        const schedules =
          typeof app.schedules === "object" && app.schedules !== null ? app.schedules : {};
        const known = Object.keys(functions);
        for (const [name, schedule] of Object.entries(schedules)) {
          const target: unknown =
            typeof schedule === "object" && schedule !== null ? schedule.function : undefined;
          if (typeof target !== "string" || Object.hasOwn(functions, target)) continue;
          const choices =
            known.length === 0 ? "the app has no functions" : `known: ${known.join(", ")}`;
          ctx.addIssue({
            code: "custom",
            input: target,
            path: ["schedules", name, "function"],
            message: `no function ${JSON.stringify(target)} in this app (${choices})`,
          });
        }
      },
      { when: always },
    );
}

/** The AppSpec schema with kiln's own ceilings (no pool maxima). */
export const AppSpecSchema = createAppSpecSchema();

/** What users write: `{ name: "hello", functions: { square: { handler: "./functions.ts#square" } } }`. */
export type AppSpecInput = z.input<typeof AppSpecSchema>;
/** The whole app with every default filled in. */
export type CompiledAppSpec = z.output<typeof AppSpecSchema>;
