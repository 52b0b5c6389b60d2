import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/core/errors.ts";
import { normalizePhone } from "../../src/providers/phone.ts";

describe("normalizePhone", () => {
  it.each([
    // One Saudi mobile, every way people and providers write it.
    ["0501234567", "966", "966501234567"],
    ["966501234567", "966", "966501234567"],
    ["00966501234567", "966", "966501234567"],
    ["+966501234567", "966", "966501234567"],
    ["+966 50 123 4567", "966", "966501234567"],
    ["+966-50-123-4567", "966", "966501234567"],
    ["(050) 123.4567", "966", "966501234567"],
    ["+966 (0)50 123 4567", "966", "966501234567"],
    [" 050\u00a0123\u00a04567 ", "966", "966501234567"],
    ["\u0660\u0665\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667", "966", "966501234567"],
    ["00 966 50 123 4567", "966", "966501234567"],
    // The default country code only applies to national (leading single 0) form.
    ["07700 900123", "44", "447700900123"],
    ["+44 7700 900123", "966", "447700900123"],
    ["16315551234", "966", "16315551234"],
    ["+1 (631) 555-1234", "966", "16315551234"],
  ])("%j (default %s) -> %s", (raw, cc, expected) => {
    expect(normalizePhone(raw, cc)).toBe(expected);
  });

  it.each([
    "",
    "   ",
    "+",
    "abc",
    "05012x4567",
    "++966501234567",
    "+0501234567",
    "000966501234567",
    "12345",
    "+9665012345678901234",
    "whatsapp:+966501234567",
    "966501234567;ext=1",
  ])("rejects %j with a ValidationError", (raw) => {
    expect(() => normalizePhone(raw, "966")).toThrow(ValidationError);
  });
});
