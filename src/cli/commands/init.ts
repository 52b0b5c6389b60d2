/**
 * `lull init`: adds lull to an existing Supabase project. Writes the function (an index.ts that
 * imports the package through its own import map, so nothing outside supabase/functions is
 * needed to bundle or deploy it), the config.toml section, and every lull migration the package
 * ships; prints the `supabase secrets set` lines. Checks everything before writing anything:
 * files already identical are left alone (re-running is a no-op), files that differ are named
 * and nothing is written.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseCommandArgs } from "../args.ts";
import { CommandError, UsageError } from "../cli-errors.ts";
import { type Command, out, outJson } from "../command.ts";

const help = `lull init — add lull to the Supabase project in this directory

Usage: lull init [--dir <project>] [--json]

Writes (nothing else is touched):
  supabase/functions/lull/index.ts    the function: Deno.serve(createLullFunction().handler)
  supabase/functions/lull/deno.json   its import map: "lull" -> npm:lull@<this version>
  supabase/config.toml                a [functions.lull] section (verify_jwt = false)
  supabase/migrations/*lull*.sql      the Supabase Cron sweep (and every other lull migration)
and prints the \`supabase secrets set\` lines, with freshly generated secrets, for every variable.

Safe to re-run: identical files are left alone. A file that exists with other content is never
overwritten: init names it and writes nothing (move it away or merge it by hand).

Options:
  --dir <path>  the project root (the directory holding supabase/config.toml; default: here)
  --json        print what was done as one JSON object
  -h, --help    this help

Exit codes: 0 done (or nothing to do), 1 a file differs or no Supabase project, 2 usage error.`;

/** The package root: this file is src/cli/commands/init.ts (or dist/cli/commands/init.js). */
const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** One file init wants in the project. */
interface PlannedFile {
  /** Relative to the project root. */
  path: string;
  content: string;
  /** How an existing file is judged: whole content, or "the section is there". */
  mode: "exact" | "append-section";
}

/** What happened to one planned file. */
type FileOutcome = "created" | "unchanged" | "appended" | "conflict";

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

/** The migrations the package ships: every `supabase/migrations/*lull*.sql`, sorted. */
export function shippedMigrations(root = packageRoot): string[] {
  const dir = join(root, "supabase", "migrations");
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => /lull/.test(f) && f.endsWith(".sql")).sort();
}

/** The files `lull init` writes, with their content. */
export function plannedFiles(version: string = packageVersion()): PlannedFile[] {
  const template = (name: string) =>
    readFileSync(join(packageRoot, "templates", "function", name), "utf8");
  const importMap = {
    imports: {
      "lull": `npm:lull@${version}`,
      "lull/supabase": `npm:lull@${version}/supabase`,
    },
  };
  return [
    { path: "supabase/functions/lull/index.ts", content: template("index.ts"), mode: "exact" },
    {
      path: "supabase/functions/lull/deno.json",
      content: JSON.stringify(importMap, null, 2) + "\n",
      mode: "exact",
    },
    { path: "supabase/config.toml", content: template("config.toml"), mode: "append-section" },
    ...shippedMigrations().map((f) => ({
      path: `supabase/migrations/${f}`,
      content: readFileSync(join(packageRoot, "supabase", "migrations", f), "utf8"),
      mode: "exact" as const,
    })),
  ];
}

