/**
 * `/conversations/:conversation`: GET inspects one conversation's state; DELETE purges it
 * everywhere lull keeps it (a privacy request, audited; see src/http/purge.ts).
 */
import { conversationFingerprint } from "../../core/audit.ts";
import { LullError } from "../../core/errors.ts";
import { json } from "../../core/respond.ts";
import type { Outbox } from "../../outbox/outbox.ts";
import { purgeConversationEverywhere, purgeDetail } from "../purge.ts";
import { audited } from "./audit.ts";
import type { AdminContext, AdminHandler } from "./context.ts";
import { label, labelledMessages } from "./labels.ts";
import { getOnly } from "./request.ts";

/** `GET conversations/:conversation`: its buffer, batch and deadlines, texts labelled. */
export const inspectRoute = getOnly(async ({ ctx, param }) => {
  const state = await ctx.store.inspect(param("conversation"));
  const buffer = state.buffer
    ? { ...state.buffer, messages: labelledMessages(ctx, state.buffer.messages) }
    : null;
  return json(200, { ...state, buffer, label: label(ctx, state.conversation) });
});

/** The outbox a purge must clear, or undefined when no database is configured. */
function purgeOutbox(ctx: AdminContext): Pick<Outbox, "purgeConversation"> | undefined {
  const outbox = ctx.outbox?.outbox;
  if (!outbox) return undefined;
  if (!outbox.purgeConversation) {
    throw new LullError("outbox_unsupported", "the configured outbox cannot purge");
  }
  return { purgeConversation: (c) => outbox.purgeConversation!(c) };
}

/** `DELETE conversations/:conversation` (the route table sends only DELETE here). */
export const purgeRoute: AdminHandler = async ({ ctx, actor, param }) => {
  const conversation = param("conversation");
  const purged = await audited(
    ctx,
    {
      actor,
      action: "purge_conversation",
      target: label(ctx, conversation),
      subject: await conversationFingerprint(conversation),
    },
    () => purgeConversationEverywhere(ctx.store, purgeOutbox(ctx), conversation),
    (p) => ({ result: "ok", detail: purgeDetail(p) }),
  );
  ctx.logger.info("conversation purged by admin", { conversation: label(ctx, conversation) });
  return json(200, { purged: true, ...purged, label: label(ctx, conversation) });
};
