/**
 * The handler in process (real routes, Flusher and breakers over a MemoryStore that can be made
 * to fail like Redis): routing, answer shapes, auth, validation, and the degraded paths.
 */
import { describe, expect, it } from "vitest";
import { makeTestApp, req } from "./fixture.ts";

const msg = (conversation: string, id: string, text = "hi") => ({ conversation, id, text });

async function errorOf(
  res: Response,
): Promise<{ code: string; message: string; issues?: unknown[] }> {
  expect(res.headers.get("content-type")).toContain("application/json");
  const body = await res.json() as { error: { code: string; message: string; issues?: unknown[] } };
  return body.error;
}

describe("routing", () => {
  it("serves /lull/... and /functions/v1/lull/..., with or without a trailing slash", async () => {
    const t = makeTestApp();
    for (const url of ["/lull/health", "/functions/v1/lull/health", "/lull/health/"]) {
      const res = await t.handler(new Request(`http://127.0.0.1${url}`));
      expect(res.status).toBe(200);
    }
  });

  it("answers 404 JSON for unknown routes", async () => {
    const t = makeTestApp();
    for (
      const url of [
        "/lull/nope",
        "/",
        "/other/health",
        "/lull/conversations/",
        "/lull/conversations/a/b",
      ]
    ) {
      const res = await t.handler(new Request(`http://127.0.0.1${url}`));
      expect(res.status).toBe(404);
      expect((await errorOf(res)).code).toBe("not_found");
    }
  });

  it("answers 405 with Allow for a wrong method", async () => {
    const t = makeTestApp();
    const get = await t.handler(req("/messages"));
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST");
    expect((await errorOf(get)).code).toBe("method_not_allowed");
    const del = await t.handler(req("/webhooks/whatsapp", { method: "DELETE" }));
    expect(del.status).toBe(405);
    expect(del.headers.get("allow")).toBe("GET, POST");
    const flush = await t.handler(req("/flush"));
    expect(flush.status).toBe(405);
  });

  it("hides provider routes whose secret is unset (404, whatever the method or auth)", async () => {
    const t = makeTestApp({
      LULL_INGEST_TOKEN: "",
      TELEGRAM_WEBHOOK_SECRET: "",
      WHATSAPP_APP_SECRET: "",
      WHATSAPP_VERIFY_TOKEN: "",
      TWILIO_AUTH_TOKEN: "",
    });
    const cases = [
      req("/messages", { method: "POST", json: msg("c", "1"), token: "x" }),
      req("/messages"),
      req("/webhooks/telegram", { method: "POST", json: {} }),
      req("/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1"),
      req("/webhooks/whatsapp", { method: "POST", json: {} }),
      req("/webhooks/twilio", { method: "POST", body: "a=b" }),
    ];
    for (const r of cases) expect((await t.handler(r)).status).toBe(404);
  });

  it("hides the sweep and the conversation route when their secrets are unset", async () => {
    const t = makeTestApp({
      LULL_CRON_SECRET: "",
      LULL_ADMIN_TOKEN: "",
      LULL_PROCESSOR_SECRET: "",
    });
    expect((await t.handler(req("/flush", { method: "POST", token: "" }))).status).toBe(404);
    expect((await t.handler(req("/conversations/c1", { token: "x" }))).status).toBe(404);
  });
});

