/**
 * `lull dev`: starts the local stack (src/dev/dev-stack.ts), prints where everything is, runs
 * the demo, prints each batch, and on Ctrl-C stops everything it started.
 */
import { formatBatch, parseBatchLine } from "../batch-printer.ts";
import { demoSteps, runDemo } from "../../dev/demo.ts";
import {
  type DevStack,
  DevStackAbortedError,
  PortInUseError,
  startDevStack,
} from "../../dev/dev-stack.ts";
import { ConfigError } from "../../core/errors.ts";
import { RedisUnreachableError } from "../../dev/redis-probe.ts";
import { devStatePath, readDevState, reapStaleDevState } from "../../dev/dev-state.ts";
import { intOption, parseCommandArgs } from "../args.ts";
import { UsageError } from "../cli-errors.ts";
import { type Command, err, out, outJson } from "../command.ts";
import { palette, withProgress } from "../terminal.ts";
import { shellExports } from "./env.ts";

const help = `lull dev — run lull locally, wired as it is deployed

Usage: lull dev [--port <n>] [--no-demo] [--verbose] [--json]

Starts, and stops again on Ctrl-C (SIGINT/SIGTERM), leaving no process or temp dir behind:
  - Redis: LULL_REDIS_URL or UPSTASH_REDIS_REST_URL/_TOKEN when set; otherwise a private
    redis-server on a free port; if redis-server is not installed, the in-memory store inside
    the functions process (not durable, lost on exit; the other lull commands then read it
    through the admin API).
  - the Upstash-compatible REST gateway in front of TCP Redis (the functions use it through
    UPSTASH_REDIS_REST_URL, as deployed),
  - the functions, served by Deno at http://127.0.0.1:<port>/functions/v1/<name>,
  - the example processor lull-processor, which prints each batch here
    (LULL_PROCESSOR_URL, when set, replaces it),
  - Supabase Cron, played locally: POST /lull/flush every LULL_SWEEP_INTERVAL_MS,
  - a short demo: simulated chats send bursts through the webhook routes.
On a Redis it did not start (LULL_REDIS_URL / UPSTASH_*), dev never runs the demo and never
flushes into the example processor: with LULL_PROCESSOR_URL (or _FUNCTION) set it flushes into
that processor; without, it is read-only (the dashboard, tail, buffers and dlq list work; the
webhook, flush and requeue routes answer 503 and no sweep runs), and the banner says so.
Texts and conversation keys are shown unmasked (LULL_LOG_PII=true: it is your test data);
set LULL_LOG_PII=false to see what a deployment logs.
Secrets are generated per run (values you set in the environment are kept) and written with
the URLs to .lull/dev.json, which the other lull commands read. Every LULL_* variable you set
is passed to the functions.

Options:
  --port <n>    port of the functions server (default 54321)
  --no-demo     do not send the demo bursts
  --verbose     also print the functions' info/debug log lines
  --json        machine-readable output: one JSON object per line
                ({"event":"ready",...}, {"event":"batch",...}, {"event":"demo",...})
  -h, --help    this help

Exit codes: 0 stopped by Ctrl-C/SIGTERM, 1 failed to start or a child died, 2 usage error.`;

