/**
 * The alerter against a real local HTTP server that records what it receives: body shape,
 * rate limiting per kind (on an injected clock), no-op without a URL, and that webhook failures
 * never reach the caller.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createAlerter } from "../../src/observability/alerts.ts";
import { ManualClock } from "../harness/clock.ts";

interface Captured {
  method: string;
  path: string;
  contentType: string | undefined;
  body: unknown;
}

let server: Server;
let baseUrl: string;
const received: Captured[] = [];
/** Status the server answers with (tests flip it to exercise failures). */
let answerStatus = 200;

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      received.push({
        method: req.method ?? "",
        path: req.url ?? "",
        contentType: req.headers["content-type"],
        body: raw ? JSON.parse(raw) : null,
      });
      res.writeHead(answerStatus, { "content-type": "text/plain" });
      res.end(answerStatus === 200 ? "ok" : "no");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  received.length = 0;
  answerStatus = 200;
});

function recordingLogger() {
  const warnings: { msg: string; fields?: Record<string, unknown> }[] = [];
  return {
    warnings,
    warn: (msg: string, fields?: Record<string, unknown>) => warnings.push({ msg, fields }),
  };
}

describe("createAlerter", () => {
  it("posts Slack/Teams-compatible JSON with the kind, text and fields", async () => {
    const alerter = createAlerter({ url: `${baseUrl}/hooks/a`, clock: new ManualClock() });
    await alerter.alert("dead_letter", "batch moved to the DLQ", {
      batchId: "b-1",
      attempts: 20,
    });
    expect(received).toHaveLength(1);
    const [hit] = received;
    expect(hit!.method).toBe("POST");
    expect(hit!.path).toBe("/hooks/a");
    expect(hit!.contentType).toMatch(/^application\/json/);
    expect(Object.keys(hit!.body as object)).toEqual(["text"]);
    const text = (hit!.body as { text: string }).text;
    expect(text).toContain("dead_letter: batch moved to the DLQ");
    expect(text).toContain("batchId: b-1");
    expect(text).toContain("attempts: 20");
  });

  it("rate-limits one kind, not others, and reports how many were suppressed", async () => {
    const clock = new ManualClock();
    const alerter = createAlerter({ url: `${baseUrl}/hooks/b`, clock, minIntervalMs: 60_000 });
    await alerter.alert("breaker_open", "processor breaker opened");
    await alerter.alert("breaker_open", "again");
    await alerter.alert("breaker_open", "and again");
    await alerter.alert("redis_down", "different kind goes through");
    expect(received.map((r) => (r.body as { text: string }).text.split("\n")[0])).toEqual([
      "[lull] breaker_open: processor breaker opened",
      "[lull] redis_down: different kind goes through",
    ]);

    clock.advance(60_000);
    await alerter.alert("breaker_open", "still open");
    expect(received).toHaveLength(3);
    const text = (received[2]!.body as { text: string }).text;
    expect(text).toContain("breaker_open: still open");
    expect(text).toContain("(2 more 'breaker_open' alerts suppressed)");
  });

  it("is a no-op without a URL", async () => {
    let calls = 0;
    const alerter = createAlerter({
      fetch: (() => {
        calls++;
        return Promise.resolve(new Response("ok"));
      }) as typeof fetch,
    });
    await alerter.alert("dead_letter", "nobody listens");
    expect(calls).toBe(0);
    expect(received).toHaveLength(0);
  });

  it("never throws: an error status and an unreachable webhook are logged, not raised", async () => {
    answerStatus = 500;
    const logger = recordingLogger();
    const alerter = createAlerter({ url: `${baseUrl}/hooks/c`, logger, minIntervalMs: 0 });
    await expect(alerter.alert("dead_letter", "server says no")).resolves.toBeUndefined();
    expect(received).toHaveLength(1);
    expect(logger.warnings[0]).toMatchObject({ fields: { kind: "dead_letter", status: 500 } });

    // A port nothing listens on: grab a free one by closing a server on it first.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const deadPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const unreachable = createAlerter({ url: `http://127.0.0.1:${deadPort}/x`, logger });
    await expect(unreachable.alert("redis_down", "nobody home")).resolves.toBeUndefined();
    expect(logger.warnings[1]?.msg).toBe("alert webhook failed");
    // The secret webhook URL never reaches the logs.
    expect(JSON.stringify(logger.warnings)).not.toContain(String(deadPort));
  });
});
