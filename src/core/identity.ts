/**
 * Identity rules for the two strings lull keys everything by: the conversation key and the
 * provider message id. Both become Redis keys or set members (UTF-8 on the wire) and Postgres
 * text (the outbox), so each must survive that round trip unchanged:
 * - no lone UTF-16 surrogates: UTF-8 cannot encode them, every client replaces them with U+FFFD,
 *   and two different ids would collapse into one (the second answered "duplicate", never
 *   delivered);
 * - no NUL: Postgres text cannot hold it.
 * Anything else (emoji, RTL text, `{}:` and spaces) is fine: keys.ts percent-encodes.
 */
import { ValidationError } from "./errors.ts";

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why `value` cannot be an identity, or null when it can. */
export function identityProblem(value: string): string | null {
  if (LONE_SURROGATE.test(value)) return "contains a lone UTF-16 surrogate (not valid Unicode)";
  if (value.includes("\u0000")) return "contains a NUL character";
  return null;
}

/**
 * Throws {@link ValidationError} naming the field of the first message whose conversation key or
 * id cannot round-trip. `prefix` is the path of the message list in the request, if any.
 */
export function assertIdentities(
  messages: readonly { conversation: string; id: string }[],
  prefix: (string | number)[] = [],
): void {
  const issues: { path: (string | number)[]; message: string }[] = [];
  messages.forEach((m, i) => {
    const at = messages.length > 1 ? [...prefix, i] : prefix;
    for (const field of ["conversation", "id"] as const) {
      const problem = identityProblem(m[field]);
      if (problem) issues.push({ path: [...at, field], message: `${field} ${problem}` });
    }
  });
  if (issues.length > 0) {
    throw new ValidationError(`invalid message identity: ${issues[0]!.message}`, issues);
  }
}
