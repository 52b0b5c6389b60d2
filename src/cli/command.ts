/**
 * The shape of one `lull` subcommand. Commands return an exit code; thrown errors are mapped
 * to exit codes by main (usage 2, anything else 1).
 */

/** What a command gets besides its arguments. */
export interface CommandContext {
  env: Record<string, string | undefined>;
  cwd: string;
  /** Resolves when the user asks to stop (SIGINT/SIGTERM); long-running commands await it. */
  interrupted: Promise<NodeJS.Signals>;
}

/** One subcommand. */
export interface Command {
  name: string;
  /** One line for `lull --help`. */
  summary: string;
  /** Full `lull <name> --help` text. */
  help: string;
  run(args: string[], ctx: CommandContext): Promise<number>;
}

/** Writes a line to stdout. */
export function out(line = ""): void {
  process.stdout.write(line + "\n");
}

/** Writes a line to stderr. */
export function err(line = ""): void {
  process.stderr.write(line + "\n");
}

/** Prints one JSON value as a single line (for `--json`). */
export function outJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + "\n");
}
