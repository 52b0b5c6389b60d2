/**
 * `purge --conversation`: one person's data removed everywhere lull keeps it (a privacy
 * request), shared by the admin route and the CLI acting on Redis directly.
 *
 * Order matters: the outbox rows go first, so an outbox replay cannot bring messages back into
 * Redis after Redis was purged (a replay in progress holds the rows; the delete waits for it,
 * and the Redis purge that follows removes what it appended). An outbox that cannot be reached
 * fails the purge before Redis is touched: nothing is half-done silently.
 */
import type { BufferStore, PurgeResult } from "../core/types.ts";
import type { Outbox } from "../outbox/outbox.ts";

/** What a purge removed; `outboxRows` is null when no database is configured. */
export interface ConversationPurge extends PurgeResult {
  conversation: string;
  outboxRows: number | null;
}

/**
 * Removes `conversation`'s outbox rows (when `outbox` is given), then everything of it in the
 * store (see BufferStore.purgeConversation: the fence is kept; a batch in flight makes it
 * throw ConversationBusyError, after the outbox rows are already gone, which a retry finishes).
 */
export async function purgeConversationEverywhere(
  store: Pick<BufferStore, "purgeConversation">,
  outbox: Pick<Outbox, "purgeConversation"> | undefined,
  conversation: string,
): Promise<ConversationPurge> {
  const outboxRows = outbox ? await outbox.purgeConversation(conversation) : null;
  const removed = await store.purgeConversation(conversation);
  return { conversation, ...removed, outboxRows };
}

/** A one-line summary of a purge for the audit `detail` (counts only, no content). */
export function purgeDetail(p: ConversationPurge): string {
  return `buffered ${p.buffered}, batch ${p.batchMessages}, dedup ids ${p.dedupIds}, ` +
    `events ${p.events}, dead letters ${p.deadLetters}, outbox rows ${p.outboxRows ?? "n/a"}`;
}
