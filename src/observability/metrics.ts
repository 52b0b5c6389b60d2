/**
 * In-process metrics rendered as Prometheus text exposition (format 0.0.4) for
 * `GET /lull/metrics`.
 *
 * Two sources meet here: what this isolate counted itself (HTTP requests, deliveries, delivery
 * durations: a {@link MetricsSink}) and what the store knows for the whole deployment (open
 * buffers, in-flight batches, DLQ size, counter totals from {@link StatsSnapshot}), passed in at
 * render time because only the store can answer it. Edge isolates are short-lived, so the
 * in-process counters restart at zero; Prometheus' `rate()` handles those resets, and the store
 * totals give the durable picture.
 */
import type { MetricsSink } from "../core/ports.ts";
import { COUNTER_NAMES, type StatsSnapshot } from "../core/types.ts";
import type { OutboxDepth } from "../outbox/outbox.ts";

/**
 * Metric names lull records, with their help text. A name not listed here still works (it gets a
 * generic help line); listing it documents it for operators.
 */
export const METRIC_HELP: Readonly<Record<string, string>> = {
  lull_http_requests_total: "HTTP requests handled, by route and status.",
  lull_messages_accepted_total: "Inbound messages answered 2xx, by provider.",
  lull_messages_duplicate_total: "Redelivered inbound messages recognised as duplicates.",
  lull_messages_refused_total:
    "Messages not buffered: invalid or stale (answered 200), or over a quota (answered 429).",
  lull_deliveries_total: "Batch deliveries to the processor, by outcome.",
  lull_delivery_duration_ms: "Time one delivery to the processor took, in milliseconds.",
  lull_flush_runs_total: "Flush runs (timer or sweep), by trigger.",
  lull_fallback_total: "Messages delivered directly because Redis was unavailable.",
  lull_outbox_writes_total:
    "Messages written to the durable outbox (Redis down or ambiguous), by result (written, duplicate, failed).",
  lull_outbox_replayed_total:
    "Outbox rows replayed into the buffers, by result (appended, duplicate: Redis already had it).",
  lull_outbox_replays_total:
    "Outbox replay runs, by trigger (sweep, append: first healthy append, conversation: a message queued behind its rows).",
};

/**
 * Histogram bucket upper bounds in milliseconds. They span a fast in-region processor (a few
 * ms) up to the default 10 s delivery timeout, so timeouts land in the last finite bucket.
 */
export const DURATION_BUCKETS_MS: readonly number[] = [
  5,
  10,
  25,
  50,
  100,
  250,
  500,
  1000,
  2500,
  5000,
  10000,
  30000,
];

/** Breaker states always emitted, so a dashboard can graph each one as a 0/1 series. */
const BREAKER_STATES: readonly string[] = ["closed", "half_open", "open"];

/** Extra, scrape-time data for {@link Metrics.render}. */
export interface RenderExtra {
  /** The store's view of the whole deployment; omitted when the store could not be read. */
  stats?: StatsSnapshot;
  /** Circuit breaker name -> state (`closed`, `half_open`, `open`). */
  breakers?: Record<string, string>;
  /**
   * Whether the store answered the stats read. Rendered as `lull_store_up`; defaults to
   * whether `stats` was given.
   */
  storeUp?: boolean;
  /** The durable outbox's depth; omitted when there is none or it could not be read. */
  outbox?: OutboxDepth;
}

/** A metrics sink that can also render itself. */
export interface Metrics extends MetricsSink {
  /** Prometheus text exposition of everything recorded plus `extra`. */
  render(extra?: RenderExtra): string;
}

type Labels = Record<string, string>;

interface CounterSeries {
  labels: Labels;
  value: number;
}

interface HistogramSeries {
  labels: Labels;
  /** Cumulative counts are computed at render time; these are per-bucket counts. */
  bucketCounts: number[];
  sum: number;
  count: number;
}

/** Metric names must match `[a-zA-Z_:][a-zA-Z0-9_:]*`; anything else becomes `_`. */
export function sanitizeMetricName(name: string): string {
  const cleaned = name.replace(/[^a-zA-Z0-9_:]/g, "_");
  return /^[a-zA-Z_:]/.test(cleaned) ? cleaned : "_" + cleaned;
}

