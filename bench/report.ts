/**
 * Renders one bench run (bench/run.ts) as docs/BENCHMARKS.md and a self-contained SVG bar chart
 * (medians as bars, min–max as whiskers, goals as marks). No chart library: plain SVG text.
 */
import { relative } from "node:path";
import type { BenchReport, RunReport } from "./run.ts";
import { type Spread, spread } from "./lib.ts";
import type { HttpResult } from "./http-bench.ts";
import type { MemoryCost } from "./redis-bench.ts";

const f = (s: Spread, d = 2) => `${s.median.toFixed(d)} (${s.min.toFixed(d)}–${s.max.toFixed(d)})`;
const ok = (pass: boolean) => (pass ? "✅" : "❌");

/** The repetition with the median p99 (the one the HTTP tables show). */
function medianRep<T extends { p99Ms: number }>(xs: T[]): T {
  return [...xs].sort((a, b) => a.p99Ms - b.p99Ms)[Math.floor(xs.length / 2)]!;
}

/** Non-2xx answers over every HTTP phase of a run (0 when it ran none). */
function httpErrors(r: RunReport): number {
  return [r.http, r.httpDatabase].flatMap((h) => Object.values(h?.phases ?? {}))
    .flatMap((p) => [...p.bare, ...p.lull, ...p.lullStorm])
    .reduce((n, x) => n + x.errors, 0);
}

/** The HTTP table of one httpRace: ratios, goals, and the median repetition's latencies. */
function httpTable(h: HttpResult): string[] {
  const lines = [
    "| connections | lull/bare rps | storm: lull/bare rps | goal | bare p50/p99 ms | lull p50/p99 ms | storm p50/p99 ms |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const [k, p] of Object.entries(h.phases)) {
    const med = (xs: { p50Ms: number; p99Ms: number }[]) => {
      const s = medianRep(xs);
      return `${s.p50Ms.toFixed(1)} / ${s.p99Ms.toFixed(1)}`;
    };
    const ratio = h.ratios[k]!;
    const needs = k === "c16" || k === "c64";
    const stormP99 = medianRep(p.lullStorm).p99Ms;
    const goal = needs
      ? `≥ 0.5× ${ok(ratio["lull/bare"]!.median >= 0.5)}` +
        (k === "c64" ? `; storm p99 ≤ 20 ms ${ok(stormP99 <= 20)}` : "")
      : "—";
    lines.push(
      `| ${k.slice(1)} | ${f(ratio["lull/bare"]!)} | ${f(ratio["lullStorm/bare"]!)} | ${goal} | ${
        med(p.bare)
      } | ${med(p.lull)} | ${med(p.lullStorm)} |`,
    );
  }
  return lines;
}

/** The ratio bars of the chart, with their goals. */
function bars(r: BenchReport): { label: string; s: Spread; goal: number }[] {
  const out: { label: string; s: Spread; goal: number }[] = [];
  for (const c of ["c1", "c32"]) {
    const x = r.race.ratios[c]!;
    out.push({ label: `append ${c}: lull / raw EVALSHA`, s: x["lull/raw"]!, goal: 0.9 });
    out.push({ label: `append ${c}: lull / BullMQ+list`, s: x["lull/bullmqList"]!, goal: 3 });
  }
  for (const c of ["c1", "c16", "c64"]) {
    const x = r.http.ratios[c]!;
    out.push({ label: `HTTP ${c}: lull / bare`, s: x["lull/bare"]!, goal: 0.5 });
    out.push({ label: `HTTP ${c} storm: lull / bare`, s: x["lullStorm/bare"]!, goal: 0.5 });
  }
  for (const c of ["c16", "c64"]) {
    const x = r.httpDatabase?.ratios[c];
    if (x) {
      out.push({ label: `HTTP ${c} with a database: lull / bare`, s: x["lull/bare"]!, goal: 0.5 });
    }
  }
  return out;
}