/** Judges one planned file against the project, without writing. */
function judge(root: string, file: PlannedFile): { outcome: FileOutcome; why?: string } {
  const path = join(root, file.path);
  if (!existsSync(path)) return { outcome: "created" };
  const current = readFileSync(path, "utf8");
  if (file.mode === "exact") {
    return current === file.content
      ? { outcome: "unchanged" }
      : { outcome: "conflict", why: "exists with other content" };
  }
  const section = /^\[functions\.lull\]\s*$/m.exec(current);
  if (!section) return { outcome: "appended" };
  // The section's body runs to the next [table] header.
  const body = current.slice(section.index + section[0].length).split(/^\[/m)[0] ?? "";
  return /^\s*verify_jwt\s*=\s*false\s*$/m.test(body) ? { outcome: "unchanged" } : {
    outcome: "conflict",
    why: "has a [functions.lull] section without verify_jwt = false (webhooks carry no JWT)",
  };
}

const secret = (bytes = 24) => randomBytes(bytes).toString("base64url");

/** The `supabase secrets set` lines: generated secrets, then each variable to fill in. */
export function secretsLines(): string[] {
  const generated = [
    ["LULL_INGEST_TOKEN", secret()],
    ["LULL_ADMIN_TOKEN", secret()],
    ["LULL_CRON_SECRET", secret()],
    ["LULL_PROCESSOR_SECRET", secret(32)],
    ["WHATSAPP_VERIFY_TOKEN", secret(16)],
    ["TELEGRAM_WEBHOOK_SECRET", secret()],
  ];
  const yours = [
    ["UPSTASH_REDIS_REST_URL", "https://<your-db>.upstash.io"],
    ["UPSTASH_REDIS_REST_TOKEN", "<Upstash REST token>"],
    ["LULL_PROCESSOR_URL", "https://<your processor>/batches"],
    ["LULL_PUBLIC_URL", "https://<project-ref>.supabase.co/functions/v1/lull"],
    ["WHATSAPP_APP_SECRET", "<Meta app secret>"],
    ["TWILIO_AUTH_TOKEN", "<Twilio auth token>"],
  ];
  return [
    `supabase secrets set ${generated.map(([k, v]) => `${k}=${v}`).join(" ")}`,
    ...yours.map(([k, v]) => `supabase secrets set ${k}="${v}"`),
  ];
}

/** `lull init`. */
export const initCommand: Command = {
  name: "init",
  summary: "add lull to an existing Supabase project (function, config, migrations, secrets)",
  help,
  run(args, ctx) {
    const { values, positionals } = parseCommandArgs("init", args, {
      dir: { type: "string" },
    });
    if (positionals.length > 0) {
      throw new UsageError(`unexpected argument '${positionals[0]}'`, "init");
    }
    const root = resolve(ctx.cwd, values.dir ?? ".");
    if (!existsSync(join(root, "supabase", "config.toml"))) {
      throw new CommandError(
        "no_supabase_project",
        `no supabase/config.toml in ${root}: run \`supabase init\` there first, or pass ` +
          "--dir <project root>.",
      );
    }
    const plan = plannedFiles();
    const judged = plan.map((file) => ({ file, ...judge(root, file) }));
    const conflicts = judged.filter((j) => j.outcome === "conflict");
    if (conflicts.length > 0) {
      const lines = conflicts.map((c) => `  ${c.file.path}: ${c.why}`);
      throw new CommandError(
        "init_conflict",
        `nothing written; these files differ from what lull init writes:\n${lines.join("\n")}\n` +
          "Move them away (or merge them by hand) and run lull init again.",
        { files: conflicts.map((c) => c.file.path) },
      );
    }
    for (const j of judged) {
      const path = join(root, j.file.path);
      if (j.outcome === "created") {
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, j.file.content);
      } else if (j.outcome === "appended") {
        const current = readFileSync(path, "utf8");
        writeFileSync(path, current.replace(/\n*$/, "\n") + j.file.content);
      }
    }
    const secrets = secretsLines();
    if (values.json === true) {
      outJson({
        root,
        files: judged.map((j) => ({ path: j.file.path, outcome: j.outcome })),
        secrets,
      });
      return Promise.resolve(0);
    }
    out(`lull init in ${relative(ctx.cwd, root) || "."}:`);
    for (const j of judged) out(`  ${j.outcome.padEnd(9)} ${j.file.path}`);
    out();
    out("Next:");
    out("  1. Set the secrets (values generated now; fill in the <...> ones):");
    for (const line of secrets) out(`     ${line}`);
    out("  2. Store the two values the Cron migration reads, in the SQL editor:");
    out(
      "     select vault.create_secret('https://<project-ref>.supabase.co', 'lull_project_url');",
    );
    out("     select vault.create_secret('<LULL_CRON_SECRET>', 'lull_cron_secret');");
    out("  3. supabase db push && supabase functions deploy lull --no-verify-jwt");
    out("  4. Check that Cron fires: select * from cron.job_run_details order by start_time desc");
    out("     limit 5;   (a row every few seconds, status succeeded)");
    return Promise.resolve(0);
  },
};