/** Label names must match `[a-zA-Z_][a-zA-Z0-9_]*` and must not start with `__` (reserved). */
function sanitizeLabelName(name: string): string {
  let cleaned = name.replace(/[^a-zA-Z0-9_]/g, "_");
  if (!/^[a-zA-Z_]/.test(cleaned)) cleaned = "_" + cleaned;
  return cleaned.startsWith("__") ? "l" + cleaned : cleaned;
}

/** Escapes a label value: backslash, double quote and line feed, per the exposition format. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** HELP text escapes backslash and line feed (quotes are legal there). */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function normaliseLabels(labels: Labels | undefined): Labels {
  const out: Labels = {};
  if (!labels) return out;
  for (const [k, v] of Object.entries(labels)) out[sanitizeLabelName(k)] = String(v);
  return out;
}

/** A stable identity for one label set (sorted, so key order at the call site does not matter). */
function labelKey(labels: Labels): string {
  return JSON.stringify(Object.keys(labels).sort().map((k) => [k, labels[k]]));
}

/**
 * The label set exactly as the caller passed it (names, values, order), length-prefixed so no
 * two sets collide. Cheap to build, so a repeated label set finds its series without being
 * sanitised, sorted and JSON-stringified again on every call.
 */
function rawLabelKey(labels: Labels | undefined): string {
  let key = "";
  if (!labels) return key;
  for (const name in labels) {
    if (!Object.hasOwn(labels, name)) continue;
    const value = String(labels[name]);
    key += `${name.length}:${name}${value.length}:${value}`;
  }
  return key;
}

/** One metric family: its series by label identity, and the same series by raw label key. */
interface Family<S> {
  series: Map<string, S>;
  byRaw: Map<string, S>;
}

/** The series of `labels` in `family`, created (from the sanitised labels) on first use. */
function seriesOf<S>(
  family: Family<S>,
  labels: Labels | undefined,
  create: (labels: Labels) => S,
): S {
  const raw = rawLabelKey(labels);
  let s = family.byRaw.get(raw);
  if (s !== undefined) return s;
  const norm = normaliseLabels(labels);
  const key = labelKey(norm);
  s = family.series.get(key);
  if (s === undefined) {
    s = create(norm);
    family.series.set(key, s);
  }
  family.byRaw.set(raw, s);
  return s;
}

/** The family of a metric name as the caller spelled it, sharing one per sanitised name. */
function familyOf<S>(
  byName: Map<string, Family<S>>,
  families: Map<string, Family<S>>,
  name: string,
  sanitise: (name: string) => string,
): Family<S> {
  let family = byName.get(name);
  if (family === undefined) {
    const clean = sanitise(name);
    family = families.get(clean);
    if (family === undefined) {
      family = { series: new Map(), byRaw: new Map() };
      families.set(clean, family);
    }
    byName.set(name, family);
  }
  return family;
}

function renderLabels(labels: Labels, extra?: [string, string]): string {
  const pairs = Object.keys(labels).sort().map((k) => `${k}="${escapeLabelValue(labels[k]!)}"`);
  if (extra) pairs.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return pairs.length === 0 ? "" : `{${pairs.join(",")}}`;
}

/** Formats a sample value: Prometheus spells infinities `+Inf`/`-Inf` and NaN `NaN`. */
function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

function helpFor(name: string, fallback: string): string {
  return METRIC_HELP[name] ?? fallback;
}

/**
 * Creates an in-process metrics registry.
 *
 * `inc(name)` records a counter; the rendered name always ends in `_total` (appended when the
 * caller left it off). `observe(name, value)` records a histogram with
 * {@link DURATION_BUCKETS_MS}; values are whatever unit the name says (lull uses `_ms`).
 * Never throws: bad names and labels are sanitised, non-finite values ignored, because a
 * metrics call must not break the request it is measuring.
 */
