/**
 * Conversation keys are PII (phone numbers, chat ids). Responses carry the raw key in
 * `conversation`, because an operator needs it to act (inspect, force-flush), and a masked
 * `label` (raw only with LULL_LOG_PII) that the dashboard displays, so a screen share or
 * screenshot does not leak numbers. Message texts get a `textLabel` the same way.
 */
import { maskConversation, maskText } from "../../core/mask.ts";
import type { AppContext } from "../context.ts";

/** The conversation as the dashboard shows it (masked unless LULL_LOG_PII). */
export function label(ctx: AppContext, conversation: string): string {
  return maskConversation(conversation, ctx.config.logPii);
}

/**
 * Messages with a `textLabel` beside `text`: what the dashboard shows (masked unless
 * LULL_LOG_PII), like `label` beside `conversation`.
 */
export function labelledMessages<M extends { text: string }>(ctx: AppContext, messages: M[]) {
  return messages.map((m) => ({ ...m, textLabel: maskText(m.text, ctx.config.logPii) }));
}
