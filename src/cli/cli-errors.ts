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
    super("usage", message);
  }
}

/** What a failed command was talking to, where it knows. */
export interface CommandErrorDetails {
  /** The URL it could not reach or that answered badly. */
  url?: string;
  /** That URL's HTTP status. */
  status?: number;
  /** Files it refused to overwrite. */
  files?: string[];
}

/** The command ran but could not do its job (nothing to connect to, HTTP error...). Exits 1. */
export class CommandError extends LullError implements CommandErrorDetails {
  readonly url?: string;
  readonly status?: number;
  readonly files?: string[];
  constructor(code: string, message: string, details: CommandErrorDetails = {}) {
    super(code, message);
    this.url = details.url;
    this.status = details.status;
    this.files = details.files;
  }
}
