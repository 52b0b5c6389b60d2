/**
 * `lull env`: prints the running `lull dev`'s URL and tokens as shell exports, so curl examples
 * can be pasted as they are: `eval "$(npx lull env)"`.
 */
import type { DevState } from "../../dev/dev-state.ts";
import { readDevState } from "../../dev/dev-state.ts";
import { parseCommandArgs } from "../args.ts";
import { CommandError, UsageError } from "../cli-errors.ts";
import { type Command, out, outJson } from "../command.ts";

/** Single-quotes a value for POSIX shells. */
function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** `export NAME=value` lines for a running stack. */
export function shellExports(state: DevState): string[] {
  return Object.entries(exportedVariables(state)).map(([k, v]) => `export ${k}=${shellQuote(v)}`);
}

/** The variables `lull env` exports. */
export function exportedVariables(state: DevState): Record<string, string> {
  return {
    LULL_URL: state.lullUrl,
    LULL_INGEST_TOKEN: state.secrets.ingestToken,
    LULL_ADMIN_TOKEN: state.secrets.adminToken,
    LULL_CRON_SECRET: state.secrets.cronSecret,
  };
}

const help = `lull env — print the running \`lull dev\`'s URL and tokens as shell exports

Usage: eval "$(lull env)"      then e.g.  curl "$LULL_URL/health"

Exports LULL_URL (the lull function, …/functions/v1/lull), LULL_INGEST_TOKEN,
LULL_ADMIN_TOKEN and LULL_CRON_SECRET, read from .lull/dev.json in this directory.

Options:
  --json        print them as one JSON object
  -h, --help    this help

Exit codes: 0 ok, 1 no running \`lull dev\` here, 2 usage error.`;

/** `lull env`. */
export const envCommand: Command = {
  name: "env",
  summary: "print the running `lull dev`'s URL and tokens as shell exports",
  help,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs("env", args, {});
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const state = readDevState(ctx.cwd);
    if (!state) {
      throw new CommandError(
        "no_stack",
        "no running `lull dev` in this directory (start one: npm start)",
      );
    }
    if (values.json) outJson(exportedVariables(state));
    else for (const line of shellExports(state)) out(line);
    return 0;
  },
};
