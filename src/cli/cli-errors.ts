/**
 * CLI failures map to exit codes: a {@link UsageError} exits 2 (the command line was wrong, the
 * help text says how to fix it); every other error exits 1.
 */
import { LullError } from "../core/errors.ts";

/** Exit codes of every `lull` command. */
export const ExitCode = { ok: 0, failure: 1, usage: 2 } as const;

/** The command line itself is wrong (unknown flag, missing argument). Exits 2. */
export class UsageError extends LullError {
  constructor(message: string, readonly command?: string) {
    super("usage", message, { command });
  }
}

/** The command ran but could not do its job (nothing to connect to, HTTP error...). Exits 1. */
export class CommandError extends LullError {
  constructor(code: string, message: string, context: Record<string, unknown> = {}) {
    super(code, message, context);
  }
}