describe("generic ingest", () => {
  it("answers 202 with accepted, duplicates and buffers, and arms one timer per burst", async () => {
    const t = makeTestApp();
    const first = await t.handler(
      req("/messages", { method: "POST", json: msg("support:42", "m-1"), token: "ingest-b" }),
    );
    expect(first.status).toBe(202);
    const body = await first.json();
    expect(body).toEqual({
      accepted: 1,
      duplicates: 0,
      buffers: [{ conversation: "support:42", size: 1, flushAt: expect.any(String) }],
    });
    expect(Date.parse(body.buffers[0].flushAt)).toBe(t.clock.now() + 8000 + 2000);
    const batch = await t.handler(req("/messages", {
      method: "POST",
      token: "ingest-a",
      json: { messages: [msg("support:42", "m-1"), msg("support:42", "m-2"), msg("b:1", "x")] },
    }));
    expect(batch.status).toBe(202);
    expect(await batch.json()).toMatchObject({
      accepted: 2,
      duplicates: 1,
      buffers: [{ conversation: "support:42", size: 2 }, { conversation: "b:1", size: 1 }],
    });
    // One timer for support:42's burst, one for b:1's.
    expect(t.waited).toHaveLength(2);
  });

  it("401 without or with a wrong bearer token, nothing buffered", async () => {
    const t = makeTestApp();
    for (const token of [undefined, "nope", "ingest-"]) {
      const res = await t.handler(req("/messages", {
        method: "POST",
        json: msg("c:1", "1"),
        ...(token !== undefined ? { token } : {}),
      }));
      expect(res.status).toBe(401);
      expect((await errorOf(res)).code).toBe("unauthorized");
    }
    expect((await t.memory.inspect("c:1")).buffer).toBeNull();
  });

  it("415 for a body that is not JSON-typed", async () => {
    const t = makeTestApp();
    const res = await t.handler(req("/messages", {
      method: "POST",
      headers: { "content-type": "text/plain", authorization: "Bearer ingest-a" },
      body: JSON.stringify(msg("c", "1")),
    }));
    expect(res.status).toBe(415);
    expect((await errorOf(res)).code).toBe("unsupported_media_type");
    const twilio = await t.handler(req("/webhooks/twilio", { method: "POST", json: {} }));
    expect(twilio.status).toBe(415);
  });

  it("400 with zod issues, and nothing of the request is buffered", async () => {
    const t = makeTestApp();
    const res = await t.handler(req("/messages", {
      method: "POST",
      token: "ingest-a",
      json: { messages: [msg("valid:1", "ok"), { conversation: "valid:1" }] },
    }));
    expect(res.status).toBe(400);
    const error = await errorOf(res);
    expect(error.code).toBe("invalid_request");
    expect(error.issues?.length).toBeGreaterThan(0);
    expect((await t.memory.inspect("valid:1")).buffer).toBeNull();
    expect(t.calls).not.toContain("append");
    const notJson = await t.handler(req("/messages", {
      method: "POST",
      token: "ingest-a",
      headers: { "content-type": "application/json" },
      body: "{nope",
    }));
    expect(notJson.status).toBe(400);
  });
});

describe("body cap", () => {
  it("413 when Content-Length already exceeds LULL_MAX_BODY_BYTES", async () => {
    const t = makeTestApp();
    const res = await t.handler(req("/messages", {
      method: "POST",
      token: "ingest-a",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...msg("c", "1"), text: "x".repeat(5000) }),
    }));
    expect(res.status).toBe(413);
    expect((await errorOf(res)).code).toBe("payload_too_large");
  });

  it("413 while streaming: a body that never ends is cut off and cancelled", async () => {
    const t = makeTestApp();
    let pulled = 0;
    let cancelled = false;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new TextEncoder().encode('{"pad":"' + "x".repeat(500)));
      },
      cancel() {
        cancelled = true;
      },
    });
    const res = await t.handler(req("/messages", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer ingest-a" },
      body: endless,
    }));
    expect(res.status).toBe(413);
    expect(cancelled).toBe(true);
    // Cut off just past the 2048-byte cap, not after buffering the stream.
    expect(pulled).toBeLessThanOrEqual(6);
  });

  it("408 when the body has not ended by LULL_BODY_TIMEOUT_MS; the stream is cancelled", async () => {
    const t = makeTestApp({ LULL_BODY_TIMEOUT_MS: "100" });
    let cancelled = false;
    // Sends a first byte, then nothing: only the deadline can end this request.
    const stalled = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("{"));
      },
      cancel() {
        cancelled = true;
      },
    });
    const res = await t.handler(req("/messages", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer ingest-a" },
      body: stalled,
    }));
    expect(res.status).toBe(408);
    expect(res.headers.get("connection")).toBe("close");
    expect((await errorOf(res)).code).toBe("request_timeout");
    expect(cancelled).toBe(true);
    expect(t.calls).not.toContain("append");
  });
});