/** Prints the start-up banner: store, URLs, secrets, copy-paste examples. */
function printBanner(stack: DevStack): void {
  const p = palette();
  const s = stack.state;
  const c = stack.config;
  out();
  out(p.bold("lull dev") + p.dim(" — the whole stack on this machine, wired like production"));
  out();
  if (s.store === "memory") {
    const bar = p.red("!".repeat(78));
    out(bar);
    out(p.red(p.bold("  NO REDIS: using the in-memory store.")));
    out(p.red("  redis-server is not installed and neither LULL_REDIS_URL nor UPSTASH_* is set."));
    out(p.red("  The buffers live inside the functions process: nothing is durable and"));
    out(p.red("  everything is lost when lull dev stops. `lull tail/buffers/stats/dlq` read it"));
    out(p.red("  through the function's admin API instead of Redis."));
    out(p.red("  Install redis-server (apt-get install redis-server / brew install redis)"));
    out(p.red("  or set LULL_REDIS_URL, then restart."));
    out(bar);
    out();
  }
  const storeLine = {
    "redis-server": `private redis-server at ${s.redisUrl} (temp dir, removed on exit)`,
    redis: `your Redis at ${s.redisUrl} (LULL_REDIS_URL)`,
    upstash: `Upstash at ${stack.state.env.UPSTASH_REDIS_REST_URL} (UPSTASH_REDIS_REST_URL)`,
    memory: p.red("in-memory store inside the functions process (not durable)"),
  }[s.store];
  if (s.readOnly) {
    const bar = p.yellow("!".repeat(78));
    out(bar);
    out(
      p.yellow(
        p.bold("  READ-ONLY: this Redis was not started by lull dev and may hold real data."),
      ),
    );
    out(p.yellow("  No demo, no sweeps, no flushing: webhooks, flush and requeue answer 503."));
    out(p.yellow("  Set LULL_PROCESSOR_URL to your processor to buffer and flush into it."));
    out(bar);
    out();
  } else if (s.external) {
    out(p.yellow(`  Your own Redis: no demo; batches go to your processor ${s.processorUrl}.`));
    out();
  }
  out(`  ${p.bold("store")}      ${storeLine}`);
  if (s.gatewayUrl) out(`             via the Upstash-compatible gateway ${s.gatewayUrl}`);
  if (s.outbox === "off" && s.store !== "memory") {
    const bar = p.yellow("!".repeat(78));
    out(bar);
    out(p.yellow(p.bold("  OUTBOX OFF: no Postgres for the durable outbox.")));
    out(
      p.yellow("  initdb/postgres are not installed and LULL_DATABASE_URL is not set. While Redis"),
    );
    out(
      p.yellow("  is down, messages are delivered directly (degraded, may duplicate) or get 503."),
    );
    out(p.yellow("  Install PostgreSQL (apt-get install postgresql) or set LULL_DATABASE_URL."));
    out(bar);
  }
  const outboxLine = {
    postgres: `private PostgreSQL at ${s.databaseUrl} (temp dir, removed on exit)`,
    "database-url": `your Postgres (LULL_DATABASE_URL / SUPABASE_DB_URL)`,
    off: p.yellow("off (no Postgres)"),
  }[s.outbox ?? "off"];
  out(`  ${p.bold("outbox")}     ${outboxLine}`);
  out(`  ${p.bold("functions")}  ${s.lullUrl}`);
  out(`             ${s.functionsUrl}/lull-processor (example processor)`);
  out(`  ${p.bold("processor")}  ${s.processorUrl ?? "none (read-only)"}`);
  out(
    `  ${p.bold("pii")}        ${
      c.logPii
        ? "shown (LULL_LOG_PII=true: your test data; deployed, the default masks it)"
        : "masked (LULL_LOG_PII=false)"
    }`,
  );
  out(`  ${p.bold("dashboard")}  ${s.lullUrl}/admin (sign in with LULL_ADMIN_TOKEN)`);
  out(`  ${p.bold("cron")}       POST /lull/flush every ${c.sweepIntervalMs} ms`);
  out(
    `  ${p.bold("flush")}      after ${c.windowMs} ms quiet + ${c.graceMs} ms grace, ` +
      `at most ${c.maxWaitMs} ms after the first message`,
  );
  out();
  out(p.bold("  Local secrets (generated for this run; also in .lull/dev.json):"));
  const secretRows: [string, string][] = [
    ["LULL_INGEST_TOKEN", s.secrets.ingestToken],
    ["LULL_ADMIN_TOKEN", s.secrets.adminToken],
    ["LULL_CRON_SECRET", s.secrets.cronSecret],
    ["LULL_PROCESSOR_SECRET", s.secrets.processorSecret],
    ["WHATSAPP_APP_SECRET", s.secrets.whatsappAppSecret],
    ["WHATSAPP_VERIFY_TOKEN", s.secrets.whatsappVerifyToken],
    ["TELEGRAM_WEBHOOK_SECRET", s.secrets.telegramWebhookSecret],
    ["TWILIO_AUTH_TOKEN", s.secrets.twilioAuthToken],
  ];
  for (const [k, v] of secretRows) out(`    ${k.padEnd(24)} ${v}`);
  out();
  out(p.bold("  Try it (in another terminal, in this directory):"));
  out(p.dim("    # load the URL and tokens into your shell:"));
  out(`    eval "$(npx lull env)"`);
  out(p.dim("    # or paste:"));
  for (const line of shellExports(s)) out(`    ${line}`);
  out(`    curl -sS -X POST "$LULL_URL/messages" -H "Authorization: Bearer $LULL_INGEST_TOKEN" \\`);
  out(`      -H "Content-Type: application/json" \\`);
  out(`      -d '{"conversation":"support:42","id":"m-1","text":"hi"}'`);
  out(`    curl -sS "$LULL_URL/health"`);
  out(`    npx lull send --conversation support:42 "and another thing"`);
  out(`    npx lull tail           # live buffer events`);
  out(`    npx lull flush          # flush every buffer now`);
  out();
  out(p.dim(`  state: ${devStatePath()}   stop: Ctrl-C`));
  out();
}

