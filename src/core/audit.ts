/**
 * Who did what, without keeping secrets: the audit log names an admin token by a fingerprint
 * (the first 8 hex digits of its SHA-256), so an operator can tell which token of a rotation
 * list acted while the log itself is worthless to an attacker, and names a purged conversation
 * by a fingerprint of its key, so a privacy request can be matched without the log holding it.
 */

import {
  ConversationBusyError,
  DeadLetterNotFoundError,
  LullError,
  ValidationError,
} from "./errors.ts";
import type { AuditEntry, BufferStore } from "./types.ts";
import { sha256Hex } from "./crypto.ts";

/** `token:<first 8 hex of SHA-256(token)>`: the audit actor for an admin token. */
export async function tokenActor(token: string): Promise<string> {
  return `token:${(await sha256Hex(token)).slice(0, 8)}`;
}

/** First 12 hex of SHA-256 of a conversation key: the audit `subject`. */
export async function conversationFingerprint(conversation: string): Promise<string> {
  return (await sha256Hex(conversation)).slice(0, 12);
}

/**
 * The tokens of a comma list (LULL_ADMIN_TOKEN supports rotation like LULL_INGEST_TOKEN: every
 * listed token is accepted; clients such as the CLI present the first).
 */
export function splitTokens(list: string | undefined): string[] {
  return (list ?? "").split(",").map((t) => t.trim()).filter((t) => t !== "");
}

/** The audit `result` of a thrown error. */
export function auditResult(err: unknown): string {
  if (err instanceof DeadLetterNotFoundError) return "not_found";
  if (err instanceof ConversationBusyError) return "busy";
  if (err instanceof LullError) return `error:${err.code}`;
  return "error";
}

/**
 * A refusal: the action found nothing to act on or was not allowed to start (not found, a
 * batch in flight, invalid input). Like any refused request it changes nothing, so it leaves
 * no audit record either (the function logs have it).
 */
export function isRefusal(err: unknown): boolean {
  return err instanceof DeadLetterNotFoundError || err instanceof ConversationBusyError ||
    err instanceof ValidationError;
}

/**
 * Runs an admin action, then audits it with its result: done (`resultOf`, which may return
 * null for "refused, nothing done"), or failed with an error other than a refusal
 * ({@link isRefusal}), which is recorded as `error:<code>`. The audit write is best effort: the action already happened, so a failed write goes to
 * `onAuditError` (callers log it loudly) rather than turning into the action's failure.
 */
export async function runAudited<T>(
  store: Pick<BufferStore, "recordAudit">,
  entry: Omit<AuditEntry, "result">,
  run: () => Promise<T>,
  resultOf: (value: T) => { result: string; detail?: string } | null = () => ({ result: "ok" }),
  onAuditError: (err: unknown) => void = () => {},
): Promise<T> {
  const write = async (e: AuditEntry) => {
    try {
      await store.recordAudit(e);
    } catch (err) {
      onAuditError(err);
    }
  };
  let value: T;
  try {
    value = await run();
  } catch (err) {
    if (!isRefusal(err)) await write({ ...entry, result: auditResult(err) });
    throw err;
  }
  const r = resultOf(value);
  if (r === null) return value;
  await write({ ...entry, result: r.result, detail: r.detail ?? entry.detail ?? "" });
  return value;
}

/** The audit result of a forced flush: the flusher's outcome status (delivered, dead, ...). */
export function flushAuditResult(outcome: unknown): { result: string; detail?: string } {
  const o = (outcome ?? {}) as { status?: unknown; batchId?: unknown; error?: unknown };
  const status = typeof o.status === "string" ? o.status : "ok";
  const parts = [
    typeof o.batchId === "string" ? `batch ${o.batchId}` : "",
    typeof o.error === "string" ? o.error : "",
  ].filter((p) => p !== "");
  return { result: status === "delivered" ? "ok" : status, detail: parts.join("; ") };
}