/** An SVG bar chart of the throughput ratios (log scale would hide the goal; linear, capped). */
export function renderChart(r: BenchReport): string {
  const rows = bars(r);
  const rowH = 26;
  const left = 250;
  const width = 760;
  const plotW = width - left - 30;
  const top = 40;
  const height = top + rows.length * rowH + 40;
  const maxX = Math.max(3.5, ...rows.map((b) => Math.min(b.s.max, 6))) * 1.05;
  const x = (v: number) => left + (Math.min(v, maxX) / maxX) * plotW;
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">lull throughput ratios ` +
    `(median bar, min–max whisker, goal mark) — ${esc(r.commit.slice(0, 10))}</text>`,
  ];
  for (let t = 0; t <= maxX; t += 0.5) {
    parts.push(
      `<line x1="${x(t)}" y1="${top - 5}" x2="${x(t)}" y2="${height - 30}" stroke="#eee"/>`,
      `<text x="${x(t)}" y="${height - 15}" text-anchor="middle" fill="#666">${t}×</text>`,
    );
  }
  rows.forEach((b, i) => {
    const y = top + i * rowH;
    const pass = b.s.median >= b.goal;
    parts.push(
      `<text x="${left - 8}" y="${y + 15}" text-anchor="end">${esc(b.label)}</text>`,
      `<rect x="${left}" y="${y + 4}" width="${x(b.s.median) - left}" height="16" ` +
        `fill="${pass ? "#3a8f5c" : "#c0504d"}"/>`,
      `<line x1="${x(b.s.min)}" y1="${y + 12}" x2="${x(b.s.max)}" y2="${y + 12}" stroke="#222"/>`,
      `<line x1="${x(b.goal)}" y1="${y + 1}" x2="${x(b.goal)}" y2="${y + 23}" stroke="#1f4e99" ` +
        `stroke-width="3"/>`,
      `<text x="${Math.min(x(b.s.max) + 6, width - 60)}" y="${y + 16}" fill="#222">` +
        `${b.s.median.toFixed(2)}×</text>`,
    );
  });
  parts.push("</svg>", "");
  return parts.join("\n");
}

/** The memory table's rows: 5- and 2-message buffers, the goal on both byte figures. */
function memoryRows(m: MemoryCost): string[] {
  const goal = m.payloadBytes + 200;
  const cell = (v: Spread | undefined) =>
    v === undefined ? "—" : `${f(v, 0)} ${ok(v.median <= goal)}`;
  return ([
    ["5 messages", m.bytesPerMessage, m.bufferBytesPerMessage, m.dedupBytesPerId],
    [
      "2 messages",
      m.bytesPerMessageTwoMessageBuffers,
      m.bufferBytesPerMessageTwoMessageBuffers,
      m.dedupBytesPerIdTwoMessageBuffers,
    ],
  ] as const).map(([label, all, buffer, dedup]) =>
    `| ${label} | ${cell(all)} | ${cell(buffer)} | ${dedup ? f(dedup, 0) : "—"} | ≤ ${goal} |`
  );
}

