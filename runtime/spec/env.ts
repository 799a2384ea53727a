/** Environment variables and secrets of a function: records of name → string value. */
import { z } from "zod";

/** Env var names: a letter or `_`, then letters, digits or `_`. */
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Names with this prefix are kiln's own. */
export const RESERVED_ENV_PREFIX = "KILN_";

const EnvNameSchema = z.string().superRefine((name, ctx) => {
  if (!ENV_NAME_PATTERN.test(name)) {
    ctx.addIssue({
      code: "custom",
      input: name,
      message: `invalid variable name: use letters, digits and "_", not starting with a digit`,
    });
  } else if (name.startsWith(RESERVED_ENV_PREFIX)) {
    ctx.addIssue({
      code: "custom",
      input: name,
      message: `names starting with ${RESERVED_ENV_PREFIX} are reserved for kiln`,
    });
  }
});

/** `env` and `secrets`: `{ NAME: "value" }`, default `{}`. Secret values are redacted by `redactSpec`. */
export const EnvSchema = z.record(EnvNameSchema, z.string()).default(() => ({}));

export type EnvInput = z.input<typeof EnvSchema>;
export type CompiledEnv = z.output<typeof EnvSchema>;
