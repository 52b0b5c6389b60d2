/**
 * The Supabase function glue in process: the example processor (verify, dedupe, log), the lull
 * function's answer to an invalid configuration, and the waitUntil shim.
 */
import { describe, expect, it } from "vitest";
import { createLullFunction } from "../../supabase/functions/_shared/lull.ts";
import { createProcessorHandler } from "../../supabase/functions/_shared/lull-processor.ts";
import type { Batch } from "../../src/core/types.ts";
import { signDelivery } from "../../src/delivery/signature.ts";
import { createWaitUntil } from "../../src/runtime/wait-until.ts";

const batch: Batch = {
  batchId: "b_example_1",
  conversation: "support:42",
  fence: 3,
  attempt: 1,
  reason: "quiet",
  degraded: false,
  firstAt: "2026-11-22T10:00:00.000Z",
  lastAt: "2026-11-22T10:00:03.000Z",
  text: "hi\npizza",
  messages: [
    {
      id: "m1",
      provider: "generic",
      text: "hi",
      receivedAt: "2026-11-22T10:00:00.000Z",
      attachments: [],
      meta: {},
    },
    {
      id: "m2",
      provider: "generic",
      text: "pizza",
      receivedAt: "2026-11-22T10:00:03.000Z",
      attachments: [],
      meta: {},
    },
  ],
};
const nowMs = Date.parse("2026-11-22T10:00:13.000Z");

async function post(
  handler: (req: Request) => Promise<Response>,
  body: string,
  signature?: string,
) {
  return await handler(
    new Request("http://127.0.0.1/lull-processor", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(signature ? { "x-lull-signature": signature } : {}),
      },
      body,
    }),
  );
}

describe("example processor (lull-processor)", () => {
  it("verifies the signature, logs one batch line, and dedupes by batchId", async () => {
    const lines: string[] = [];
    const handler = createProcessorHandler({
      secrets: "new,old",
      log: (l) => lines.push(l),
      now: () => nowMs,
    });
    const body = JSON.stringify(batch);
    expect((await post(handler, body)).status).toBe(401);
    expect((await post(handler, body, await signDelivery("wrong", body, nowMs / 1000))).status)
      .toBe(401);
    const sig = await signDelivery("old", body, nowMs / 1000);
    expect((await post(handler, body + " ", sig)).status).toBe(401);
    const ok = await post(handler, body, sig);
    expect(ok.status).toBe(200);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      msg: "batch",
      batchId: "b_example_1",
      conversation: "support:42",
      reason: "quiet",
      attempt: 1,
      size: 2,
      waitMs: 13_000,
      text: "hi\npizza",
    });
    const again = await post(handler, body, sig);
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ ok: true, duplicate: true });
    expect(lines).toHaveLength(1);
  });

  it("rejects non-POST and bodies that are not a batch", async () => {
    const handler = createProcessorHandler({ secrets: "", log: () => {}, now: () => nowMs });
    const get = await handler(new Request("http://127.0.0.1/lull-processor"));
    expect(get.status).toBe(405);
    expect((await post(handler, "{nope")).status).toBe(400);
    expect((await post(handler, '{"hello":1}')).status).toBe(400);
  });
});

describe("lull function glue", () => {
  it("an invalid configuration answers 500 invalid_config naming the variables, not values", async () => {
    const fn = createLullFunction({ LULL_WINDOW_MS: "soon", LULL_INGEST_TOKEN: "tok-secret" });
    const res = await fn.handler(new Request("http://127.0.0.1/lull/health"));
    expect(res.status).toBe(500);
    const text = await res.text();
    const body = JSON.parse(text);
    expect(body.error.code).toBe("invalid_config");
    expect(body.error.message).toContain("LULL_WINDOW_MS");
    expect(text).not.toContain("tok-secret");
    await fn.close();
  });

  it("a valid configuration without Redis serves on the in-memory store", async () => {
    const fn = createLullFunction({ LULL_INGEST_TOKEN: "t" });
    const res = await fn.handler(new Request("http://127.0.0.1/lull/health"));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ store: { kind: "memory", ok: true } });
    await fn.close();
  });
});

describe("waitUntil", () => {
  it("the shim keeps work referenced, logs a rejection instead of throwing, and drains", async () => {
    const errors: string[] = [];
    const logger = {
      debug() {},
      info() {},
      warn() {},
      error: (msg: string, f?: Record<string, unknown>) => errors.push(`${msg} ${f?.error}`),
    };
    const waitUntil = createWaitUntil(logger, undefined);
    expect(waitUntil.kind).toBe("shim");
    let done = false;
    waitUntil(new Promise((r) => setTimeout(r, 20)).then(() => (done = true)));
    waitUntil(Promise.reject(new Error("timer failed")));
    expect(waitUntil.pending).toBe(2);
    await waitUntil.drain();
    expect(done).toBe(true);
    expect(waitUntil.pending).toBe(0);
    expect(errors).toEqual(["background work failed Error: timer failed"]);
  });

  it("uses EdgeRuntime.waitUntil when the platform provides it", async () => {
    const handed: Promise<unknown>[] = [];
    const waitUntil = createWaitUntil(
      { debug() {}, info() {}, warn() {}, error() {} },
      { waitUntil: (p) => void handed.push(p) },
    );
    expect(waitUntil.kind).toBe("edge-runtime");
    waitUntil(Promise.reject(new Error("x")));
    expect(handed).toHaveLength(1);
    // What the platform gets never rejects (the rejection was logged instead).
    await expect(handed[0]).resolves.toBeUndefined();
  });
});