/** docs/BENCHMARKS.md for one run. */
export function renderMarkdown(r: BenchReport, jsonPath: string): string {
  const c = r.commands;
  const payload = r.memory.payloadBytes;
  const lines: string[] = [
    "# Benchmarks",
    "",
    "Generated by `npm run bench` (bench/run.ts); do not edit by hand. Re-run it after a change",
    "and commit the new results. `npm run bench -- --quick` is a ~2 minute smoke run (its JSON",
    "goes to bench/results/ but it leaves this page alone unless `--write-docs`).",
    "",
    `- Commit measured: \`${r.commit}\` (${r.commitSubject})${
      r.dirty ? ", with uncommitted changes in src/" : ""
    }`,
    `- When: ${r.measuredAt}, wall ${r.wallSeconds} s${r.quick ? " (quick run)" : ""}`,
    `- Machine: ${r.machine.cpus} × ${r.machine.cpuModel}, Node ${r.machine.node}, redis-server ` +
    `${r.machine.redis}; load average (1/5/15 min) before ` +
    `${r.machine.loadavgBefore.map((v) => v.toFixed(2)).join(" / ")}, after ` +
    `${r.machine.loadavgAfter.map((v) => v.toFixed(2)).join(" / ")} (a shared machine: ratios ` +
    "are paired per repetition so both sides see the same load)",
    `- Raw data: \`${relative(process.cwd(), jsonPath)}\``,
    "",
    "Every ratio is **median (min–max)** over 3 repetitions (9 for the append race, the",
    "noisiest part), contenders interleaved in one run",
    "(order shuffled each round) on the same private redis-server. Commands are counted from",
    "`INFO commandstats` deltas the way Upstash bills them: every command a script runs, plus the",
    "EVALSHA itself.",
    "",
    "![throughput ratios](bench-chart.svg)",
    "",
    ...(r.baseline === undefined ? [] : renderBeforeAfter(r, r.baseline)),
    "## Append throughput (in process, TCP, one redis-server)",
    "",
    `${r.race.opsPerRun} appends per run into 200 open conversations. Contenders:`,
    "",
    "- **raw**: the exact EVALSHA `RedisStore.append` sends (captured from it), sent directly: the",
    "  ceiling for the same script.",
    "- **BullMQ dedup**: `queue.add` in debounce mode (`deduplication: { id: conversation, ttl,",
    "  extend: true, replace: true }`, `delay` = window). It keeps **only the last message** of a",
    "  burst: not the same product, shown for scale.",
    "- **BullMQ + list**: RPUSH the message to a per-conversation list, then the same debounced",
    "  `queue.add`: the keep-all equivalent of lull's buffer (no dedup by message id, no order",
    "  guarantee across the two round trips).",
    "- **naive**: SET NX PX (dedup) / RPUSH / SET last, the ingest half of the GET / grace-sleep /",
    "  SET NX PX / SET / DEL design (bench/naive.ts; not atomic, loses messages on races).",
    "",
    "| concurrency | contender | ops/s per repetition |",
    "|---|---|---|",
  ];
  for (const [conc, byWho] of Object.entries(r.race.opsPerSecond)) {
    for (const [who, v] of Object.entries(byWho)) {
      lines.push(`| ${conc} | ${who} | ${v.map((x) => x.toFixed(0)).join(", ")} |`);
    }
  }
  lines.push("", "| ratio | c1 | c32 | goal |", "|---|---|---|---|");
  const goalOf: Record<string, string> = {
    "lull/raw": "≥ 0.9×",
    "lull/bullmqList": "≥ 3×",
    "lull/bullmqDedup": "—",
    "lull/naive": "—",
  };
  for (const k of Object.keys(r.race.ratios["c1"]!)) {
    const a = r.race.ratios["c1"]![k]!;
    const b = r.race.ratios["c32"]![k]!;
    const goal = k === "lull/raw" ? 0.9 : k === "lull/bullmqList" ? 3 : undefined;
    const mark = goal === undefined ? "" : ` ${ok(a.median >= goal && b.median >= goal)}`;
    lines.push(`| ${k} | ${f(a)} | ${f(b)} | ${goalOf[k] ?? "—"}${mark} |`);
  }
  lines.push(
    "",
    "## Commands billed (Upstash counting)",
    "",
    "| case | commands | goal |",
    "|---|---|---|",
    `| new message into an open buffer | ${f(c.perNewMessage)} | ≤ 6 ${
      ok(c.perNewMessage.median <= 6)
    } |`,
    `| duplicate (redelivered id) | ${f(c.perDuplicate)} | ≤ 4 ${ok(c.perDuplicate.median <= 4)} |`,
    `| per message over a 5-message burst's life (5 appends, timer, claim, delivery, ack, wake-up settle) | ${
      f(c.perMessageBurstLife)
    } | ≤ 10 ${ok(c.perMessageBurstLife.median <= 10)} |`,
    `| the same with the wake index in Postgres (a deployment with a database: lull.wake_index) | ${
      c.perMessageBurstLifeDatabaseWakes ? f(c.perMessageBurstLifeDatabaseWakes) : "—"
    } | ≤ 10 ${
      c.perMessageBurstLifeDatabaseWakes ? ok(c.perMessageBurstLifeDatabaseWakes.median <= 10) : ""
    } |`,
    `| Postgres statements such a burst ran (lowering, settle) | ${
      c.postgresStatementsPerBurst ? f(c.postgresStatementsPerBurst) : "—"
    } | — |`,
    `| a sweep after such a burst, if one ran (the durable trigger calls none: the timer settled the wake-up) | ${
      c.sweepAfterBurst ? f(c.sweepAfterBurst) : "—"
    } | — |`,
    `| naive design, ingest of one message | ${c.contenders["naive"]!.toFixed(2)} | — |`,
    `| naive design, per message over a 5-message burst's life | ${
      c.naiveBurstLifePerMessage.toFixed(2)
    } | — |`,
    "",
    `New message, by command: ${
      Object.entries(c.breakdownNewMessage).sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ")
    }.`,
    "",
    "Burst life in steady state: every partition delivered a batch earlier that day (a " +
      "partition's first batch of a UTC day costs one HGETALL more: it folds the week-old day " +
      "counters). It includes the 4 commands with which the burst's timer, having delivered it, " +
      "settles the wake-up its first append lowered (when nobody lowered it since), so the " +
      "durable trigger calls no sweep for it: settleWake (EVALSHA, HGET of the epoch, ZREM, " +
      "ZRANGE), after an ack whose probe (one EXISTS of the buffer's meta, the due index and the " +
      "leases, in place of its read of the meta) found the partition empty. Where anything else " +
      "is left in the partition the ack reads the meta too and the timer reads the epoch (3), " +
      "then, only if nobody lowered the wake-up since, nextDue and settleWake (7). Before the " +
      "timer settled, that sweep cost about 18 commands and a function invocation a burst in a " +
      "quiet deployment.",
    "",
    "## Memory per buffered message",
    "",
    `Payload: the bench message, ${payload} B of JSON. \`INFO memory\` used_memory delta / messages.`,
    "",
    "| buffers of | bytes per message | without its dedup record | dedup record per id | goal (payload + 200 B) |",
    "|---|---|---|---|---|",
    ...memoryRows(r.memory),
    "",
    `Message ids of ${r.memory.idLength ?? "?"} characters, like WhatsApp's \`wamid.\` ids. ` +
      "The dedup record is what unlinking the conversations' dedup ZSETs frees afterwards: it " +
      "outlives the buffer, for LULL_DEDUP_TTL_MS after the claim that empties it.",
    "",
    "## Sweep cost with nothing due",
    "",
    "One `flushDue()` (what `POST /lull/flush` runs) over open buffers that are not due yet.",
    "",
    "| open buffers | commands per sweep | ms per sweep |",
    "|---|---|---|",
    ...r.sweeps.map((s) => `| ${s.openBuffers} | ${f(s.commands, 0)} | ${f(s.ms, 1)} |`),
    "",
    "## Flush lateness",
    "",
    "Arrival at the processor minus (lastAt + window + grace), 40 one-message bursts over ~1 s",
    "a run, window 300 ms, grace 100 ms. Each cell: a run's percentile, min/median/max over the",
    "runs. A run's p99 over 40 batches is its slowest batch, so one stall of the shared machine",
    "moves it.",
    "",
    "| trigger | batches | p50 ms | p99 ms | max ms |",
    "|---|---|---|---|---|",
    ...r.lateness.map((l) => {
      const cell = (v: Spread | undefined, single: number) =>
        v === undefined ? single.toFixed(0) : f(v, 0);
      return `| ${
        l.trigger === "timer" ? "in-isolate timer" : `sweep only (every ${l.sweepIntervalMs} ms)`
      } | ${l.batches} | ${cell(l.runs?.p50Ms, l.p50Ms)} | ${cell(l.runs?.p99Ms, l.p99Ms)} | ${
        cell(l.runs?.maxMs, l.maxMs)
      } |`;
    }),
    "",
    "## HTTP ingest: the real `lull` function vs a bare handler",
    "",
    "Both on real Deno over TCP Redis: `POST /functions/v1/lull/messages` through",
    "src/dev/serve-functions.ts (auth, validation, metrics, timers, the local router), against",
    "bench/bare-server.ts (a bare `Deno.serve` doing the same single EVALSHA). Closed-loop",
    `keep-alive load from Node, ${r.http.phaseMs} ms per phase, 64 conversations per phase.`,
    `Storm: ${r.http.stormConversations} one-message conversations seeded through the function`,
    `(each arming an in-isolate timer), all falling due (window ${r.http.windowMs} ms + grace`,
    `${r.http.graceMs} ms) during the measured phase. ${r.http.batchesDelivered} batches delivered.`,
    "",
    ...httpTable(r.http),
  );
  if (r.httpDatabase) {
    lines.push(
      "",
      "### With a database, as deployed on Supabase",
      "",
      "The same phases with `LULL_DATABASE_URL` set to a private PostgreSQL holding lull's",
      "migrations, as every Supabase deployment has one (`SUPABASE_DB_URL`): the outbox checks",
      "per message whether the conversation has rows waiting there (before the append, so that",
      "a message never overtakes one written during a Redis outage; an isolate's concurrent",
      "checks share one statement), and a burst's wake-up is lowered and settled in",
      "`lull.wake_index`. The bare handler has",
      `no database. ${r.httpDatabase.batchesDelivered} batches delivered.`,
      "",
      ...httpTable(r.httpDatabase),
    );
  }
  lines.push(
    "",
    `Non-2xx answers during the HTTP phases: ${
      httpErrors(r)
    }. (p50/p99 shown for the median repetition.)`,
    "",
    "## Idle",
    "",
    `\`lull dev --no-demo\` against the bench's redis-server with nothing buffered, for ${r.idle.seconds} s`,
    r.idle.windows === undefined
      ? "after start-up settled; extrapolated to an hour."
      : `after start-up settled, in ${r.idle.windows.commandsPerHour.n} consecutive windows; per hour: each window's rate, min/median/max over the windows.`,
    "",
    "| what | measured | per hour | goal |",
    "|---|---|---|---|",
    `| Redis commands | ${r.idle.commands} | ${
      r.idle.windows === undefined
        ? r.idle.commandsPerHour.toFixed(0)
        : f(r.idle.windows.commandsPerHour, 0)
    } | 0 (a heartbeat a minute at most) ${ok(r.idle.commandsPerHour <= 60 * 3)} |`,
    `| sweep invocations (\`POST /lull/flush\` by the local Cron) | ${
      r.idle.sweepInvocations ?? "n/a"
    } | ${
      r.idle.windows?.invocationsPerHour
        ? f(r.idle.windows.invocationsPerHour, 0)
        : r.idle.invocationsPerHour?.toFixed(0) ?? "n/a"
    } | 0 (≤ 60) ${ok((r.idle.invocationsPerHour ?? Infinity) <= 60)} |`,
    "",
    `Idle commands by name: ${
      Object.entries(r.idle.byCommand).map(([k, v]) => `${k} ${v}`).join(", ") || "none"
    }.`,
    "",
    `At Upstash pay-as-you-go ($0.2 per 100k commands) the idle rate is $${
      ((r.idle.commandsPerHour * 24 * 30) / 100_000 * 0.2).toFixed(2)
    } a month; the local Cron's ${
      r.idle.invocationsPerHour?.toFixed(0) ?? "n/a"
    } invocations an hour`,
    `are ${
      ((r.idle.invocationsPerHour ?? 0) * 24 * 30).toFixed(0)
    } a month against Supabase's free`,
    'plan quota of 500,000 (see README, "What it costs").',
    "",
  );
  return lines.join("\n");
}

