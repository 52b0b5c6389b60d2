/**
 * `npm run chaos -- --mode short|long --seed N`: lull under real process kills.
 *
 * Real parts only: several `deno` processes serve supabase/functions/lull behind one
 * redis-server (AOF, appendfsync always); a flaky processor (30% 5xx, 10% held past the
 * delivery timeout, one full outage longer than the old buffer TTL) records every delivery;
 * seeded senders post generic JSON webhooks (10% redelivered, some conversations idle past the
 * dedup TTL) spread over the isolates; a sweep driver plays Supabase Cron (POST /lull/flush).
 * Meanwhile isolates are SIGKILLed (half of the kills aimed at one with a delivery in flight)
 * and restarted, and redis-server is SIGKILLed and restarted on the same port and dir. Then a
 * drain (processor healthy, sweeps on) until every acknowledged message is delivered or in the
 * DLQ, and the checker (chaos/checker.ts) accounts by message id.
 *
 * Prints a table and a JSON summary, writes chaos/results/<mode>-<seed>.json (and -raw.json,
 * and the isolates' logs), exits 1 on any violation, 2 if the run itself failed.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { check, type CheckResult, type DeadLetterRecord, violationClasses } from "./checker.ts";
import { chaosLullEnv, type ChaosMode, type ChaosPlan, chaosPlan, chaosTimings } from "./config.ts";
import { envSchema } from "../src/core/config.ts";
import { IsolatePool, killAllChildren } from "./isolates.ts";
import { ChaosPostgres, quitAllPostgres } from "./postgres.ts";
import { applyLullMigrations } from "../src/dev/postgres-launcher.ts";
import { buildLoadPlan, type LoadResult, runLoad } from "./load.ts";
import { type ChaosProcessor, startProcessor } from "./processor.ts";
import { Prng } from "./prng.ts";
import { ChaosRedis } from "./redis.ts";

const chaosDir = dirname(fileURLToPath(import.meta.url));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Parsed command line. */
interface Args {
  mode: ChaosMode;
  seed: number;
  /** Start PostgreSQL and set LULL_DATABASE_URL (the outbox). */
  postgres: boolean;
  overrides: Partial<ChaosPlan>;
}