describe("Redis failures", () => {
  it("timeout: 503 with Retry-After, no fallback delivery (the append may have committed)", async () => {
    const t = makeTestApp();
    t.setStore("timeout");
    const res = await t.handler(
      req("/messages", { method: "POST", json: msg("c:t", "1"), token: "ingest-a" }),
    );
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect((await errorOf(res)).code).toBe("redis_timeout");
    expect(t.delivered).toEqual([]);
  });

  it("unavailable: delivered directly as a degraded one-message batch with a derived batchId", async () => {
    const t = makeTestApp();
    t.setStore("unavailable");
    const send = () =>
      t.handler(req("/messages", {
        method: "POST",
        json: { ...msg("c:u", "m-9", "hello"), sender: "u7", meta: { a: 1 } },
        token: "ingest-a",
      }));
    const res = await send();
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({
      accepted: 1,
      duplicates: 0,
      degraded: 1,
      buffers: [{ conversation: "c:u", size: 0, flushAt: null }],
    });
    expect(t.delivered).toHaveLength(1);
    const b = t.delivered[0]!;
    expect(b).toMatchObject({
      conversation: "c:u",
      fence: 0,
      attempt: 1,
      reason: "fallback",
      degraded: true,
      text: "hello",
    });
    expect(b.batchId).toMatch(/^fb_[0-9a-f]{32}$/);
    expect(b.messages).toEqual([{
      id: "m-9",
      provider: "generic",
      text: "hello",
      sender: "u7",
      receivedAt: new Date(t.clock.now()).toISOString(),
      attachments: [],
      meta: { a: 1 },
    }]);
    await send();
    expect(t.delivered[1]!.batchId).toBe(b.batchId);
    // A different message id gets a different batchId.
    await t.handler(
      req("/messages", { method: "POST", json: msg("c:u", "m-10"), token: "ingest-a" }),
    );
    expect(t.delivered[2]!.batchId).not.toBe(b.batchId);
  });

  it("unavailable and the processor fails too: 503, nothing answered 2xx", async () => {
    const t = makeTestApp();
    t.setStore("unavailable");
    for (
      const outcome of [
        { kind: "retry", error: "down" },
        { kind: "permanent", error: "no" },
        { kind: "supersede" },
      ] as const
    ) {
      t.setProcessor(() => outcome);
      const res = await t.handler(
        req("/messages", { method: "POST", json: msg("c:x", "1"), token: "ingest-a" }),
      );
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
      expect((await errorOf(res)).code).toBe("fallback_failed");
    }
  });

  it("the breaker opens after a few failures (no more Redis calls) and closes after a probe", async () => {
    const t = makeTestApp();
    t.setStore("unavailable");
    const send = (id: string) =>
      t.handler(req("/messages", { method: "POST", json: msg("c:b", id), token: "ingest-a" }));
    for (let i = 0; i < 3; i++) expect((await send(`a${i}`)).status).toBe(202);
    const reached = t.calls.length;
    expect(t.app.ctx.breakers.redis.state).toBe("open");
    expect((await send("b0")).status).toBe(202); // fallback, fast
    expect(t.calls.length).toBe(reached);
    t.setStore("ok");
    t.clock.advance(2000);
    const back = await send("c0");
    expect(back.status).toBe(202);
    expect(await back.json()).toMatchObject({ accepted: 1, buffers: [{ size: 1 }] });
    expect(t.app.ctx.breakers.redis.state).toBe("closed");
  });

  it("an unexpected error is a coded JSON 500 without internals", async () => {
    const t = makeTestApp();
    t.setStore("boom");
    const res = await t.handler(
      req("/messages", { method: "POST", json: msg("c:e", "1"), token: "ingest-a" }),
    );
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({
      error: { code: "internal_error", message: "internal error" },
    });
    expect(text).not.toContain("boom");
    expect(t.logs.some((l) => l.includes("unhandled error"))).toBe(true);
  });
});

