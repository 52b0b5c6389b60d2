/**
 * The real Supabase CLI (npm package `supabase`, pinned) on this repository's supabase/ folder:
 * it parses config.toml and `supabase db push --db-url` applies every migration to a real local
 * PostgreSQL 15 started here, twice (history kept: nothing to do; history wiped: every
 * migration runs again and must be idempotent).
 *
 * Debian's PostgreSQL lacks three things a Supabase database has; each gets a stand-in:
 * - STAND-IN pg_net: an extension `pg_net` whose `net.http_post` records the call in a table
 *   (installed into a private copy of the PostgreSQL tree, never the system's).
 * - STAND-IN Vault: schema `vault` with `create_secret` and the `decrypted_secrets` view.
 * - STAND-IN pg_cron sub-minute schedules: pg_cron 1.4 (Debian's) only takes cron syntax, so
 *   `cron.schedule` is wrapped to record an "N seconds" schedule and register it every minute.
 * Everything else (pg_cron itself, the SQL of each migration) is real.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import {
  copyFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../cli/cli-stack.ts";
import { freePort } from "../harness/redis-server.ts";

const PG = "/usr/lib/postgresql/15";
const PG_SHARE = "/usr/share/postgresql/15";
const supabaseBin = join(repoRoot, "node_modules", ".bin", "supabase");
const migrations = readdirSync(join(repoRoot, "supabase", "migrations")).filter((f) =>
  f.endsWith(".sql")
);

/** PostgreSQL refuses to run as root: when the tests are root, the server runs as nobody. */
const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};

let work: string;
let pg: ChildProcess | undefined;
let port: number;
let dbUrl: string;

/**
 * A private PostgreSQL tree: postgres finds its share and lib directories relative to its own
 * binary, so copying the two binaries next to symlinked lib/share lets the stand-in pg_net
 * extension live in this tree only.
 */
function privatePostgres(root: string): string {
  const bin = join(root, "lib", "postgresql", "15", "bin");
  mkdirSync(bin, { recursive: true });
  for (const b of ["postgres", "initdb"]) copyFileSync(join(PG, "bin", b), join(bin, b));
  symlinkSync(join(PG, "lib"), join(root, "lib", "postgresql", "15", "lib"));
  const share = join(root, "share", "postgresql", "15");
  mkdirSync(join(share, "extension"), { recursive: true });
  for (const e of readdirSync(PG_SHARE)) {
    if (e !== "extension") symlinkSync(join(PG_SHARE, e), join(share, e));
  }
  for (const e of readdirSync(join(PG_SHARE, "extension"))) {
    symlinkSync(join(PG_SHARE, "extension", e), join(share, "extension", e));
  }
  // STAND-IN pg_net: same name, same http_post signature; records instead of sending.
  writeFileSync(
    join(share, "extension", "pg_net.control"),
    "comment = 'stand-in for pg_net (lull tests)'\ndefault_version = '0.0'\nrelocatable = false\n",
  );
  writeFileSync(
    join(share, "extension", "pg_net--0.0.sql"),
    [
      "create schema if not exists net;",
      "create table net.requests (id bigserial primary key, url text, headers jsonb, body jsonb);",
      "create function net.http_post(url text, body jsonb default '{}', params jsonb default '{}',",
      "  headers jsonb default '{}', timeout_milliseconds int default 5000) returns bigint",
      "  language sql as $$ insert into net.requests (url, headers, body)",
      "  values (url, headers, body) returning id $$;",
      "",
    ].join("\n"),
  );
  return bin;
}

