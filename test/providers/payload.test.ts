/**
 * Body decoding shared by every adapter: strict UTF-8 with one decoder reused across requests,
 * so a rejected body must leave nothing behind for the next one.
 */
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/core/errors.ts";
import { decodeUtf8, parseJsonBody } from "../../src/providers/payload.ts";

const bytes = (...b: number[]) => new Uint8Array(b);

describe("decodeUtf8", () => {
  it("rejects invalid UTF-8, and a truncated sequence does not leak into the next body", () => {
    // 0xE2 0x82 starts a three-byte sequence (€ is E2 82 AC) and stops short.
    expect(() => decodeUtf8(bytes(0xe2, 0x82))).toThrow(ValidationError);
    expect(decodeUtf8(bytes(0xac, 0x41).subarray(1))).toBe("A");
    expect(() => decodeUtf8(bytes(0xac))).toThrow(ValidationError);
    expect(decodeUtf8(new TextEncoder().encode("€ ok"))).toBe("€ ok");
  });

  it("a JSON body in valid UTF-8 parses; one in invalid UTF-8 is a ValidationError", () => {
    expect(parseJsonBody(new TextEncoder().encode('{"text":"héllo"}'))).toEqual({ text: "héllo" });
    expect(() => parseJsonBody(bytes(0x7b, 0xff, 0x7d))).toThrow(/not valid UTF-8/);
  });
});