describe("flush, conversations, health", () => {
  it("POST /lull/flush needs the cron secret and returns the sweep's counts", async () => {
    const t = makeTestApp();
    expect((await t.handler(req("/flush", { method: "POST", token: "wrong" }))).status).toBe(401);
    // Appended straight to the store: no in-isolate timer exists, only the sweep can flush it.
    await t.memory.append({ conversation: "c:f", id: "1", provider: "generic", text: "hi" });
    t.clock.advance(10_001);
    const res = await t.handler(req("/flush", { method: "POST", token: "cron" }));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ claimed: 1, delivered: 1, errors: 0 });
    expect(t.delivered.map((b) => b.conversation)).toEqual(["c:f"]);
  });

  it("GET /lull/conversations/:key with the admin token or a processor secret", async () => {
    const t = makeTestApp({ LULL_PROCESSOR_SECRET: "p-new,p-old" });
    await t.handler(
      req("/messages", { method: "POST", json: msg("support:7 x", "1"), token: "ingest-a" }),
    );
    const path = `/conversations/${encodeURIComponent("support:7 x")}`;
    expect((await t.handler(req(path))).status).toBe(401);
    expect((await t.handler(req(path, { token: "ingest-a" }))).status).toBe(401);
    for (const token of ["admin", "p-new", "p-old"]) {
      const res = await t.handler(req(path, { token }));
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({
        conversation: "support:7 x",
        buffer: { size: 1 },
        batch: null,
      });
    }
    expect((await t.handler(req("/conversations/%E0%A4%A", { token: "admin" }))).status).toBe(400);
  });

  it("GET /lull/health is deep, never shows secrets, and is 503 when the store is down", async () => {
    const secrets = {
      LULL_INGEST_TOKEN: "zz-ingest-zz",
      LULL_CRON_SECRET: "zz-cron-zz",
      LULL_ADMIN_TOKEN: "zz-admin-zz",
      LULL_PROCESSOR_SECRET: "zz-proc-zz",
      WHATSAPP_VERIFY_TOKEN: "zz-verify-zz",
      LULL_PROCESSOR_URL: "http://zz-processor-host.test/hook",
    };
    const t = makeTestApp(secrets);
    const res = await t.handler(req("/health"));
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(JSON.parse(text)).toMatchObject({
      status: "ok",
      store: { kind: "memory", ok: true },
      breakers: { redis: { state: "closed" }, processor: { state: "closed" } },
      processor: { configured: true, kind: "url" },
    });
    for (const secret of Object.values(secrets)) expect(text).not.toContain(secret);
    expect(text).not.toContain("zz-");
    t.setStore("unavailable");
    const down = await t.handler(req("/health"));
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({
      status: "down",
      store: { ok: false, error: "redis_unavailable" },
    });
  });

  it("counts requests by route and status in the metrics", async () => {
    const t = makeTestApp();
    await t.handler(req("/health"));
    await t.handler(req("/nope"));
    const res = await t.handler(req("/metrics", { token: "admin" }));
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/lull_http_requests_total\{[^}]*route="health"[^}]*\} 1/);
    expect(text).toMatch(/lull_http_requests_total\{[^}]*route="not_found"[^}]*\} 1/);
  });
});

describe("alerts and delivery metrics", () => {
  it("alerts on a dead letter, a breaker opening and a failing fallback", async () => {
    const t = makeTestApp();
    t.setProcessor(() => ({ kind: "permanent", error: "processor answered 422" }));
    await t.memory.append({ conversation: "c:dead", id: "1", provider: "generic", text: "x" });
    t.clock.advance(10_001);
    const sweep = await t.handler(req("/flush", { method: "POST", token: "cron" }));
    expect(await sweep.json()).toMatchObject({ dead: 1 });
    expect(t.alerts.filter((a) => a.startsWith("dead_letter:"))).toHaveLength(1);

    t.setStore("unavailable");
    t.setProcessor(() => ({ kind: "retry", error: "down" }));
    for (let i = 0; i < 3; i++) {
      const res = await t.handler(
        req("/messages", { method: "POST", json: msg("c:a", `m${i}`), token: "ingest-a" }),
      );
      expect(res.status).toBe(503);
    }
    expect(t.alerts.some((a) => a.startsWith("breaker_open_redis:"))).toBe(true);
    expect(t.alerts.filter((a) => a.startsWith("fallback_failed:"))).toHaveLength(3);

    const metrics = await (await t.handler(req("/metrics", { token: "admin" }))).text();
    expect(metrics).toMatch(/lull_deliveries_total\{outcome="dead"\} 1/);
    expect(metrics).toMatch(/lull_fallback_total\{result="failed"\} 3/);
  });
});