export function createMetrics(): Metrics {
  // Keyed by sanitised family name (what is rendered), and by the name as callers spell it.
  const counters = new Map<string, Family<CounterSeries>>();
  const histograms = new Map<string, Family<HistogramSeries>>();
  const counterNames = new Map<string, Family<CounterSeries>>();
  const histogramNames = new Map<string, Family<HistogramSeries>>();

  const counterName = (name: string) => {
    const n = sanitizeMetricName(name);
    return n.endsWith("_total") ? n : n + "_total";
  };

  return {
    inc(name, labels, by = 1) {
      if (!Number.isFinite(by) || by < 0) return; // counters only go up
      const family = familyOf(counterNames, counters, name, counterName);
      seriesOf(family, labels, (norm) => ({ labels: norm, value: 0 })).value += by;
    },

    observe(name, value, labels) {
      if (!Number.isFinite(value)) return;
      const family = familyOf(histogramNames, histograms, name, sanitizeMetricName);
      const s = seriesOf(family, labels, (norm) => ({
        labels: norm,
        bucketCounts: DURATION_BUCKETS_MS.map(() => 0),
        sum: 0,
        count: 0,
      }));
      const idx = DURATION_BUCKETS_MS.findIndex((le) => value <= le);
      if (idx >= 0) s.bucketCounts[idx]! += 1;
      s.sum += value;
      s.count += 1;
    },

    render(extra = {}) {
      const lines: string[] = [];
      const family = (name: string, type: string, help: string) => {
        lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
      };

      for (const name of [...counters.keys()].sort()) {
        family(name, "counter", helpFor(name, "Counter recorded by this isolate."));
        for (const s of counters.get(name)!.series.values()) {
          lines.push(`${name}${renderLabels(s.labels)} ${formatValue(s.value)}`);
        }
      }

      for (const name of [...histograms.keys()].sort()) {
        family(name, "histogram", helpFor(name, "Histogram recorded by this isolate."));
        for (const s of histograms.get(name)!.series.values()) {
          let cumulative = 0;
          DURATION_BUCKETS_MS.forEach((le, i) => {
            cumulative += s.bucketCounts[i]!;
            lines.push(`${name}_bucket${renderLabels(s.labels, ["le", String(le)])} ${cumulative}`);
          });
          lines.push(`${name}_bucket${renderLabels(s.labels, ["le", "+Inf"])} ${s.count}`);
          lines.push(`${name}_sum${renderLabels(s.labels)} ${formatValue(s.sum)}`);
          lines.push(`${name}_count${renderLabels(s.labels)} ${s.count}`);
        }
      }

      const storeUp = extra.storeUp ?? extra.stats !== undefined;
      family("lull_store_up", "gauge", "1 if the store answered the stats read of this scrape.");
      lines.push(`lull_store_up ${storeUp ? 1 : 0}`);

      const stats = extra.stats;
      if (stats) {
        family("lull_open_buffers", "gauge", "Conversations with an open (unclaimed) buffer.");
        lines.push(`lull_open_buffers ${formatValue(stats.openBuffers)}`);
        family(
          "lull_in_flight_batches",
          "gauge",
          "Batches claimed and being delivered, or awaiting retry.",
        );
        lines.push(`lull_in_flight_batches ${formatValue(stats.inFlight)}`);
        family("lull_dlq_size", "gauge", "Batches in the dead-letter queue.");
        lines.push(`lull_dlq_size ${formatValue(stats.dlqSize)}`);
        family(
          "lull_store_counter_total",
          "counter",
          "Deployment-wide counter totals kept in the store (all isolates), by counter.",
        );
        for (const c of COUNTER_NAMES) {
          const v = stats.totals[c] ?? 0;
          lines.push(`lull_store_counter_total${renderLabels({ counter: c })} ${formatValue(v)}`);
        }
      }

      if (extra.outbox) {
        family("lull_outbox_depth", "gauge", "Messages waiting in the durable outbox.");
        lines.push(`lull_outbox_depth ${formatValue(extra.outbox.depth)}`);
        family(
          "lull_outbox_oldest_age_ms",
          "gauge",
          "Age of the oldest outbox row in milliseconds (0 when empty).",
        );
        lines.push(`lull_outbox_oldest_age_ms ${formatValue(extra.outbox.oldestAgeMs ?? 0)}`);
      }

      const breakers = extra.breakers ?? {};
      const names = Object.keys(breakers).sort();
      if (names.length > 0) {
        family(
          "lull_circuit_breaker_state",
          "gauge",
          "Circuit breaker state: 1 for the current state of each breaker, 0 for the others.",
        );
        for (const breaker of names) {
          const current = breakers[breaker]!;
          const states = BREAKER_STATES.includes(current)
            ? BREAKER_STATES
            : [...BREAKER_STATES, current];
          for (const state of states) {
            const value = state === current ? 1 : 0;
            lines.push(
              `lull_circuit_breaker_state${
                renderLabels({ breaker: breaker, state: state })
              } ${value}`,
            );
          }
        }
      }

      return lines.join("\n") + "\n";
    },
  };
}
