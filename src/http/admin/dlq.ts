/**
 * The dead-letter routes: list (`GET dlq`), read and delete one (`/dlq/:batchId`), and requeue
 * one (`POST dlq/:batchId/requeue`). Changes are audited.
 */
import { DeadLetterNotFoundError } from "../../core/errors.ts";
import { json } from "../../core/respond.ts";
import { deadLetterSummary } from "../../core/views.ts";
import { audited } from "./audit.ts";
import type { AdminHandler } from "./context.ts";
import { label, labelledMessages } from "./labels.ts";
import { getOnly, methodNotAllowed, parseLimit } from "./request.ts";

/** `GET dlq?limit=`: dead letters without their messages. */
export const dlqListRoute = getOnly(async ({ ctx, url }) => {
  const list = await ctx.store.dlqList({ limit: parseLimit(url) });
  return json(200, {
    deadLetters: list.map((d) => deadLetterSummary(d, label(ctx, d.conversation))),
    count: list.length,
  });
});

/** `GET|HEAD|DELETE dlq/:batchId`: one dead letter with its messages, or its removal. */
export const dlqItemRoute: AdminHandler = async ({ ctx, actor, param }, m) => {
  const batchId = param("batchId");
  if (m === "GET" || m === "HEAD") {
    const d = await ctx.store.dlqGet(batchId);
    if (!d) throw new DeadLetterNotFoundError(batchId);
    return json(200, {
      ...d,
      messages: labelledMessages(ctx, d.messages),
      label: label(ctx, d.conversation),
    });
  }
  if (m === "DELETE") {
    await audited(ctx, { actor, action: "dlq_delete", target: batchId }, async () => {
      if (!(await ctx.store.dlqDelete(batchId))) throw new DeadLetterNotFoundError(batchId);
    });
    ctx.logger.info("dead letter deleted by admin", { batchId });
    return json(200, { deleted: true, batchId });
  }
  return methodNotAllowed(["GET", "HEAD", "DELETE"]);
};

/** `POST dlq/:batchId/requeue`: the dead letter back into its conversation's buffer. */
export const dlqRequeueRoute: AdminHandler = async ({ ctx, actor, param }, m) => {
  const batchId = param("batchId");
  if (m !== "POST") return methodNotAllowed(["POST"]);
  const { conversation } = await audited(
    ctx,
    { actor, action: "dlq_requeue", target: batchId },
    () => ctx.store.dlqRequeue(batchId),
    (r) => ({ result: "ok", detail: `conversation ${label(ctx, r.conversation)}` }),
  );
  ctx.logger.info("dead letter requeued by admin", {
    batchId,
    conversation: label(ctx, conversation),
  });
  return json(200, { requeued: true, batchId, conversation, label: label(ctx, conversation) });
};
