/**
 * Argument checks the Redis store adds to the shared ones (`../checks.ts`): Redis takes whole
 * milliseconds (a fractional duration is rounded up, never to 0), and optional bounds are finite.
 */
import { InvalidError } from "../../errors.js";
import { atLeastZero, nonNegative, positive } from "../checks.js";

export function positiveInt(name: string, value: number): number {
  return Math.ceil(positive(name, value));
}

export function nonNegativeInt(name: string, value: number): number {
  return Math.ceil(nonNegative(name, value));
}

export function optionalInt(name: string, value: number | undefined): number | undefined {
  return value === undefined ? undefined : positiveInt(name, value);
}

export function optionalCount(name: string, value: number | undefined): number | undefined {
  return value === undefined ? undefined : atLeastZero(name, value);
}

/** An optional bound: a finite number, or undefined. */
export function finite(name: string, value: number | undefined): number | undefined {
  if (value !== undefined && !Number.isFinite(value))
    throw new InvalidError(`${name} must be a finite number, got ${value}`);
  return value;
}
