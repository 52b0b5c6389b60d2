/**
 * Starts a private PostgreSQL on an ephemeral 127.0.0.1 port for one test file (initdb into a
 * temp dir, unix socket in that dir), and stops it and removes the dir. Never assumes 5432. If
 * initdb/postgres are missing the test FAILS: CI must not skip the outbox tests. Finding the
 * binaries and starting the server are `lull dev`'s own (src/dev/postgres-launcher.ts).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import {
  applyLullMigrations,
  findPostgresBinaries,
  launchPostgres,
} from "../../src/dev/postgres-launcher.ts";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** A running PostgreSQL owned by the caller. */
export interface PostgresServer {
  port: number;
  /** postgres://postgres@127.0.0.1:<port>/postgres (trust auth). */
  url: string;
  /** A client for assertions. */
  sql: postgres.Sql;
  /** SIGKILL the server and its backends (outage tests); `start()` brings it back. */
  kill(): Promise<void>;
  start(): Promise<void>;
  /** A new, empty database on this server; returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Applies the outbox migration to `url` (default: the server's own database). */
  migrate(url?: string): Promise<void>;
  stop(): Promise<void>;
}

/** The binaries, or a failure that says how to install them. */
function binaries() {
  const found = findPostgresBinaries();
  if (!found) {
    throw new Error(
      "PostgreSQL is not installed (no initdb/postgres on PATH or in /usr/lib/postgresql/*/bin): " +
        "the outbox tests need a real server (apt-get install -y postgresql). " +
        "They fail rather than skip.",
    );
  }
  return found;
}

/** Starts a throwaway server; with `migrate: true` (default) the outbox table exists. */
export async function startPostgresServer(
  options: { migrate?: boolean } = {},
): Promise<PostgresServer> {
  const bins = binaries();
  const dir = mkdtempSync(join(tmpdir(), "lull-pg-"));
  let launched;
  try {
    launched = await launchPostgres(bins, dir);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const pg = launched;
  const sql = postgres(pg.url, { max: 2, prepare: false, onnotice: () => {} });
  const server: PostgresServer = {
    get port() {
      return pg.port;
    },
    get url() {
      return pg.url;
    },
    sql,
    kill: () => pg.kill(),
    start: () => pg.restart(),
    async createDatabase(name) {
      await sql.unsafe(`create database "${name.replace(/"/g, "")}"`);
      return pg.url.replace(/\/postgres$/, `/${encodeURIComponent(name)}`);
    },
    migrate: (url = pg.url) => applyLullMigrations(url, repoRoot),
    async stop() {
      await sql.end({ timeout: 1 }).catch(() => {});
      await pg.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  if (options.migrate ?? true) await server.migrate();
  return server;
}
