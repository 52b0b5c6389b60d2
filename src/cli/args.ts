/**
 * Argument parsing on `node:util` parseArgs (no framework): strict, so a typo is a usage error
 * (exit 2) rather than a silently ignored flag.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./cli-errors.ts";

/** Options every command accepts. */
export const commonOptions = {
  help: { type: "boolean", short: "h" },
  json: { type: "boolean" },
} as const satisfies ParseArgsConfig["options"];

/** parseArgs with lull's conventions; parse failures become {@link UsageError}. */
export function parseCommandArgs<O extends NonNullable<ParseArgsConfig["options"]>>(
  command: string,
  args: string[],
  options: O,
) {
  try {
    return parseArgs({
      args,
      options: { ...commonOptions, ...options },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message, command);
  }
}

/** Parses a positive integer flag, or throws a usage error naming it. */
export function intOption(
  command: string,
  name: string,
  value: string | undefined,
  fallback: number,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new UsageError(`--${name} must be a positive whole number, got '${value}'`, command);
  }
  return n;
}
