/**
 * Operator views of store state, shared by the admin API (src/http/admin/) and the CLI
 * (src/cli/backend.ts), so `lull buffers` shows the same rows whether it reads Redis directly or
 * goes through the function.
 */
import type { BufferStore, ConversationState, DeadLetter, FlushReason } from "./types.ts";

const iso = (ms: number | null | undefined) => (ms == null ? null : new Date(ms).toISOString());

/** One open buffer or outstanding batch: what an operator scans for. */
export interface BufferView {
  conversation: string;
  /** The conversation as logs show it (masked unless LULL_LOG_PII). */
  label: string;
  partition: number;
  size: number;
  bytes: number;
  firstAt: string | null;
  lastAt: string | null;
  /** Since the first buffered message; null without an open buffer. */
  ageMs: number | null;
  flushAt: string | null;
  dueAt: string | null;
  /** Until claimable; negative = overdue (the next sweep takes it). */
  dueInMs: number | null;
  attempts: number;
  batch: {
    batchId: string;
    fence: number;
    attempt: number;
    reason: FlushReason;
    size: number;
    inFlight: boolean;
    nextAttemptAt: string | null;
    lastError: string | null;
  } | null;
}

/** The {@link BufferView} of one conversation's state. */
export function bufferView(s: ConversationState, label: string): BufferView {
  const now = s.nowMs;
  const dueAtMs = s.dueAtMs ?? s.batch?.nextAttemptAtMs ?? s.buffer?.flushAtMs ?? null;
  const firstAtMs = s.buffer ? Date.parse(s.buffer.firstAt) : Number.NaN;
  return {
    conversation: s.conversation,
    label,
    partition: s.partition,
    size: s.buffer?.size ?? 0,
    bytes: s.buffer?.bytes ?? 0,
    firstAt: s.buffer?.firstAt ?? null,
    lastAt: s.buffer?.lastAt ?? null,
    ageMs: Number.isNaN(firstAtMs) ? null : Math.max(0, now - firstAtMs),
    flushAt: iso(s.buffer?.flushAtMs),
    dueAt: iso(dueAtMs),
    dueInMs: dueAtMs === null ? null : dueAtMs - now,
    attempts: s.batch?.attempt ?? 0,
    batch: s.batch
      ? {
        batchId: s.batch.batchId,
        fence: s.batch.fence,
        attempt: s.batch.attempt,
        reason: s.batch.reason,
        size: s.batch.size,
        inFlight: s.batch.inFlight,
        nextAttemptAt: iso(s.batch.nextAttemptAtMs),
        lastError: s.batch.lastError,
      }
      : null,
  };
}

/** How many `inspect` calls {@link listBufferViews} runs at once (bounded to spare Redis). */
const INSPECT_CONCURRENCY = 16;

/** What {@link listBufferViews} found. */
export interface BufferListing {
  /** Soonest due first; rows with nothing scheduled last. */
  rows: BufferView[];
  /** More conversations were listed than `maxRows`; the rest were not inspected. */
  truncated: boolean;
  /** Store time of the first inspection; null when nothing was inspected. */
  nowMs: number | null;
}

/**
 * Every conversation with an open buffer or an outstanding batch: up to `limitPerPartition`
 * listed in each partition, of which the first `maxRows` (in partition order) are inspected.
 */
export async function listBufferViews(
  store: Pick<BufferStore, "listConversations" | "inspect">,
  options: {
    partitions: number;
    limitPerPartition: number;
    /**
     * How many listed conversations to inspect at most.
     * @default Infinity
     */
    maxRows?: number;
    /** The `label` of a conversation (masked unless LULL_LOG_PII). */
    label: (conversation: string) => string;
  },
): Promise<BufferListing> {
  const { partitions, limitPerPartition, maxRows = Infinity, label } = options;
  const perPartition = await Promise.all(
    Array.from({ length: partitions }, (_, p) => store.listConversations(p, limitPerPartition)),
  );
  const all = perPartition.flat();
  const chosen = all.slice(0, maxRows);
  const states: ConversationState[] = [];
  for (let i = 0; i < chosen.length; i += INSPECT_CONCURRENCY) {
    const chunk = chosen.slice(i, i + INSPECT_CONCURRENCY);
    states.push(...await Promise.all(chunk.map((c) => store.inspect(c))));
  }
  const rows = states
    .filter((s) => s.buffer !== null || s.batch !== null)
    .map((s) => bufferView(s, label(s.conversation)))
    .sort((a, b) => (a.dueInMs ?? Infinity) - (b.dueInMs ?? Infinity));
  return { rows, truncated: all.length > chosen.length, nowMs: states[0]?.nowMs ?? null };
}

/** A dead letter without its messages (the list view). */
export type DeadLetterSummary = Omit<DeadLetter, "messages"> & { label: string; size: number };

/** The {@link DeadLetterSummary} of a dead letter. */
export function deadLetterSummary(d: DeadLetter, label: string): DeadLetterSummary {
  const { messages, ...rest } = d;
  return { ...rest, label, size: messages.length };
}