function parseArgs(argv: string[]): Args {
  const value = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0
      ? argv[i + 1]
      : argv.find((a) => a.startsWith(name + "="))?.slice(name.length + 1);
  };
  const mode = value("--mode") ?? "short";
  if (mode !== "short" && mode !== "long") throw new Error("--mode must be short or long");
  const seed = Number(value("--seed") ?? 1);
  if (!Number.isInteger(seed) || seed < 0) throw new Error("--seed must be a whole number >= 0");
  const overrides: Partial<ChaosPlan> = {};
  const numeric: [string, keyof ChaosPlan][] = [
    ["--isolates", "isolates"],
    ["--senders", "senders"],
    ["--conversations", "conversations"],
    ["--messages", "messages"],
    ["--load-ms", "loadMs"],
    ["--isolate-kills", "isolateKills"],
    ["--redis-kills", "redisKills"],
    ["--drain-ms", "drainTimeoutMs"],
  ];
  for (const [flag, key] of numeric) {
    const v = value(flag);
    if (v === undefined) continue;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} must be a whole number`);
    (overrides as Record<string, number>)[key] = n;
  }
  // The outbox is used once the core knows LULL_DATABASE_URL; --postgres / --no-postgres force it.
  const postgres = argv.includes("--no-postgres")
    ? false
    : argv.includes("--postgres") || "LULL_DATABASE_URL" in envSchema.shape;
  return { mode, seed, postgres, overrides };
}

/** One chaos action, as it happened. */
interface ChaosEvent {
  atMs: number;
  kind:
    | "isolate_kill"
    | "redis_kill"
    | "redis_back"
    | "outage_5xx"
    | "outage_reset"
    | "outage_end"
    | "breaker_open";
  detail?: Record<string, unknown>;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const plan = chaosPlan(args.mode, args.seed, args.overrides);
  const start = Date.now();
  const now = () => Date.now() - start;
  const say = (line: string) => console.log(`[chaos ${(now() / 1000).toFixed(1)}s] ${line}`);
  const resultsDir = join(chaosDir, "results");
  const tag = `${plan.mode}-${plan.seed}`;
  const logDir = join(resultsDir, `${tag}-logs`);
  mkdirSync(logDir, { recursive: true });

  const secret = () => randomBytes(16).toString("hex");
  const secrets = {
    ingest: secret(),
    cron: secret(),
    admin: secret(),
    processor: secret(),
    telegram: secret(),
    whatsapp: secret(),
  };
  const redis = new ChaosRedis();
  const postgres = args.postgres ? new ChaosPostgres() : undefined;
  let processor: ChaosProcessor | undefined;
  let pool: IsolatePool | undefined;
  const cleanup = async () => {
    await pool?.stop().catch(() => {});
    await processor?.close().catch(() => {});
    await redis.stop().catch(() => {});
    await postgres?.stop().catch(() => {});
  };
  const onSignal = () => {
    killAllChildren();
    quitAllPostgres();
    void Promise.all([redis.stop(), postgres?.stop()]).finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  process.once("exit", () => {
    killAllChildren();
    quitAllPostgres();
  });

  try {
    await redis.start();
    say(`redis-server ${redis.url} (appendonly yes, appendfsync always), dir ${redis.dir}`);
    if (postgres) {
      await postgres.start();
      // The function's database needs the outbox and the wake-up, as `supabase db push` gives it.
      await applyLullMigrations(postgres.url, join(chaosDir, ".."));
      say(`postgres ${postgres.url} (LULL_DATABASE_URL: the outbox and the wake-up, migrated)`);
    } else {
      say("no postgres: the core has no LULL_DATABASE_URL yet (or --no-postgres)");
    }
    processor = await startProcessor({
      rng: new Prng(plan.seed).fork(3),
      failShare: plan.processorFailShare,
      hangShare: plan.processorHangShare,
      permanentShare: plan.processorPermanentShare,
      hangCapMs: chaosTimings.lockTtlMs + 1_000,
      secret: secrets.processor,
      now,
    });
    const env: Record<string, string> = {
      ...chaosLullEnv,
      LULL_REDIS_URL: redis.url,
      LULL_INGEST_TOKEN: secrets.ingest,
      LULL_CRON_SECRET: secrets.cron,
      LULL_ADMIN_TOKEN: secrets.admin,
      LULL_PROCESSOR_SECRET: secrets.processor,
      TELEGRAM_WEBHOOK_SECRET: secrets.telegram,
      WHATSAPP_APP_SECRET: secrets.whatsapp,
      ...(postgres ? { LULL_DATABASE_URL: postgres.url } : {}),
    };
    const events: ChaosEvent[] = [];
    pool = new IsolatePool({
      count: plan.isolates,
      env,
      processorUrl: processor.url,
      logDir,
      log: say,
      onLine: (isolate, line) => {
        if (!line.includes('"circuit breaker opened"')) return;
        try {
          const { breaker } = JSON.parse(line) as { breaker?: string };
          events.push({ atMs: now(), kind: "breaker_open", detail: { isolate, breaker } });
        } catch { /* not a log line */ }
      },
    });
    await pool.start();
    const livePool = pool;
    const proc = processor;
    say(`${plan.isolates} isolates up: ${pool.slots.map((s) => s.port).join(", ")}`);
    await preflight(pool.live()[0]!.lullUrl!);

    const admin = adminClient(livePool, secrets.admin);
    const load = buildLoadPlan(plan, chaosTimings);
    say(
      `plan: ${load.messageCount} messages, ${plan.conversations} conversations ` +
        `(${load.idleConversations.length} idle past the dedup TTL), ${plan.senders} senders, ` +
        `load over ${plan.loadMs / 1000}s, seed ${plan.seed}`,
    );

    // The cron: POST /lull/flush every sweep interval on a live isolate (at most 2 at once).
    const sweepStats = { calls: 0, ok: 0, failed: 0 };
    let sweeping = true;
    let sweepsOpen = 0;
    const sweeper = (async () => {
      const rng = new Prng(plan.seed).fork(4);
      while (sweeping) {
        const live = livePool.live();
        if (live.length > 0 && sweepsOpen < 2) {
          const slot = rng.pick(live);
          sweepsOpen++;
          sweepStats.calls++;
          void fetch(`${slot.lullUrl}/flush`, {
            method: "POST",
            headers: { authorization: `Bearer ${secrets.cron}` },
            signal: AbortSignal.timeout(15_000),
          }).then(async (res) => {
            await res.body?.cancel();
            if (res.ok) sweepStats.ok++;
            else sweepStats.failed++;
          }, () => sweepStats.failed++).finally(() => sweepsOpen--);
        }
        await sleep(plan.sweepIntervalMs);
      }
    })();

    // The load and the chaos run side by side.
    const openRequests = new Map<string, number>();
    const loadStart = now();
    const loadDone = runLoad({
      plan,
      load,
      pool: livePool,
      ingestToken: secrets.ingest,
      telegramSecret: secrets.telegram,
      whatsappSecret: secrets.whatsapp,
      dedupTtlMs: chaosTimings.dedupTtlMs,
      now,
      openRequests,
    });
    const chaos = runChaos({
      plan,
      pool: livePool,
      redis,
      processor: proc,
      events,
      now,
      say,
      openRequests,
    });
    const [loaded] = await Promise.all([loadDone, chaos]);
    const loadMs = now() - loadStart;
    say(`load done in ${(loadMs / 1000).toFixed(1)}s; draining (processor healthy)`);

    // Drain: processor healthy, every slot up, sweeps on.
    proc.mode = "healthy";
    for (const s of livePool.slots) {
      if (s.lullUrl === null && s.child === null) await livePool.restart(s);
    }
    const drainStart = now();
    const drain = await drainUntilSettled(plan, loaded, proc, admin, now, say);
    const drainMs = now() - drainStart;
    sweeping = false;
    await sweeper;
    const deadLetters = await admin.deadLetters();
    const leftovers = await admin.buffers();

    const result = check({
      messages: loaded.messages,
      deliveries: proc.deliveries,
      deadLetters,
      redeliveries: loaded.redeliveries,
      maxMessages: chaosTimings.maxMessages,
    });
    const kills = events.filter((e) => e.kind === "isolate_kill");
    const breakerOpenings = (name: string) =>
      events.filter((e) => e.kind === "breaker_open" && e.detail?.breaker === name).length;
    const summary = {
      mode: plan.mode,
      seed: plan.seed,
      ok: result.ok,
      postgres: postgres !== undefined,
      timings: { totalMs: now(), loadMs, drainMs, drainOutcome: drain.outcome },
      chaos: {
        isolateKills: kills.length,
        isolateKillsWithDeliveryInFlight: kills.filter((k) => k.detail?.deliveryInFlight).length,
        isolateKillsWithIngestInFlight: kills.filter((k) => Number(k.detail?.ingestInFlight) > 0)
          .length,
        redisKills: events.filter((e) => e.kind === "redis_kill").length,
        processorOutageMs: plan.outageMs,
        oldBufferTtlMs: chaosTimings.bufferTtlMs,
        processorBreakerOpenings: breakerOpenings("processor"),
        redisBreakerOpenings: breakerOpenings("redis"),
        unexpectedIsolateExits: livePool.slots.reduce((a, s) => a + s.unexpectedExits, 0),
        processorMalformedDeliveries: proc.malformed,
      },
      load: {
        ...loaded.stats,
        idleConversationsPlanned: load.idleConversations.length,
        conversationsIdlePastDedupTtl: loaded.idlePastDedupTtl.length,
      },
      sweeps: sweepStats,
      leftoverConversationsInLull: leftovers.count,
      counts: result.counts,
      lostWhile: explainLost(result.lostMessages, events),
      violations: result.violations,
      examples: result.examples,
      events,
      plan,
      lullEnv: chaosLullEnv,
    };
    writeFileSync(join(resultsDir, `${tag}.json`), JSON.stringify(summary, null, 2) + "\n");
    writeFileSync(
      join(resultsDir, `${tag}-raw.json`),
      JSON.stringify({
        messages: loaded.messages,
        deliveries: proc.deliveries,
        deadLetters,
        redeliveries: loaded.redeliveries,
        leftovers,
      }) + "\n",
    );
    printTable(summary, result);
    console.log(
      `  lost, by what overlapped the buffer's life: ${JSON.stringify(summary.lostWhile)}`,
    );
    console.log(JSON.stringify({ ...summary, examples: undefined, events: undefined }));
    say(`wrote chaos/results/${tag}.json (isolate logs in chaos/results/${tag}-logs/)`);
    if (!result.ok) {
      console.error(`\nCHAOS FOUND VIOLATIONS (mode ${plan.mode}, seed ${plan.seed})`);
      return 1;
    }
    console.log(`\nchaos passed (mode ${plan.mode}, seed ${plan.seed})`);
    return 0;
  } finally {
    await cleanup();
  }
}