/**
 * The before/after table of a `--baseline` run: each figure of the issue's report on the
 * baseline commit and on this one, measured by the same bench code in the same run.
 */
export function renderBeforeAfter(after: BenchReport, before: RunReport): string[] {
  type Figure = (r: RunReport) => Spread | number | undefined;
  const show = (v: Spread | number | undefined, d: number) =>
    v === undefined ? "n/a" : typeof v === "number" ? v.toFixed(d) : f(v, d);
  const median = (v: Spread | number | undefined) =>
    v === undefined ? undefined : typeof v === "number" ? v : v.median;
  const rows: [string, Figure, number, string, (v: number) => boolean][] = [];
  const atMost = (goal: number) => (v: number) => v <= goal;
  const atLeast = (goal: number) => (v: number) => v >= goal;
  const none = () => true;
  for (const c of ["c1", "c32"]) {
    rows.push(
      [
        `append ${c}: lull / raw EVALSHA`,
        (r) => r.race?.ratios[c]?.["lull/raw"],
        2,
        "≥ 0.9×",
        atLeast(0.9),
      ],
      [
        `append ${c}: lull / BullMQ + list`,
        (r) => r.race?.ratios[c]?.["lull/bullmqList"],
        2,
        "≥ 3×",
        atLeast(3),
      ],
    );
  }
  const payload = after.memory?.payloadBytes ?? before.memory?.payloadBytes ?? 0;
  rows.push(
    ["commands, new message", (r) => r.commands?.perNewMessage, 1, "≤ 6", atMost(6)],
    ["commands, duplicate", (r) => r.commands?.perDuplicate, 1, "≤ 4", atMost(4)],
    [
      "commands per message over a 5-message burst's life",
      (r) => r.commands?.perMessageBurstLife,
      1,
      "≤ 10",
      atMost(10),
    ],
    [
      "the same, wake index in Postgres",
      (r) => r.commands?.perMessageBurstLifeDatabaseWakes,
      1,
      "≤ 10",
      atMost(10),
    ],
    ["commands of a sweep after that burst", (r) => r.commands?.sweepAfterBurst, 0, "—", none],
  );
  const memoryGoal = `≤ ${payload + 200}`;
  for (
    const [label, key] of [
      ["bytes per message, 5-message buffers", "bytesPerMessage"],
      ["bytes per message, 2-message buffers", "bytesPerMessageTwoMessageBuffers"],
      ["bytes per message without its dedup record, 5-message buffers", "bufferBytesPerMessage"],
      [
        "bytes per message without its dedup record, 2-message buffers",
        "bufferBytesPerMessageTwoMessageBuffers",
      ],
    ] as const
  ) {
    rows.push([label, (r) => r.memory?.[key], 0, memoryGoal, atMost(payload + 200)]);
  }
  rows.push(
    ["bytes per dedup record, 5-message buffers", (r) => r.memory?.dedupBytesPerId, 0, "—", none],
  );
  for (const c of ["c1", "c16", "c64"]) {
    const needs = c !== "c1";
    rows.push(
      [
        `HTTP ${c}: lull / bare rps`,
        (r) => r.http?.ratios[c]?.["lull/bare"],
        2,
        needs ? "≥ 0.5×" : "—",
        needs ? atLeast(0.5) : none,
      ],
      [
        `HTTP ${c}, flush storm: lull / bare rps`,
        (r) => r.http?.ratios[c]?.["lullStorm/bare"],
        2,
        needs ? "≥ 0.5×" : "—",
        needs ? atLeast(0.5) : none,
      ],
    );
  }
  for (const c of ["c16", "c64"]) {
    rows.push([
      `HTTP ${c} with a database: lull / bare rps`,
      (r) => r.httpDatabase?.ratios[c]?.["lull/bare"],
      2,
      "≥ 0.5×",
      atLeast(0.5),
    ]);
  }
  // Each repetition's p99, min/median/max over the repetitions.
  const p99s = (r: RunReport, phase: "bare" | "lull" | "lullStorm") => {
    const reps = r.http?.phases["c64"]?.[phase];
    return reps === undefined || reps.length === 0 ? undefined : spread(reps.map((x) => x.p99Ms));
  };
  rows.push(
    ["HTTP c64: bare handler p99 ms", (r) => p99s(r, "bare"), 1, "—", none],
    ["HTTP c64: lull p99 ms", (r) => p99s(r, "lull"), 1, "—", none],
    ["HTTP c64, flush storm: lull p99 ms", (r) => p99s(r, "lullStorm"), 1, "≤ 20", atMost(20)],
  );
  for (const [i, s] of (after.sweeps ?? []).entries()) {
    // O(1): no more commands than with the fewest open buffers.
    const flat = (v: number) => v <= after.sweeps[0]!.commands.median;
    rows.push([
      `commands of a sweep with nothing due, ${s.openBuffers} open buffers`,
      (r) => r.sweeps?.[i]?.commands,
      0,
      "O(1)",
      flat,
    ]);
  }
  rows.push(
    [
      "flush lateness p99 ms, in-isolate timer",
      (r) => r.lateness?.[0]?.runs?.p99Ms ?? r.lateness?.[0]?.p99Ms,
      0,
      "—",
      none,
    ],
    [
      "flush lateness p99 ms, sweep only",
      (r) => r.lateness?.[1]?.runs?.p99Ms ?? r.lateness?.[1]?.p99Ms,
      0,
      "—",
      none,
    ],
    [
      "idle: Redis commands an hour",
      (r) => r.idle?.windows?.commandsPerHour ?? r.idle?.commandsPerHour,
      0,
      "≤ 180 (a heartbeat a minute)",
      atMost(180),
    ],
    [
      "idle: sweep invocations an hour",
      (r) => r.idle?.windows?.invocationsPerHour ?? r.idle?.invocationsPerHour ?? undefined,
      0,
      "≤ 60",
      atMost(60),
    ],
  );
  const lines = [
    "## Before and after",
    "",
    `Before: \`${before.commit.slice(0, 10)}\` (${
      after.baselineLabel ?? before.commitSubject
    }). After: this commit. Both`,
    "measured in this run by this bench code (the baseline commit checked out into a worktree",
    "with this checkout's bench/), each part once per side, the sides alternating in shuffled",
    "order (bench/baseline.ts). Absolute latencies move with the shared machine; compare the",
    "ratios and counts. The goal mark is the after column's.",
    "",
    "| figure | before | after | goal |",
    "|---|---|---|---|",
  ];
  // An HTTP phase that got error answers measured the errors, not the ingest: not shown.
  const errors = { before: httpErrors(before), after: httpErrors(after) };
  const cell = (side: "before" | "after", label: string, figure: Figure, d: number) =>
    label.startsWith("HTTP") && errors[side] > 0
      ? `n/a (${errors[side]} non-2xx answers)`
      : show(figure(side === "before" ? before : after), d);
  for (const [label, figure, d, goal, pass] of rows) {
    const a = figure(after);
    // A partial run (--only) has only some parts.
    if (a === undefined && figure(before) === undefined) continue;
    const m = median(a);
    const mark = goal === "—" || m === undefined ? "" : ` ${ok(pass(m))}`;
    lines.push(
      `| ${label} | ${cell("before", label, figure, d)} | ${
        cell("after", label, figure, d)
      } | ${goal}${mark} |`,
    );
  }
  lines.push("");
  return lines;
}

