/**
 * The URL and Supabase-function processors against a real local HTTP server: exact body and
 * headers, and the mapping of every kind of answer to a delivery outcome.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Batch } from "../../src/core/types.ts";
import { createFunctionProcessor } from "../../src/delivery/function-processor.ts";
import { createHttpProcessor } from "../../src/delivery/http-processor.ts";
import { verifyDelivery } from "../../src/delivery/signature.ts";
import { freePort } from "../harness/redis-server.ts";
import { type ProcessorServer, startProcessorServer } from "../e2e/processor-server.ts";

const batch: Batch = {
  batchId: "b_test_1",
  conversation: "support:42",
  fence: 7,
  attempt: 1,
  reason: "quiet",
  degraded: false,
  firstAt: "2026-11-22T10:00:00.000Z",
  lastAt: "2026-11-22T10:00:02.000Z",
  text: "hi\nI want\npizza",
  messages: [{
    id: "m-1",
    provider: "generic",
    text: "hi",
    receivedAt: "2026-11-22T10:00:00.000Z",
    attachments: [],
    meta: {},
  }],
};

let server: ProcessorServer;
beforeAll(async () => {
  server = await startProcessorServer();
});
afterAll(async () => {
  await server?.close();
});

const signal = () => new AbortController().signal;

const cases: [number, Record<string, string>, unknown][] = [
  [200, {}, { kind: "delivered" }],
  [204, {}, { kind: "delivered" }],
  [409, {}, { kind: "delivered" }],
  [425, {}, { kind: "supersede" }],
  [400, {}, { kind: "permanent", error: "processor answered 400" }],
  [401, {}, { kind: "permanent", error: "processor answered 401" }],
  [403, {}, { kind: "permanent", error: "processor answered 403" }],
  [404, {}, { kind: "permanent", error: "processor answered 404" }],
  [422, {}, { kind: "permanent", error: "processor answered 422" }],
  [408, {}, { kind: "retry", error: "processor answered 408" }],
  [429, { "retry-after": "7" }, {
    kind: "retry",
    error: "processor answered 429",
    retryAfterMs: 7000,
  }],
  [500, {}, { kind: "retry", error: "processor answered 500" }],
  [503, { "retry-after": "2" }, {
    kind: "retry",
    error: "processor answered 503",
    retryAfterMs: 2000,
  }],
];

describe("createHttpProcessor", () => {
  it("POSTs exactly the batch with Idempotency-Key, X-Lull-Fence and a verifiable signature", async () => {
    server.respond(() => ({ status: 200 }));
    const before = server.deliveries.length;
    const processor = createHttpProcessor({
      url: server.url + "hook",
      secrets: ["first", "second"],
      timeoutMs: 2000,
    });
    expect(await processor(batch, signal())).toEqual({ kind: "delivered" });
    const d = server.deliveries[before]!;
    expect(d.rawBody).toBe(JSON.stringify(batch));
    expect(d.batch).toEqual(batch);
    expect(d.headers["content-type"]).toBe("application/json");
    expect(d.headers["idempotency-key"]).toBe("b_test_1");
    expect(d.headers["x-lull-fence"]).toBe("7");
    expect(d.headers["x-lull-signature"]).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(
      (await verifyDelivery({
        signature: d.headers["x-lull-signature"],
        rawBody: d.rawBody,
        secrets: "first",
      })).ok,
    ).toBe(true);
    // Signed with the first secret only.
    expect(
      (await verifyDelivery({
        signature: d.headers["x-lull-signature"],
        rawBody: d.rawBody,
        secrets: "second",
      })).ok,
    ).toBe(false);
  });

  it.each(cases)("maps %i to its outcome", async (status, headers, outcome) => {
    server.respond(() => ({ status, headers, body: "" }));
    const processor = createHttpProcessor({ url: server.url, secrets: ["s"], timeoutMs: 2000 });
    expect(await processor(batch, signal())).toEqual(outcome);
  });

  it("a failure carries the processor's response body, capped at 2 KiB; a success does not", async () => {
    const processor = createHttpProcessor({ url: server.url, secrets: ["s"], timeoutMs: 2000 });
    server.respond(() => ({ status: 422, body: '{"error":"bad"}' + " ".repeat(5000) + "TAIL" }));
    const permanent = await processor(batch, signal());
    expect(permanent).toMatchObject({ kind: "permanent", error: "processor answered 422" });
    const body = (permanent as { responseBody?: string }).responseBody ?? "";
    expect(body.startsWith('{"error":"bad"}')).toBe(true);
    expect(body.length).toBe(2048);
    expect(body).not.toContain("TAIL");
    server.respond(() => ({ status: 503, body: "upstream down" }));
    expect(await processor(batch, signal())).toEqual({
      kind: "retry",
      error: "processor answered 503",
      responseBody: "upstream down",
    });
    server.respond(() => ({ status: 200, body: "fine" }));
    expect(await processor(batch, signal())).toEqual({ kind: "delivered" });
  });

  it("a processor slower than the timeout is a retry", async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    server.respond(async () => {
      await held;
      return { status: 200 };
    });
    try {
      const processor = createHttpProcessor({ url: server.url, secrets: ["s"], timeoutMs: 100 });
      expect(await processor(batch, signal())).toEqual({
        kind: "retry",
        error: "processor timed out",
      });
    } finally {
      release();
    }
  });

  it("an unreachable processor is a retry", async () => {
    const port = await freePort();
    const processor = createHttpProcessor({
      url: `http://127.0.0.1:${port}/`,
      secrets: ["s"],
      timeoutMs: 2000,
    });
    const outcome = await processor(batch, signal());
    expect(outcome.kind).toBe("retry");
    expect((outcome as { error: string }).error).toMatch(/^processor unreachable/);
  });
});

describe("createFunctionProcessor (supabase-js functions.invoke)", () => {
  const make = () =>
    createFunctionProcessor({
      supabaseUrl: server.url.replace(/\/$/, ""),
      serviceRoleKey: "service-role-key",
      name: "my-processor",
      secrets: ["fsecret"],
      timeoutMs: 2000,
    });

  it("invokes /functions/v1/<name> with the same body and signed headers", async () => {
    server.respond(() => ({ status: 200, body: '{"ok":true}' }));
    const before = server.deliveries.length;
    expect(await make()(batch, signal())).toEqual({ kind: "delivered" });
    const d = server.deliveries[before]!;
    expect(d.rawBody).toBe(JSON.stringify(batch));
    expect(d.headers["content-type"]).toBe("application/json");
    expect(d.headers["idempotency-key"]).toBe("b_test_1");
    expect(d.headers["x-lull-fence"]).toBe("7");
    expect(d.headers["authorization"]).toBe("Bearer service-role-key");
    expect(
      (await verifyDelivery({
        signature: d.headers["x-lull-signature"],
        rawBody: d.rawBody,
        secrets: "fsecret",
      })).ok,
    ).toBe(true);
  });

  it.each(cases)(
    "maps %i to its outcome like the URL processor",
    async (status, headers, outcome) => {
      server.respond(() => ({ status, headers, body: "" }));
      expect(await make()(batch, signal())).toEqual(outcome);
    },
  );

  it("a Supabase relay error is a retry whatever its status", async () => {
    server.respond(() => ({ status: 400, headers: { "x-relay-error": "true" } }));
    expect(await make()(batch, signal())).toEqual({
      kind: "retry",
      error: "supabase relay error 400",
      responseBody: "{}",
    });
    server.respond(() => ({ status: 422, body: "no such tool" }));
    expect(await make()(batch, signal())).toEqual({
      kind: "permanent",
      error: "processor answered 422",
      responseBody: "no such tool",
    });
  });
});
