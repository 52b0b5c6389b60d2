/**
 * PII masking at the source: phone numbers, chat ids and text never reach logs or the event
 * stream in clear unless LULL_LOG_PII=true.
 */

/**
 * Masks a conversation key: keeps the namespace before the first `:` and the last 2 characters
 * of the id, replacing the rest with `*` (e.g. `whatsapp:966501234567` -> `whatsapp:**********67`).
 */
export function maskConversation(conversation: string, showPii: boolean): string {
  if (showPii) return conversation;
  const colon = conversation.indexOf(":");
  const ns = colon >= 0 ? conversation.slice(0, colon + 1) : "";
  const id = [...(colon >= 0 ? conversation.slice(colon + 1) : conversation)];
  const keep = id.length > 4 ? 2 : 0;
  return ns + "*".repeat(Math.max(id.length - keep, 1)) + id.slice(id.length - keep).join("");
}

/** Masks free text: only its length survives. */
export function maskText(text: string, showPii: boolean): string {
  return showPii ? text : `<${[...text].length} chars>`;
}
