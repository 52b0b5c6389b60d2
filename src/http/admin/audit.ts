/**
 * The audit trail of admin actions: {@link audited} wraps every change an admin route makes, and
 * `GET audit` reads the newest records back.
 */
import { runAudited } from "../../core/audit.ts";
import { json } from "../../core/respond.ts";
import type { AuditEntry } from "../../core/types.ts";
import type { AppContext } from "../context.ts";
import { getOnly, parseLimit } from "./request.ts";

/** Runs an admin action and audits it (see runAudited); a failed audit write is logged. */
export function audited<T>(
  ctx: AppContext,
  entry: Omit<AuditEntry, "result">,
  run: () => Promise<T>,
  resultOf?: (value: T) => { result: string; detail?: string } | null,
): Promise<T> {
  return runAudited(
    ctx.store,
    entry,
    run,
    resultOf,
    (err) =>
      ctx.logger.error("could not write the audit record", {
        action: entry.action,
        actor: entry.actor,
        error: err instanceof Error ? err.message : String(err),
      }),
  );
}

/** `GET audit?limit=`: the newest audit records, newest first. */
export const auditRoute = getOnly(async ({ ctx, url }) => {
  const records = await ctx.store.readAudit({ limit: parseLimit(url) });
  return json(200, { audit: records, count: records.length });
});
