import { describe, expect, it } from "vitest";
import { createHmac } from "node:crypto";
import { signDelivery, verifyDelivery } from "../../src/delivery/signature.ts";

const body = JSON.stringify({ batchId: "b_1", text: "hi\nthere", messages: [] });
const nowMs = 1_763_805_600_000;
const nowSec = nowMs / 1000;

describe("signDelivery", () => {
  it("is t=<unix s>,v1=<hex HMAC-SHA256(secret, '<t>.<body>')>", async () => {
    const sig = await signDelivery("s3cret", body, nowSec);
    const expected = createHmac("sha256", "s3cret").update(`${nowSec}.${body}`).digest("hex");
    expect(sig).toBe(`t=${nowSec},v1=${expected}`);
  });
});

describe("verifyDelivery", () => {
  it("accepts a good signature, from headers or the raw value, string or bytes", async () => {
    const sig = await signDelivery("s3cret", body, nowSec);
    expect(await verifyDelivery({ signature: sig, rawBody: body, secrets: "s3cret", nowMs }))
      .toEqual({ ok: true, timestampSec: nowSec });
    const headers = new Headers({ "X-Lull-Signature": sig });
    const bytes = new TextEncoder().encode(body);
    expect((await verifyDelivery({ headers, rawBody: bytes, secrets: ["s3cret"], nowMs })).ok)
      .toBe(true);
    expect(
      (await verifyDelivery({
        headers: { "x-lull-signature": sig },
        rawBody: body,
        secrets: "s3cret",
        nowMs,
      })).ok,
    ).toBe(true);
  });

  it("rejects a wrong secret", async () => {
    const sig = await signDelivery("other", body, nowSec);
    expect(await verifyDelivery({ signature: sig, rawBody: body, secrets: "s3cret", nowMs }))
      .toEqual({ ok: false, reason: "mismatch" });
  });

  it("accepts any of the rotated secrets (comma list or array)", async () => {
    const oldSig = await signDelivery("old", body, nowSec);
    const newSig = await signDelivery("new", body, nowSec);
    for (const sig of [oldSig, newSig]) {
      expect(
        (await verifyDelivery({ signature: sig, rawBody: body, secrets: "new, old", nowMs }))
          .ok,
      ).toBe(true);
      expect(
        (await verifyDelivery({ signature: sig, rawBody: body, secrets: ["old", "new"], nowMs }))
          .ok,
      ).toBe(true);
    }
    expect((await verifyDelivery({ signature: oldSig, rawBody: body, secrets: "new", nowMs })).ok)
      .toBe(false);
  });

  it("rejects timestamps outside the 5-minute window, both ways", async () => {
    const old = await signDelivery("s3cret", body, nowSec - 301);
    const future = await signDelivery("s3cret", body, nowSec + 301);
    const edge = await signDelivery("s3cret", body, nowSec - 300);
    for (const sig of [old, future]) {
      expect(await verifyDelivery({ signature: sig, rawBody: body, secrets: "s3cret", nowMs }))
        .toEqual({ ok: false, reason: "expired" });
    }
    expect((await verifyDelivery({ signature: edge, rawBody: body, secrets: "s3cret", nowMs })).ok)
      .toBe(true);
    expect(
      (await verifyDelivery({
        signature: old,
        rawBody: body,
        secrets: "s3cret",
        nowMs,
        toleranceSec: 600,
      })).ok,
    ).toBe(true);
  });

  it("rejects a tampered body or timestamp", async () => {
    const sig = await signDelivery("s3cret", body, nowSec);
    expect(
      await verifyDelivery({ signature: sig, rawBody: body + " ", secrets: "s3cret", nowMs }),
    ).toEqual({ ok: false, reason: "mismatch" });
    const shifted = sig.replace(`t=${nowSec}`, `t=${nowSec + 1}`);
    expect(
      (await verifyDelivery({ signature: shifted, rawBody: body, secrets: "s3cret", nowMs })).ok,
    ).toBe(false);
  });

  it("rejects missing or malformed signatures and an empty secret list", async () => {
    const sig = await signDelivery("s3cret", body, nowSec);
    expect(await verifyDelivery({ rawBody: body, secrets: "s3cret", nowMs }))
      .toEqual({ ok: false, reason: "missing_signature" });
    for (const bad of ["garbage", `t=${nowSec}`, "v1=abcd", `t=abc,v1=${"0".repeat(64)}`]) {
      expect(await verifyDelivery({ signature: bad, rawBody: body, secrets: "s3cret", nowMs }))
        .toEqual({ ok: false, reason: "malformed_signature" });
    }
    expect(await verifyDelivery({ signature: sig, rawBody: body, secrets: " , ", nowMs }))
      .toEqual({ ok: false, reason: "no_secrets" });
  });
});
