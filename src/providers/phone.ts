/**
 * Phone numbers to one conversation key. The same person writes (or a provider sends) the same
 * number in many shapes: `0501234567`, `966501234567`, `00966501234567`, `+966 50 123 4567`,
 * `whatsapp:+966501234567`. All of them must land in one conversation, so they are reduced to
 * E.164 digits without the `+`.
 */
import { ValidationError } from "../core/errors.ts";

/** Separators people put in numbers: spaces (incl. no-break/thin), dashes, dots, slashes. */
const SEPARATORS = /[\s\u00a0\u2000-\u200f\u2010-\u2015\u2212\u202f\-./]/g;

/** Arabic-Indic (U+0660..) and Eastern Arabic-Indic (U+06F0..) digits, as typed on Arabic keyboards. */
function toAsciiDigits(s: string): string {
  return s.replace(/[\u0660-\u0669\u06f0-\u06f9]/g, (d) => {
    const code = d.charCodeAt(0);
    return String(code >= 0x06f0 ? code - 0x06f0 : code - 0x0660);
  });
}

/** E.164 allows at most 15 digits; 7 is the shortest real international number (+683 xxxx). */
const E164 = /^[1-9][0-9]{6,14}$/;

/**
 * Normalises a phone number to E.164 digits without `+`.
 *
 * - `+<digits>` and `00<digits>` are international: the prefix is stripped.
 * - A single leading `0` is national (trunk) form: it is replaced by `defaultCountryCode`
 *   (LULL_DEFAULT_COUNTRY_CODE, e.g. `966`), so `0501234567` becomes `966501234567`.
 * - Bare digits without a prefix are taken as already international, which is how WhatsApp
 *   (`from`) and most APIs send them.
 * - Spaces, dashes, dots, slashes and parentheses are ignored; an international number
 *   written with a trunk `(0)` (`+966 (0)50 ...`) drops it; Arabic-Indic digits are read.
 *
 * @throws ValidationError when anything else is in the string or the result is not 7-15 digits.
 */
export function normalizePhone(raw: string, defaultCountryCode: string): string {
  const invalid = (why: string) =>
    new ValidationError(`invalid phone number: ${why}`, [{ path: [], message: why }]);
  if (typeof raw !== "string") throw invalid("not a string");
  if (!/^[1-9][0-9]{0,3}$/.test(defaultCountryCode)) {
    throw invalid("default country code must be 1-4 digits");
  }
  let s = toAsciiDigits(raw).trim().replace(SEPARATORS, "");
  let international = false;
  if (s.startsWith("+")) {
    international = true;
    s = s.slice(1);
  }
  // "(0)" is the trunk prefix shown inside international numbers; never dialled with them.
  if (international) s = s.replace(/^([0-9]{1,4})\(0\)/, "$1");
  s = s.replace(/[()]/g, "");
  if (!/^[0-9]+$/.test(s)) throw invalid("only digits, +, and separators are allowed");
  if (!international) {
    if (s.startsWith("00")) s = s.slice(2);
    else if (s.startsWith("0")) s = defaultCountryCode + s.slice(1);
  }
  if (!E164.test(s)) throw invalid("must be 7-15 digits with a country code");
  return s;
}