/** `lull dev`. */
export const devCommand: Command = {
  name: "dev",
  summary: "run the whole stack locally (Redis, gateway, functions, processor, cron, demo)",
  help,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs("dev", args, {
      port: { type: "string" },
      "no-demo": { type: "boolean" },
      verbose: { type: "boolean" },
    });
    if (positionals.length > 0) {
      throw new UsageError(`unexpected argument '${positionals[0]}'`, "dev");
    }
    const port = intOption("dev", "port", values.port, 54321);
    if (port > 65535) throw new UsageError("--port must be at most 65535", "dev");
    const json = values.json === true;
    const p = palette();

    let childDied: (why: string) => void = () => {};
    const died = new Promise<string>((resolve) => {
      childDied = resolve;
    });
    let lastSweepError = "";

    const onFunctionsLine = (line: string, stream: "stdout" | "stderr") => {
      const batch = parseBatchLine(line);
      if (batch) {
        if (json) outJson({ event: "batch", ...batch });
        else out(formatBatch(batch, p) + "\n");
        return;
      }
      if (json) {
        outJson({ event: "log", stream, line });
        return;
      }
      // JSON logs: warnings and errors always, the rest with --verbose; plain text always
      // (Deno's own errors are plain text).
      let level = "";
      try {
        level = String(JSON.parse(line).level ?? "");
      } catch {
        level = "";
      }
      if (level === "" || level === "warn" || level === "error" || values.verbose) {
        const tag = level === "error" || stream === "stderr"
          ? p.red("functions")
          : p.dim("functions");
        out(`${tag} ${line}`);
      }
    };

    const running = readDevState(ctx.cwd);
    if (running) {
      err(
        `lull dev: another lull dev (pid ${running.pid}) is running in this directory ` +
          `(${running.lullUrl}); stop it first`,
      );
      return 1;
    }
    const reaped = reapStaleDevState(ctx.cwd);
    if (reaped.length > 0) {
      err(p.yellow(`lull dev: stopped leftovers of a killed lull dev: ${reaped.join(", ")}`));
    }
    const startAbort = new AbortController();
    void ctx.interrupted.then(() => startAbort.abort());
    let stack: DevStack;
    try {
      stack = await withProgress(
        "starting Redis and the functions (Deno compiles on the first run)",
        () =>
          startDevStack({
            port,
            env: ctx.env,
            cwd: ctx.cwd,
            signal: startAbort.signal,
            onFunctionsLine,
            onChildExit: (name, code) => childDied(`${name} exited unexpectedly (${code})`),
            onSweepError: (detail) => {
              // Say it once per distinct error: a down processor must not flood the terminal.
              if (detail === lastSweepError) return;
              lastSweepError = detail;
              if (json) outJson({ event: "sweep_error", detail });
              else err(p.yellow(`cron: ${detail}`));
            },
          }),
      );
    } catch (e) {
      if (e instanceof DevStackAbortedError) {
        err("lull dev: interrupted during start-up; everything started was stopped");
        return 0;
      }
      if (e instanceof ConfigError || e instanceof RedisUnreachableError) {
        err(`lull dev: ${e.message}`);
        return 1;
      }
      if (e instanceof PortInUseError) {
        err(`lull dev: port ${port} is in use; pick another with --port <n>`);
        return 1;
      }
      const message = (e as Error).message;
      if (/EADDRINUSE|address already in use|AddrInUse/i.test(message)) {
        err(`lull dev: port ${port} is in use; pick another with --port <n>`);
      } else err(`lull dev: could not start: ${message}`);
      return 1;
    }

    if (json) {
      const { env: _env, ...rest } = stack.state;
      outJson({ event: "ready", ...rest });
      if (stack.state.outbox === "off" && stack.state.store !== "memory") {
        outJson({
          event: "warning",
          message: "outbox off: no initdb/postgres installed and no LULL_DATABASE_URL; while " +
            "Redis is down messages are delivered directly (degraded, may duplicate) or get 503",
        });
      }
      if (stack.state.store === "memory") {
        outJson({
          event: "warning",
          message: "no Redis: in-memory store inside the functions process; not durable, " +
            "lost on exit; the CLI reads it through the admin API",
        });
      }
    } else printBanner(stack);

    const demoAbort = new AbortController();
    // Never on a Redis dev did not start: the demo's messages would land in someone's data.
    if (values["no-demo"] !== true && !stack.state.external) {
      const steps = demoSteps(stack.state.lullUrl, stack.publicUrl, stack.state.secrets);
      if (!json) out(p.bold(`demo: ${steps.length} messages from 4 chats, bursting…`));
      void runDemo(steps, (line) => {
        if (json) outJson({ event: "demo", ...line });
        else {
          const ok = typeof line.status === "number" && line.status < 300;
          out(
            `  ${p.dim("→")} ${line.chat.padEnd(28)} ${JSON.stringify(line.text).padEnd(30)} ${
              ok ? p.green(String(line.status)) : p.red(String(line.status))
            }`,
          );
        }
      }, demoAbort.signal).then((accepted) => {
        if (json || demoAbort.signal.aborted) return;
        out(
          p.bold(
            `demo: ${accepted}/${steps.length} accepted; each chat flushes as one batch after ` +
              `${stack.config.windowMs + stack.config.graceMs} ms of quiet`,
          ) + "\n",
        );
      });
    }

    const outcome = await Promise.race([
      ctx.interrupted.then((signal) => ({ signal })),
      died.then((why) => ({ why })),
    ]);
    demoAbort.abort();
    if ("why" in outcome) err(p.red(`lull dev: ${outcome.why}; stopping`));
    else if (!json) err(p.dim(`\n${outcome.signal}: stopping…`));
    await stack.stop();
    if (json) outJson({ event: "stopped" });
    else if (!("why" in outcome)) err(p.dim("stopped; nothing left running."));
    return "why" in outcome ? 1 : 0;
  },
};
