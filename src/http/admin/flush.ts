/**
 * `POST flush`: with `{ "conversation": "..." }`, flush that conversation now even if it is not
 * due (force); with an empty body, run one durable sweep. Both are audited.
 */
import { z } from "zod";
import { conversationFingerprint, flushAuditResult } from "../../core/audit.ts";
import { ValidationError, zodIssues } from "../../core/errors.ts";
import { json } from "../../core/respond.ts";
import { audited } from "./audit.ts";
import type { AdminHandler } from "./context.ts";
import { label } from "./labels.ts";
import { methodNotAllowed, readJsonBody } from "./request.ts";

const flushBodySchema = z.object({
  conversation: z.string().min(1, "must not be empty").max(1024, "is too long").optional(),
});

/** `POST flush`. */
export const flushRoute: AdminHandler = async ({ req, ctx, actor }, m) => {
  if (m !== "POST") return methodNotAllowed(["POST"]);
  const raw = await readJsonBody(req, ctx.config);
  const parsed = flushBodySchema.safeParse(raw ?? {});
  if (!parsed.success) {
    throw new ValidationError(
      'body must be empty or { "conversation": "..." }',
      zodIssues(parsed.error),
    );
  }
  const conversation = parsed.data.conversation;
  if (conversation !== undefined) {
    const outcome = await audited(
      ctx,
      {
        actor,
        action: "flush",
        target: label(ctx, conversation),
        subject: await conversationFingerprint(conversation),
      },
      () => ctx.flusher.flushConversation(conversation, { force: true }),
      (o) => flushAuditResult(o),
    );
    return json(200, { conversation, label: label(ctx, conversation), outcome });
  }
  const sweep = await audited(
    ctx,
    { actor, action: "sweep", target: "" },
    () => ctx.flusher.flushDue(),
    (r) => ({ result: "ok", detail: JSON.stringify(r).slice(0, 500) }),
  );
  return json(200, { sweep });
};