/**
 * A heuristic for the report: what was going on while each lost message sat in its buffer
 * (from its 2xx to the old buffer TTL after it). The first match wins: the processor outage, a
 * Redis kill, a processor breaker open on some isolate (10 s), else nothing seen.
 */
function explainLost(
  lost: { ackAt?: number }[],
  events: ChaosEvent[],
): Record<string, number> {
  const windows: { what: string; from: number; to: number }[] = [];
  const at = (kind: ChaosEvent["kind"]) => events.filter((e) => e.kind === kind).map((e) => e.atMs);
  const outageStart = at("outage_5xx")[0];
  const outageEnd = at("outage_end")[0];
  if (outageStart !== undefined) {
    windows.push({ what: "processor outage", from: outageStart, to: outageEnd ?? Infinity });
  }
  const backs = at("redis_back");
  at("redis_kill").forEach((k, i) => {
    windows.push({ what: "redis down", from: k, to: backs[i] ?? Infinity });
  });
  for (const e of events) {
    if (e.kind === "breaker_open" && e.detail?.breaker === "processor") {
      windows.push({ what: "processor breaker open", from: e.atMs, to: e.atMs + 10_000 });
    }
  }
  const out: Record<string, number> = {};
  for (const m of lost) {
    const from = m.ackAt ?? 0;
    const to = from + chaosTimings.bufferTtlMs;
    const hit = windows.find((w) => w.from <= to && w.to >= from)?.what ?? "nothing seen";
    out[hit] = (out[hit] ?? 0) + 1;
  }
  return out;
}