function psql(sql: string): string {
  return execFileSync(
    join(PG, "bin", "psql"),
    [dbUrl, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
    {
      encoding: "utf8",
    },
  ).trim();
}

function supabase(args: string[], cwd: string): { code: number; out: string } {
  const r = spawnSync(supabaseBin, args, {
    cwd,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1", SUPABASE_TELEMETRY_DISABLED: "1", DO_NOT_TRACK: "1" },
    timeout: 120_000,
  });
  return { code: r.status ?? 1, out: `${r.stdout}${r.stderr}` };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "lull-supabase-"));
  const bin = privatePostgres(join(work, "pg"));
  const data = join(work, "data");
  if ("uid" in asUser) execFileSync("chown", ["-R", "65534:65534", work]);
  execFileSync(join(bin, "initdb"), ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"], {
    stdio: "ignore",
    ...asUser,
  });
  port = await freePort();
  pg = spawn(join(bin, "postgres"), [
    "-D",
    data,
    "-p",
    String(port),
    "-k",
    work,
    "-c",
    "listen_addresses=127.0.0.1",
    "-c",
    "shared_preload_libraries=pg_cron",
    "-c",
    "cron.database_name=postgres",
  ], { stdio: "ignore", ...asUser });
  dbUrl = `postgresql://postgres@127.0.0.1:${port}/postgres?sslmode=disable`;
  for (let i = 0;; i++) {
    try {
      psql("select 1");
      break;
    } catch (e) {
      if (i > 100) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  // What a Supabase database has before any migration: Vault, and the extensions schema.
  psql(`
    create schema extensions;
    -- STAND-IN Vault
    create schema vault;
    create table vault.secrets (name text primary key, secret text not null);
    create view vault.decrypted_secrets as select name, secret as decrypted_secret from vault.secrets;
    create function vault.create_secret(secret text, name text) returns text language sql as
      $$ insert into vault.secrets values (name, secret) returning name $$;
    -- Real pg_cron 1.4, plus the STAND-IN for sub-minute schedules (pg_cron >= 1.5).
    create extension pg_cron;
    create table public.lull_test_sub_minute (jobname text primary key, schedule text);
    alter function cron.schedule(text, text, text) rename to schedule_cron_syntax;
    create function cron.schedule(job_name text, schedule text, command text) returns bigint
      language plpgsql as $$
      begin
        if schedule ~ '^\\d+ seconds?$' then
          insert into public.lull_test_sub_minute values (job_name, schedule)
            on conflict (jobname) do update set schedule = excluded.schedule;
          schedule := '* * * * *';
        end if;
        return cron.schedule_cron_syntax(job_name, schedule, command);
      end $$;
  `);
  // The project, as the CLI sees it: a copy, so the CLI's own files (.temp) stay out of the repo.
  cpSync(join(repoRoot, "supabase"), join(work, "project", "supabase"), { recursive: true });
}, 120_000);

afterAll(async () => {
  if (pg && pg.exitCode === null) {
    const exited = new Promise((r) => pg!.once("exit", r));
    pg.kill("SIGINT"); // fast shutdown
    await exited;
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("the Supabase CLI on supabase/", () => {
  it("parses config.toml (and rejects a broken one)", () => {
    const broken = join(work, "broken");
    cpSync(join(work, "project"), broken, { recursive: true });
    writeFileSync(join(broken, "supabase", "config.toml"), "[functions.lull\nverify_jwt = 1\n");
    const bad = supabase(["db", "push", "--db-url", dbUrl, "--dry-run"], broken);
    expect(bad.code).not.toBe(0);
    expect(bad.out.toLowerCase()).toMatch(/config|toml/);
    const good = supabase(["db", "push", "--db-url", dbUrl, "--dry-run"], join(work, "project"));
    expect(good.out).not.toMatch(/failed to (load|parse) config/i);
    expect(good.code).toBe(0);
    for (const m of migrations) expect(good.out).toContain(m);
  });

  it("applies every migration with db push, then finds nothing to do", () => {
    const first = supabase(["db", "push", "--db-url", dbUrl, "--yes"], join(work, "project"));
    expect(first.code, first.out).toBe(0);
    const versions = psql("select version from supabase_migrations.schema_migrations order by 1");
    expect(versions.split("\n")).toEqual(migrations.map((m) => m.split("_")[0]).sort());
    // The Cron job exists, with the sub-minute schedule the migration asked for.
    expect(psql("select jobname from cron.job")).toBe("lull-flush");
    expect(psql("select schedule from public.lull_test_sub_minute")).toBe("5 seconds");
    expect(psql("select extname from pg_extension where extname = 'pg_net'")).toBe("pg_net");
    // The job's command runs against the stand-ins: it posts to <project url>/functions/v1/lull/flush.
    psql(`select vault.create_secret('https://ref.supabase.co', 'lull_project_url');
          select vault.create_secret('cron-secret', 'lull_cron_secret');`);
    psql(`do $$ begin execute (select command from cron.job where jobname = 'lull-flush'); end $$`);
    expect(psql("select url || ' ' || (headers->>'Authorization') from net.requests")).toBe(
      "https://ref.supabase.co/functions/v1/lull/flush Bearer cron-secret",
    );
    const again = supabase(["db", "push", "--db-url", dbUrl, "--yes"], join(work, "project"));
    expect(again.code, again.out).toBe(0);
    expect(again.out).toMatch(/up to date/i);
  });

  it("re-applies every migration over itself (history wiped): each is idempotent", () => {
    psql("delete from supabase_migrations.schema_migrations");
    const r = supabase(["db", "push", "--db-url", dbUrl, "--yes"], join(work, "project"));
    expect(r.code, r.out).toBe(0);
    expect(psql("select count(*) from cron.job where jobname = 'lull-flush'")).toBe("1");
    expect(psql("select count(*) from supabase_migrations.schema_migrations")).toBe(
      String(migrations.length),
    );
  });
});
