/**
 * Finds and starts a private PostgreSQL for `lull dev` and the tests: `initdb` into a temp dir,
 * then `postgres` on a free 127.0.0.1 port with its unix socket in that dir. Debian's
 * `postgresql` package keeps the binaries off PATH, in /usr/lib/postgresql/<version>/bin, so
 * those directories are searched too (newest version first). PostgreSQL refuses to run as
 * root: when we are root, the server runs as the `postgres` system user and owns the dir.
 *
 * Also applies lull's migrations that a plain PostgreSQL can run (the outbox; not the Cron one,
 * which needs pg_cron and pg_net).
 */
import { accessSync, chownSync, constants, readdirSync, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import postgres from "postgres";
import { type ManagedChild, spawnChild, stopChild } from "./child-processes.ts";
import { freePort } from "./redis-launcher.ts";

/** The two binaries a private server needs. */
export interface PostgresBinaries {
  initdb: string;
  postgres: string;
  /** The directory they were found in. */
  dir: string;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * `initdb` and `postgres` from PATH, else from the newest /usr/lib/postgresql/<version>/bin;
 * null when neither has both.
 */
export function findPostgresBinaries(
  path: string | undefined = process.env.PATH,
  libRoot = "/usr/lib/postgresql",
): PostgresBinaries | null {
  const dirs = (path ?? "").split(delimiter).filter((d) => d !== "");
  let versions: string[] = [];
  try {
    versions = readdirSync(libRoot).filter((v) => /^\d+(\.\d+)?$/.test(v));
  } catch {
    // no Debian-style install
  }
  versions.sort((a, b) => Number(b) - Number(a));
  dirs.push(...versions.map((v) => join(libRoot, v, "bin")));
  for (const dir of dirs) {
    const initdb = join(dir, "initdb");
    const server = join(dir, "postgres");
    if (executable(initdb) && executable(server)) return { initdb, postgres: server, dir };
  }
  return null;
}

/** uid/gid to run the server as: ourselves, or the `postgres` user when we are root. */
function serverIdentity(): { uid: number; gid: number } | null {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return null;
  const passwd = readFileSync("/etc/passwd", "utf8").split("\n");
  const entry = passwd.map((l) => l.split(":")).find((f) => f[0] === "postgres");
  if (!entry) {
    throw new Error(
      "running as root, and PostgreSQL refuses root: no 'postgres' user to run it as " +
        "(install Debian's postgresql package, or run as another user)",
    );
  }
  return { uid: Number(entry[2]), gid: Number(entry[3]) };
}

/** Connects with a short timeout and runs `select 1`; resolves when the server answers. */
async function waitForPostgres(
  url: string,
  hasExited: () => boolean,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline && !hasExited()) {
    const sql = postgres(url, { max: 1, connect_timeout: 1, prepare: false, onnotice: () => {} });
    try {
      await sql`select 1`;
      await sql.end({ timeout: 1 });
      return;
    } catch (err) {
      lastError = err;
      await sql.end({ timeout: 0 }).catch(() => {});
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(
    hasExited()
      ? `postgres exited during start-up`
      : `postgres did not answer within ${timeoutMs} ms: ${lastError}`,
  );
}

/** Runs `initdb` for a throwaway cluster (trust auth on loopback, superuser `postgres`). */
async function initCluster(binaries: PostgresBinaries, dataDir: string): Promise<void> {
  const child = spawnChild("initdb", binaries.initdb, [
    "-D",
    dataDir,
    "-U",
    "postgres",
    "--auth=trust",
    "-E",
    "UTF8",
    "--locale=C",
    "--no-sync",
  ], identityOptions());
  const output: string[] = [];
  child.process.stdout?.on("data", (c: Buffer) => output.push(c.toString()));
  child.process.stderr?.on("data", (c: Buffer) => output.push(c.toString()));
  const code = await child.exited;
  if (code !== 0) throw new Error(`initdb failed (${code}):\n${output.join("").slice(-2000)}`);
}

function identityOptions(): { uid?: number; gid?: number } {
  const id = serverIdentity();
  return id ? { uid: id.uid, gid: id.gid } : {};
}

/** A PostgreSQL started by {@link launchPostgres}. */
export interface LaunchedPostgres {
  url: string;
  port: number;
  /** The cluster's data directory (inside the caller's dir). */
  dataDir: string;
  child: ManagedChild;
  /** SIGKILLs the server's whole process group (a crash, for outage tests). */
  kill(): Promise<void>;
  /** Starts the server again on the same port and data dir (after {@link kill} or stop). */
  restart(): Promise<void>;
  /** Fast shutdown (SIGTERM to the group, then SIGKILL). */
  stop(): Promise<void>;
}

/** Options of {@link launchPostgres}. */
export interface LaunchPostgresOptions {
  /** Durable writes (`fsync`). Off for throwaway servers: faster, and crash safety is moot. */
  fsync?: boolean;
  /** @default 30000 */
  startTimeoutMs?: number;
}

/**
 * Initialises a cluster in `dir`/data and starts it on a free port, its unix socket in `dir`.
 * `dir` must exist; it is handed to the server's user when we are root.
 */
export async function launchPostgres(
  binaries: PostgresBinaries,
  dir: string,
  options: LaunchPostgresOptions = {},
): Promise<LaunchedPostgres> {
  const id = serverIdentity();
  if (id) chownSync(dir, id.uid, id.gid);
  const dataDir = join(dir, "data");
  await initCluster(binaries, dataDir);

  let child: ManagedChild | undefined;
  let port = 0;
  const spawnOn = async (p: number) => {
    const c = spawnChild("postgres", binaries.postgres, [
      "-D",
      dataDir,
      "-p",
      String(p),
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      `unix_socket_directories=${dir}`,
      "-c",
      `fsync=${options.fsync ? "on" : "off"}`,
      "-c",
      "max_connections=50",
    ], identityOptions());
    c.process.stdout?.resume();
    c.process.stderr?.resume();
    child = c;
    let exited = false;
    void c.exited.then(() => {
      exited = true;
    });
    try {
      await waitForPostgres(urlFor(p), () => exited, options.startTimeoutMs ?? 30_000);
    } catch (err) {
      await stopChild(c, 500);
      throw err;
    }
  };

  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    port = await freePort();
    try {
      await spawnOn(port);
      lastError = undefined;
      break;
    } catch (err) {
      lastError = err; // the port may have been taken between probe and bind: try another
    }
  }
  if (lastError !== undefined) throw new Error(`could not start postgres: ${lastError}`);

  const killGroup = async () => {
    const c = child;
    if (!c) return;
    try {
      process.kill(-c.pid, "SIGKILL");
    } catch {
      // already gone
    }
    await c.exited;
    // The postmaster's backends are in its group; wait until none is left.
    await stopChild(c, 0);
  };

  return {
    get url() {
      return urlFor(port);
    },
    get port() {
      return port;
    },
    dataDir,
    get child() {
      return child!;
    },
    kill: killGroup,
    restart: () => spawnOn(port),
    async stop() {
      if (child) await stopChild(child, 5000);
    },
  };
}

function urlFor(port: number): string {
  return `postgres://postgres@127.0.0.1:${port}/postgres`;
}

/**
 * The outbox, wake-up and wake index migrations' SQL
 * (supabase/migrations/*_lull_{outbox,wakeup,wake_index}.sql), in file order.
 */
export function lullMigrationsSql(repoRoot: string): string {
  const dir = join(repoRoot, "supabase", "migrations");
  const files = readdirSync(dir).filter((f) => /_lull_(outbox|wakeup|wake_index)\.sql$/.test(f))
    .sort();
  if (files.length < 3) {
    throw new Error(`no *_lull_outbox.sql, *_lull_wakeup.sql and *_lull_wake_index.sql in ${dir}`);
  }
  return files.map((f) => readFileSync(join(dir, f), "utf8")).join("\n");
}

/**
 * Applies the migrations the function's database needs, the outbox, wake-up and wake index (safe
 * to run again). Not the Cron ones: pg_cron and pg_net are Supabase's; `lull dev` plays the job.
 */
export async function applyLullMigrations(url: string, repoRoot: string): Promise<void> {
  const sql = postgres(url, { max: 1, prepare: false, onnotice: () => {}, connect_timeout: 5 });
  try {
    await sql.unsafe(lullMigrationsSql(repoRoot));
  } finally {
    await sql.end({ timeout: 2 });
  }
}
