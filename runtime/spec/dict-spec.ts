/** DictSpec: a distributed key-value dict that belongs to the app. */
import { z } from "zod";
import { bounded, boundedInt } from "./checks.js";
import {
  DEFAULT_DICT_INACTIVITY_EXPIRY_S,
  DEFAULT_DICT_MAX_ENTRIES,
  MAX_DICT_INACTIVITY_EXPIRY_S,
  MAX_DICT_MAX_ENTRIES,
  MIN_DICT_INACTIVITY_EXPIRY_S,
} from "./limits.js";

export const DictSpecSchema = z.strictObject({
  /** An entry neither read nor written for this many seconds expires, 60..31536000. Default 7 days. */
  inactivityExpiryS: bounded({
    min: MIN_DICT_INACTIVITY_EXPIRY_S,
    max: MAX_DICT_INACTIVITY_EXPIRY_S,
    integer: true,
    unit: " s",
  }).default(DEFAULT_DICT_INACTIVITY_EXPIRY_S),
  /** Most entries, 1..1e9. Default 10,000,000. */
  maxEntries: boundedInt(1, MAX_DICT_MAX_ENTRIES).default(DEFAULT_DICT_MAX_ENTRIES),
});

export type DictSpecInput = z.input<typeof DictSpecSchema>;
export type CompiledDictSpec = z.output<typeof DictSpecSchema>;
