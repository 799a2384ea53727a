/** Names of apps and of the things inside them (functions, dicts, queues, schedules). */
import { z } from "zod";
import { MAX_APP_NAME_LENGTH, MAX_RESOURCE_NAME_LENGTH } from "./limits.js";

/** App names: lowercase letters, digits and dashes, starting with a letter or digit; 1-63 chars. */
export const APP_NAME_PATTERN = /^[a-z0-9][a-z0-9-]*$/;
/** Function, dict, queue and schedule names: a letter or `_`, then letters, digits, `_` or `-`; 1-64 chars. */
export const RESOURCE_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

export const AppNameSchema = z.string().superRefine((name, ctx) => {
  if (name.length < 1 || name.length > MAX_APP_NAME_LENGTH || !APP_NAME_PATTERN.test(name)) {
    ctx.addIssue({
      code: "custom",
      input: name,
      message: `invalid app name ${JSON.stringify(name)}: use 1-${MAX_APP_NAME_LENGTH} lowercase letters, digits and dashes, starting with a letter or digit`,
    });
  }
});

/** The key schema of the functions / dicts / queues / schedules records. */
export function resourceNameSchema(kind: string) {
  return z.string().superRefine((name, ctx) => {
    if (!RESOURCE_NAME_PATTERN.test(name)) {
      ctx.addIssue({
        code: "custom",
        input: name,
        message: `invalid ${kind} name: use 1-${MAX_RESOURCE_NAME_LENGTH} letters, digits, "_" or "-", starting with a letter or "_"`,
      });
    }
  });
}
