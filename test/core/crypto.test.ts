import { createHmac } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hmacBase64, hmacHex, timingSafeEqual } from "../../src/core/crypto.ts";

describe("timingSafeEqual", () => {
  it.each([
    ["", "", true],
    ["abc", "abc", true],
    ["abc", "abd", false],
    ["abc", "ab", false],
    ["ab", "abc", false],
    ["", "a", false],
    ["ü", "ü", true],
    ["ü", "u", false],
    // Same UTF-16 length, different bytes.
    ["\u00e9", "e\u0301", false],
  ])("%j vs %j -> %s", (a, b, expected) => {
    expect(timingSafeEqual(a, b)).toBe(expected);
  });

  it("agrees with === on arbitrary strings", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (a, b) => timingSafeEqual(a, b) === (a === b)),
      { numRuns: 200 },
    );
  });
});

describe("hmac helpers (cross-checked against node:crypto)", () => {
  it("hmacHex SHA-256 and hmacBase64 SHA-1 match node:crypto for arbitrary keys and data", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string(), fc.string(), async (key, data) => {
        const hex = await hmacHex("SHA-256", key, data);
        const b64 = await hmacBase64("SHA-1", key, data);
        expect(hex).toBe(createHmac("sha256", key).update(data, "utf8").digest("hex"));
        expect(b64).toBe(createHmac("sha1", key).update(data, "utf8").digest("base64"));
      }),
      { numRuns: 50 },
    );
  });

  it("signs raw bytes as given (no re-encoding)", async () => {
    const bytes = new Uint8Array([0xff, 0x00, 0xc3, 0x28]);
    expect(await hmacHex("SHA-256", "k", bytes)).toBe(
      createHmac("sha256", "k").update(bytes).digest("hex"),
    );
  });
});