/**
 * A short text summary of a partial run (`--only=...`): the throughput ratios and the HTTP
 * latencies of whatever parts ran, for iterating on one figure without the full docs.
 */
export function renderPartial(r: BenchReport): string {
  const lines: string[] = [
    `partial bench (${r.parts.join(", ")}) of ${r.commit.slice(0, 10)}${
      r.dirty ? " + uncommitted changes" : ""
    }, load before ${r.machine.loadavgBefore.map((v) => v.toFixed(2)).join("/")} after ${
      r.machine.loadavgAfter.map((v) => v.toFixed(2)).join("/")
    }`,
  ];
  if (r.race) {
    lines.push("", "append race, ops/s per repetition:");
    for (const [conc, byWho] of Object.entries(r.race.opsPerSecond)) {
      for (const [who, v] of Object.entries(byWho)) {
        lines.push(`  ${conc} ${who}: ${v.map((x) => x.toFixed(0)).join(", ")}`);
      }
    }
    lines.push("ratios, median (min–max):");
    for (const [conc, ratios] of Object.entries(r.race.ratios)) {
      for (const [k, s] of Object.entries(ratios)) lines.push(`  ${conc} ${k}: ${f(s)}`);
    }
  }
  if (r.http) {
    lines.push("", "HTTP, ratios median (min–max), p50/p99 ms per repetition:");
    for (const [k, p] of Object.entries(r.http.phases)) {
      const ratio = r.http.ratios[k]!;
      const lat = (xs: LoadLatency[]) =>
        xs.map((x) => `${x.p50Ms.toFixed(1)}/${x.p99Ms.toFixed(1)}`).join(", ");
      lines.push(
        `  ${k} lull/bare ${f(ratio["lull/bare"]!)}, storm/bare ${f(ratio["lullStorm/bare"]!)}`,
        `    bare ${lat(p.bare)} | lull ${lat(p.lull)} | storm ${lat(p.lullStorm)}`,
      );
    }
    lines.push(`  non-2xx: ${httpErrors(r)}, batches delivered: ${r.http.batchesDelivered}`);
  }
  if (r.httpDatabase) {
    lines.push("", "HTTP with a database, ratios median (min–max):");
    for (const [k, ratio] of Object.entries(r.httpDatabase.ratios)) {
      lines.push(
        `  ${k} lull/bare ${f(ratio["lull/bare"]!)}, storm/bare ${f(ratio["lullStorm/bare"]!)}`,
      );
    }
  }
  if (r.baseline !== undefined) lines.push("", ...renderBeforeAfter(r, r.baseline));
  return lines.join("\n");
}

interface LoadLatency {
  p50Ms: number;
  p99Ms: number;
}