/** Fails fast with lull's own message when the chaos config is rejected. */
async function preflight(lullUrl: string): Promise<void> {
  const res = await fetch(`${lullUrl}/health`, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  if (res.status === 500) throw new Error(`lull refused the chaos configuration: ${text}`);
}

/** Reads the DLQ and the open buffers through the admin API of a live isolate. */
function adminClient(pool: IsolatePool, token: string) {
  const get = async (path: string): Promise<unknown> => {
    let last: unknown;
    for (let attempt = 0; attempt < 10; attempt++) {
      const live = pool.live();
      const slot = live[attempt % Math.max(1, live.length)];
      if (!slot) {
        await sleep(200);
        continue;
      }
      try {
        const res = await fetch(`${slot.lullUrl}/admin${path}`, {
          headers: { authorization: `Bearer ${token}` },
          signal: AbortSignal.timeout(10_000),
        });
        const json = await res.json();
        if (res.ok) return json;
        last = new Error(`GET ${path}: ${res.status} ${JSON.stringify(json)}`);
      } catch (err) {
        last = err;
      }
      await sleep(200);
    }
    throw last;
  };
  const cache = new Map<string, DeadLetterRecord>();
  return {
    /** Every dead letter with its message ids (details fetched once per batchId). */
    async deadLetters(): Promise<DeadLetterRecord[]> {
      const list = await get("/dlq?limit=1000") as { deadLetters: { batchId: string }[] };
      if (list.deadLetters.length >= 1000) {
        throw new Error("the DLQ holds 1000 or more batches: the chaos run cannot read it all");
      }
      for (const { batchId } of list.deadLetters) {
        if (cache.has(batchId)) continue;
        const d = await get(`/dlq/${encodeURIComponent(batchId)}`) as {
          batchId: string;
          conversation: string;
          fence: number;
          attempts: number;
          lastError: string;
          messages: { id: string }[];
        };
        cache.set(batchId, {
          batchId: d.batchId,
          conversation: d.conversation,
          fence: d.fence,
          attempts: d.attempts,
          lastError: d.lastError,
          ids: d.messages.map((m) => m.id),
        });
      }
      const present = new Set(list.deadLetters.map((d) => d.batchId));
      return [...cache.values()].filter((d) => present.has(d.batchId));
    },
    /** Conversations lull still holds something for (open buffer or outstanding batch). */
    async buffers(): Promise<{ count: number; sample: unknown[] }> {
      const b = await get("/buffers?limit=1000") as { buffers: unknown[]; count: number };
      return { count: b.count, sample: b.buffers.slice(0, 10) };
    },
  };
}

/** Waits until every acknowledged message is delivered or dead, lull holds nothing, or timeout. */
async function drainUntilSettled(
  plan: ChaosPlan,
  loaded: LoadResult,
  proc: ChaosProcessor,
  admin: ReturnType<typeof adminClient>,
  now: () => number,
  say: (line: string) => void,
): Promise<{ outcome: string }> {
  const deadline = now() + plan.drainTimeoutMs;
  const acked = loaded.messages.filter((m) => m.acked).map((m) => m.id);
  let emptyRounds = 0;
  for (let round = 0; now() < deadline; round++) {
    await sleep(1_000);
    const delivered = new Set<string>();
    for (const d of proc.deliveries) {
      if (typeof d.answer === "number" && d.answer < 300) {
        for (const id of d.ids) delivered.add(id);
      }
    }
    let missing = acked.filter((id) => !delivered.has(id));
    if (missing.length === 0) return { outcome: "all acknowledged messages delivered" };
    try {
      const dead = new Set((await admin.deadLetters()).flatMap((d) => d.ids));
      missing = missing.filter((id) => !dead.has(id));
      if (missing.length === 0) return { outcome: "all acknowledged messages delivered or dead" };
      const held = await admin.buffers();
      emptyRounds = held.count === 0 && proc.inFlight().length === 0 ? emptyRounds + 1 : 0;
      if (round % 5 === 0) {
        say(
          `drain: ${missing.length} acknowledged messages not yet delivered; lull holds ${held.count} conversations`,
        );
      }
      if (emptyRounds >= 4) {
        return { outcome: `lull holds nothing, ${missing.length} acknowledged messages missing` };
      }
    } catch (err) {
      say(`drain: admin read failed (${String(err)})`);
    }
  }
  return { outcome: "drain timeout" };
}

/** Options of {@link runChaos}. */
interface ChaosOptions {
  plan: ChaosPlan;
  pool: IsolatePool;
  redis: ChaosRedis;
  processor: ChaosProcessor;
  events: ChaosEvent[];
  now: () => number;
  say: (line: string) => void;
  openRequests: Map<string, number>;
}

/** Plays the seeded kill/outage timeline over the load phase. */
async function runChaos(o: ChaosOptions): Promise<void> {
  const { plan, pool } = o;
  const rng = new Prng(plan.seed).fork(2);
  const span = plan.loadMs - 4_000;
  type Planned = { at: number; run: () => Promise<void> };
  const timeline: Planned[] = [];
  const restarts = new Set<Promise<void>>();

  for (let i = 0; i < plan.isolateKills; i++) {
    const at = 2_000 + rng.int(0, span);
    const aimInFlight = i % 2 === 0;
    const downMs = rng.int(200, 1_500);
    const pickRng = rng.fork(100 + i);
    timeline.push({
      at,
      run: async () => {
        // Aimed kills wait (up to 3 s) for an isolate with a delivery in flight.
        let target = undefined as ReturnType<IsolatePool["byName"]>;
        if (aimInFlight) {
          for (let w = 0; w < 60 && !target; w++) {
            const names = o.processor.inFlight();
            if (names.length > 0) target = pool.byName(pickRng.pick(names.sort()));
            if (!target) await sleep(50);
          }
        }
        // Never the last isolate at random (an aimed kill of a delivering one is fine): wait
        // (bounded) for a restart instead of skipping, so the kill count is reached.
        for (let w = 0; w < 100 && !target && pool.live().length <= 1; w++) await sleep(50);
        const live = pool.live();
        if (!target) {
          if (live.length === 0) return void o.say("isolate kill skipped: no isolate up");
          target = pickRng.pick(live);
        }
        const name = target.name;
        const deliveryInFlight = o.processor.inFlight().includes(name);
        const ingestInFlight = o.openRequests.get(name) ?? 0;
        await pool.kill(target);
        o.events.push({
          atMs: o.now(),
          kind: "isolate_kill",
          detail: { isolate: name, aimed: aimInFlight, deliveryInFlight, ingestInFlight, downMs },
        });
        o.say(
          `SIGKILL isolate ${name} (delivery in flight: ${deliveryInFlight}, ` +
            `ingest requests open: ${ingestInFlight}); back in ${downMs} ms`,
        );
        const slot = target;
        const p = sleep(downMs).then(() => pool.restart(slot));
        restarts.add(p);
        void p.finally(() => restarts.delete(p));
      },
    });
  }
  for (let i = 0; i < plan.redisKills; i++) {
    const at = Math.floor(((i + 1) / (plan.redisKills + 1)) * plan.loadMs * 0.9) +
      rng.int(-1_500, 1_500);
    const downMs = rng.int(1_000, 3_000);
    timeline.push({
      at,
      run: async () => {
        await o.redis.kill();
        o.events.push({ atMs: o.now(), kind: "redis_kill", detail: { downMs } });
        o.say(`SIGKILL redis-server; back in ${downMs} ms`);
        await sleep(downMs);
        await o.redis.restart();
        o.events.push({ atMs: o.now(), kind: "redis_back" });
        o.say("redis-server restarted (same port, same AOF dir)");
      },
    });
  }
  {
    // One full processor outage, longer than the old buffer TTL: 5xx, then connections dropped.
    const at = Math.floor(plan.loadMs * 0.45);
    timeline.push({
      at,
      run: async () => {
        o.processor.mode = "outage5xx";
        o.events.push({ atMs: o.now(), kind: "outage_5xx" });
        o.say(`processor outage: every delivery 503 (${plan.outageMs} ms in all)`);
        await sleep(Math.floor(plan.outageMs * 0.6));
        o.processor.mode = "outageReset";
        o.events.push({ atMs: o.now(), kind: "outage_reset" });
        o.say("processor outage: every connection dropped");
        await sleep(Math.ceil(plan.outageMs * 0.4));
        o.processor.mode = "flaky";
        o.events.push({ atMs: o.now(), kind: "outage_end" });
        o.say("processor outage over (flaky again)");
      },
    });
  }
  timeline.sort((a, b) => a.at - b.at);
  const running: Promise<void>[] = [];
  for (const ev of timeline) {
    const wait = ev.at - o.now();
    if (wait > 0) await sleep(wait);
    running.push(ev.run().catch((err) => o.say(`chaos action failed: ${String(err)}`)));
  }
  await Promise.all(running);
  while (restarts.size > 0) await Promise.all([...restarts]);
}

function printTable(
  summary: {
    mode: string;
    seed: number;
    timings: Record<string, unknown>;
    chaos: Record<string, unknown>;
    load: Record<string, unknown>;
    sweeps: Record<string, unknown>;
    leftoverConversationsInLull: number;
  },
  result: CheckResult,
): void {
  const rows: [string, unknown][] = [
    ["mode / seed", `${summary.mode} / ${summary.seed}`],
    ...Object.entries(summary.timings),
    ...Object.entries(summary.chaos),
    ...Object.entries(summary.load).map(([k, v]) =>
      [k, typeof v === "object" ? JSON.stringify(v) : v] as [string, unknown]
    ),
    ["sweeps", JSON.stringify(summary.sweeps)],
    ["leftoverConversationsInLull", summary.leftoverConversationsInLull],
    ...Object.entries(result.counts),
  ];
  const width = Math.max(...rows.map(([k]) => k.length), ...violationClasses.map((c) => c.length));
  console.log("\n== chaos accounting");
  for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${String(v)}`);
  console.log("== violations");
  for (const c of violationClasses) {
    const n = result.violations[c];
    console.log(`  ${c.padEnd(width)}  ${n}${n > 0 ? "   <-- VIOLATION" : ""}`);
    if (n > 0) console.log(`    e.g. ${JSON.stringify(result.examples[c].slice(0, 3))}`);
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error("chaos run failed:", error);
    killAllChildren();
    quitAllPostgres();
    process.exit(2);
  },
);
