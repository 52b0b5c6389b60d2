/**
 * The `lull` CLI: dispatches to a subcommand and maps outcomes to exit codes (0 ok, 1 failure,
 * 2 usage). Node-only; started by bin/lull.mjs.
 */
import { ConfigError, LullError } from "../core/errors.ts";
import { ExitCode, UsageError } from "./cli-errors.ts";
import type { Command, CommandContext } from "./command.ts";
import { auditCommand } from "./commands/audit.ts";
import { buffersCommand } from "./commands/buffers.ts";
import { dashboardCommand } from "./commands/dashboard.ts";
import { devCommand } from "./commands/dev.ts";
import { dlqCommand } from "./commands/dlq.ts";
import { envCommand } from "./commands/env.ts";
import { flushCommand } from "./commands/flush.ts";
import { initCommand } from "./commands/init.ts";
import { purgeCommand } from "./commands/purge.ts";
import { repairCommand } from "./commands/repair.ts";
import { sendCommand } from "./commands/send.ts";
import { statsCommand } from "./commands/stats.ts";
import { tailCommand } from "./commands/tail.ts";

/** Every subcommand, in help order. */
export const commands: Command[] = [
  devCommand,
  tailCommand,
  buffersCommand,
  statsCommand,
  dlqCommand,
  flushCommand,
  auditCommand,
  purgeCommand,
  sendCommand,
  envCommand,
  initCommand,
  dashboardCommand,
  repairCommand,
];

/** `lull --help`. */
export function mainHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    "lull — waits for the lull in a conversation, then flushes the burst as one batch",
    "",
    "Usage: lull <command> [options]      lull <command> --help for details",
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "Configuration comes from the environment (LULL_REDIS_URL or UPSTASH_REDIS_REST_URL/_TOKEN,",
    "LULL_ADMIN_TOKEN, ...) or, when no Redis is set there, from the running `lull dev` in this",
    "directory (.lull/dev.json). Every command takes --json.",
    "",
    "Exit codes: 0 ok, 1 failure, 2 usage error.",
  ].join("\n");
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function main(argv: string[], ctx: CommandContext): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    const topic = name === "help" ? commands.find((c) => c.name === rest[0]) : undefined;
    process.stdout.write((topic ? topic.help : mainHelp()) + "\n");
    return name === undefined ? ExitCode.usage : ExitCode.ok;
  }
  if (name === "--version" || name === "-v") {
    process.stdout.write("lull 0.1.0\n");
    return ExitCode.ok;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`lull: unknown command '${name}'\n\n${mainHelp()}\n`);
    return ExitCode.usage;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(command.help + "\n");
    return ExitCode.ok;
  }
  try {
    return await command.run(rest, ctx);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(
        `lull ${command.name}: ${err.message}\n(see lull ${command.name} --help)\n`,
      );
      return ExitCode.usage;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`lull ${command.name}: ${err.message}\n`);
      return ExitCode.failure;
    }
    if (err instanceof LullError) {
      process.stderr.write(`lull ${command.name}: ${err.message}\n`);
      return ExitCode.failure;
    }
    process.stderr.write(`lull ${command.name}: ${(err as Error)?.stack ?? String(err)}\n`);
    return ExitCode.failure;
  }
}

/**
 * Resolves on the first SIGINT/SIGTERM/SIGHUP (Ctrl-C, kill, terminal closed); later ones during
 * shutdown are ignored, so cleanup is never cut short.
 */
function interruption(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => resolve(signal);
    process.on("SIGINT", on);
    process.on("SIGTERM", on);
    process.on("SIGHUP", on);
  });
}

// Output may go to a pipe whose reader is gone (`lull dev 2>&1 | tee log`, Ctrl-C kills tee
// with everything else in the group): a write then fails with EPIPE. Unhandled, that error
// would crash the CLI before lull dev stops redis-server and removes .lull/dev.json. Lost
// output is the lesser harm: drop it and keep cleaning up.
let outputClosed = false;
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", () => {
    outputClosed = true;
  });
}

const code = await main(process.argv.slice(2), {
  env: process.env,
  cwd: process.cwd(),
  interrupted: interruption(),
});
// Explicit exit: open handles (a Redis socket closing, a stray timer) must not keep the CLI up.
// Exit only once stdout has drained: pipes are asynchronous on some platforms (macOS), and
// `lull dlq list --json | jq` must never see a truncated document.
if (outputClosed || process.stdout.destroyed) process.exit(code);
process.stdout.write("", () => process.exit(code));
