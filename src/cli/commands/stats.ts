/**
 * `lull stats`: counters, ratios and a 7-day trend from the store's per-partition counters.
 */
import type { CounterName, StatsSnapshot } from "../../core/types.ts";
import { parseCommandArgs } from "../args.ts";
import { UsageError } from "../cli-errors.ts";
import { type Command, out, outJson } from "../command.ts";
import { resolveConnection } from "../connect.ts";
import { openBackend } from "../backend.ts";
import { palette, table, withProgress } from "../terminal.ts";

const dayMs = 86_400_000;

/** Derived figures shown by `lull stats` (and under `derived` in --json). */
export interface DerivedStats {
  /** Duplicates / (ingested + duplicates) over about the last 24 h (from daily buckets). */
  dupRatio24h: number | null;
  ingested24h: number;
  duplicates24h: number;
  /** Mean messages per delivered batch (all time). */
  meanBatchSize: number | null;
}

/**
 * Figures over ~24 h from UTC day buckets: all of today plus the share of yesterday that falls
 * inside the last 24 h (counts are assumed even across yesterday).
 */
export function deriveStats(s: StatsSnapshot): DerivedStats {
  const today = s.days.at(-1)?.counters;
  const yesterday = s.days.at(-2)?.counters;
  const share = 1 - (s.nowMs % dayMs) / dayMs;
  const last24 = (c: CounterName) => Math.round((today?.[c] ?? 0) + (yesterday?.[c] ?? 0) * share);
  const ingested24h = last24("ingested");
  const duplicates24h = last24("duplicates");
  const seen = ingested24h + duplicates24h;
  return {
    dupRatio24h: seen === 0 ? null : duplicates24h / seen,
    ingested24h,
    duplicates24h,
    meanBatchSize: s.totals.batches === 0 ? null : s.totals.batch_messages / s.totals.batches,
  };
}

/** A one-line bar chart of `values`. */
export function sparkline(values: number[]): string {
  const bars = "▁▂▃▄▅▆▇█";
  const max = Math.max(...values, 0);
  return values.map((v) =>
    max === 0 ? bars[0] : bars[Math.min(bars.length - 1, Math.floor((v / max) * (bars.length - 1)))]
  ).join("");
}

const help = `lull stats — counters and a 7-day trend

Usage: lull stats [--url <lull url>] [--json]

Totals since the keys were created: messages ingested, duplicates (and the duplicate ratio over
about the last 24 h), batches delivered and their mean size, retries, dead-lettered batches and
the DLQ size now, fallback deliveries (Redis down), plus open buffers, batches in flight and one
row per UTC day for the last 7 days.

Options:
  --url <url>   read through the function's admin API (needs LULL_ADMIN_TOKEN)
  --json        the raw snapshot plus derived figures, as one JSON object
  -h, --help    this help

Exit codes: 0 ok, 1 cannot connect, 2 usage error.`;

/** `lull stats`. */
export const statsCommand: Command = {
  name: "stats",
  summary: "counters (ingested, duplicates, batches, retries, DLQ, fallbacks), 7-day trend",
  help,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs("stats", args, { url: { type: "string" } });
    if (positionals.length > 0) {
      throw new UsageError(`unexpected argument '${positionals[0]}'`, "stats");
    }
    const conn = resolveConnection(ctx.env, ctx.cwd);
    const store = openBackend(conn, values.url);
    let s: StatsSnapshot;
    try {
      s = await withProgress("reading counters", () => store.stats());
    } finally {
      await store.close();
    }
    const d = deriveStats(s);
    if (values.json) {
      outJson({ ...s, derived: d });
      return 0;
    }
    const p = palette();
    const t = s.totals;
    const pct = (x: number | null) => (x === null ? "-" : `${(x * 100).toFixed(1)}%`);
    out(p.bold("totals"));
    out(`  ingested       ${t.ingested}`);
    out(
      `  duplicates     ${t.duplicates}   ${
        p.dim(`last 24 h: ${d.duplicates24h} of ${d.ingested24h + d.duplicates24h}`)
      } (${pct(d.dupRatio24h)})`,
    );
    out(
      `  batches        ${t.batches}   ${p.dim("mean size")} ${
        d.meanBatchSize === null ? "-" : d.meanBatchSize.toFixed(1)
      }`,
    );
    out(`  retries        ${t.retries}`);
    out(`  dead-lettered  ${t.dead}   ${p.dim("DLQ now")} ${s.dlqSize}`);
    out(`  fallbacks      ${t.fallbacks}`);
    out(`  superseded     ${t.superseded}   ${p.dim("reaped")} ${t.reaped}`);
    out(`  open buffers   ${s.openBuffers}   ${p.dim("in flight")} ${s.inFlight}`);
    out();
    out(
      p.bold("last 7 days (UTC)") + "  ingested " +
        sparkline(s.days.map((x) => x.counters.ingested)),
    );
    out(
      table(
        ["DAY", "INGESTED", "DUPS", "BATCHES", "MEAN", "RETRIES", "DEAD", "FALLBACKS"],
        s.days.map(({ day, counters: c }) => [
          day,
          String(c.ingested),
          String(c.duplicates),
          String(c.batches),
          c.batches === 0 ? "-" : (c.batch_messages / c.batches).toFixed(1),
          String(c.retries),
          String(c.dead),
          String(c.fallbacks),
        ]),
        p,
      ),
    );
    return 0;
  },
};
