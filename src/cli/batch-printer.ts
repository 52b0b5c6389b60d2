/**
 * Turns the example processor's log line (`{"msg":"batch",...}` on the functions' stdout) into
 * the readable block `lull dev` shows: conversation, reason, messages, and how long the burst
 * waited before it was delivered.
 */
import { formatDurationMs } from "./duration.ts";
import type { Palette } from "./terminal.ts";

/** What dev knows about one delivered batch. */
export interface PrintedBatch {
  batchId: string;
  conversation: string;
  reason: string;
  attempt: number;
  degraded: boolean;
  /** Message texts in order. */
  texts: string[];
  firstAt: string | null;
  lastAt: string | null;
  /** When the processor logged it (ISO). */
  deliveredAt: string;
  /** Delivery time minus the first message's arrival. */
  waitedMs: number | null;
}

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

/**
 * Parses one stdout line; null if it is not a batch log line. Accepts the batch fields at the
 * top level or under `batch`.
 */
export function parseBatchLine(line: string, nowMs: number = Date.now()): PrintedBatch | null {
  if (!line.startsWith("{")) return null;
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(line);
  } catch {
    return null;
  }
  if (parsed.msg !== "batch") return null;
  const b =
    (typeof parsed.batch === "object" && parsed.batch !== null ? parsed.batch : parsed) as Record<
      string,
      unknown
    >;
  const messages = Array.isArray(b.messages) ? b.messages as Record<string, unknown>[] : [];
  const texts = messages.length > 0
    ? messages.map((m) => str(m.text) ?? "")
    : (str(b.text)?.split("\n") ?? []);
  const firstAt = str(b.firstAt) ?? null;
  const deliveredAt = str(parsed.time) ?? str(parsed.at) ?? new Date(nowMs).toISOString();
  const firstMs = firstAt ? Date.parse(firstAt) : Number.NaN;
  return {
    batchId: str(b.batchId) ?? "?",
    conversation: str(b.conversation) ?? "?",
    reason: str(b.reason) ?? "?",
    attempt: typeof b.attempt === "number" ? b.attempt : 1,
    degraded: b.degraded === true,
    texts,
    firstAt,
    lastAt: str(b.lastAt) ?? null,
    deliveredAt,
    waitedMs: typeof parsed.waitMs === "number"
      ? parsed.waitMs
      : Number.isNaN(firstMs)
      ? null
      : Date.parse(deliveredAt) - firstMs,
  };
}

/** The readable block for one batch. */
export function formatBatch(batch: PrintedBatch, p: Palette): string {
  const head = [
    p.green("▶ batch"),
    p.bold(batch.conversation),
    `${batch.texts.length} message${batch.texts.length === 1 ? "" : "s"}`,
    `reason ${p.cyan(batch.reason)}`,
    batch.waitedMs === null ? "" : `waited ${formatDurationMs(batch.waitedMs)} from first message`,
    batch.attempt > 1 ? p.yellow(`attempt ${batch.attempt}`) : "",
    batch.degraded ? p.red("DEGRADED (Redis down, delivered directly)") : "",
  ].filter((s) => s !== "").join("  ");
  const lines = batch.texts.map((t, i) => `    ${p.dim(String(i + 1).padStart(2))}  ${t}`);
  return [head, ...lines].join("\n");
}
