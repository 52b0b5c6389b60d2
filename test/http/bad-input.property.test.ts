/**
 * Property: whatever bytes, JSON and headers hit whichever route, the handler (real routes,
 * real RedisStore on a real redis-server) answers; never throws, never a 5xx other than 503;
 * and a request it did not accept (non-2xx) leaves the Redis keyspace exactly as it was.
 */
import fc from "fast-check";
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/core/config.ts";
import { type App, createApp } from "../../src/app.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { createStore } from "../../src/store/create-store.ts";
import { ManualClock } from "../harness/clock.ts";
import { type RedisServer, startRedisServer, testPrefix } from "../harness/redis-server.ts";

let redis: RedisServer;
let app: App;
const prefix = testPrefix("badinput");
const background: Promise<unknown>[] = [];

const TOKENS = {
  ingest: "ingest-tok",
  cron: "cron-tok",
  admin: "admin-tok",
  proc: "proc-tok",
  tg: "tg-tok",
  wa: "wa-secret",
  waVerify: "wa-verify",
};

beforeAll(async () => {
  redis = await startRedisServer();
  const config = parseConfig({
    LULL_REDIS_URL: redis.url,
    LULL_KEY_PREFIX: prefix,
    LULL_PARTITIONS: "2",
    LULL_WINDOW_MS: "50",
    LULL_GRACE_MS: "0",
    LULL_INGEST_TOKEN: TOKENS.ingest,
    LULL_CRON_SECRET: TOKENS.cron,
    LULL_ADMIN_TOKEN: TOKENS.admin,
    LULL_PROCESSOR_URL: "http://127.0.0.1:9/",
    LULL_PROCESSOR_SECRET: TOKENS.proc,
    TELEGRAM_WEBHOOK_SECRET: TOKENS.tg,
    WHATSAPP_APP_SECRET: TOKENS.wa,
    WHATSAPP_VERIFY_TOKEN: TOKENS.waVerify,
    TWILIO_AUTH_TOKEN: "tw-tok",
    LULL_PUBLIC_URL: "https://example.test/functions/v1/lull",
    LULL_MAX_BODY_BYTES: "4096",
  });
  const { store } = createStore(config);
  app = createApp({
    config,
    store,
    storeKind: "tcp",
    // Sweeps posted with the cron token really deliver; the processor just accepts.
    processor: () => Promise.resolve({ kind: "delivered" }),
    // Timers sleep on a clock that never moves: no flush runs behind the property's back, so
    // any keyspace change is the request's doing.
    clock: new ManualClock(),
    waitUntil: (p) => void background.push(p),
    logger: createLogger({ level: "error", sink: () => {} }),
  });
});

afterAll(async () => {
  await app?.close();
  await redis?.stop();
});

/** Every key of this test's prefix with a digest of its value (DUMP is type-aware). */
async function keyspace(): Promise<Map<string, string>> {
  const keys = (await redis.client.keys(`${prefix}*`)).sort();
  const out = new Map<string, string>();
  for (const k of keys) {
    const dump = await redis.client.dumpBuffer(k);
    out.set(k, dump ? createHash("sha1").update(dump).digest("hex") : "gone");
  }
  return out;
}

/** Each route with the method, content type and credentials that get past its front door. */
const routes: {
  path: string;
  method: string;
  contentType?: string;
  auth?: Record<string, string>;
}[] = [
  {
    path: "/lull/messages",
    method: "POST",
    contentType: "application/json",
    auth: { authorization: `Bearer ${TOKENS.ingest}` },
  },
  {
    path: "/functions/v1/lull/messages",
    method: "POST",
    contentType: "application/json; charset=utf-8",
    auth: { authorization: `Bearer ${TOKENS.ingest}` },
  },
  {
    path: "/lull/webhooks/telegram",
    method: "POST",
    contentType: "application/json",
    auth: { "x-telegram-bot-api-secret-token": TOKENS.tg },
  },
  { path: "/lull/webhooks/whatsapp", method: "POST", contentType: "application/json" },
  {
    path: "/lull/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=wa-verify",
    method: "GET",
  },
  {
    path: "/lull/webhooks/twilio",
    method: "POST",
    contentType: "application/x-www-form-urlencoded",
  },
  { path: "/lull/flush", method: "POST", auth: { authorization: `Bearer ${TOKENS.cron}` } },
  {
    path: "/lull/conversations/support%3A42",
    method: "GET",
    auth: { authorization: `Bearer ${TOKENS.proc}` },
  },
  {
    path: "/lull/conversations/%ZZ",
    method: "GET",
    auth: { authorization: `Bearer ${TOKENS.admin}` },
  },
  { path: "/lull/health", method: "GET" },
  { path: "/lull/metrics", method: "GET", auth: { authorization: `Bearer ${TOKENS.admin}` } },
  {
    path: "/lull/admin/buffers",
    method: "GET",
    auth: { authorization: `Bearer ${TOKENS.admin}` },
  },
  { path: "/lull/admin/dlq", method: "GET", auth: { authorization: `Bearer ${TOKENS.admin}` } },
  {
    path: "/lull/admin/dlq/requeue",
    method: "POST",
    contentType: "application/json",
    auth: { authorization: `Bearer ${TOKENS.admin}` },
  },
];

const route = fc.constantFrom(...routes);

/** Mostly the route's own path; sometimes a made-up one. */
const path = (own: string) =>
  fc.oneof(
    { weight: 8, arbitrary: fc.constant(own) },
    { weight: 1, arbitrary: fc.webPath().map((p) => "/lull" + p) },
    { weight: 1, arbitrary: fc.string().map((s) => "/lull/" + encodeURIComponent(s)) },
  );

const method = (own: string) =>
  fc.oneof(
    { weight: 8, arbitrary: fc.constant(own) },
    { weight: 2, arbitrary: fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS") },
  );

const contentType = (own: string | undefined) =>
  fc.oneof(
    { weight: 8, arbitrary: fc.constant(own) },
    {
      weight: 2,
      arbitrary: fc.option(
        fc.oneof(
          fc.constantFrom(
            "application/json",
            "APPLICATION/JSON",
            "application/x-www-form-urlencoded",
            "text/plain",
            "multipart/form-data; boundary=x",
          ),
          fc.string(),
        ),
        { nil: undefined },
      ),
    },
  );

const credentials = (own: Record<string, string> | undefined) =>
  fc.oneof(
    { weight: 7, arbitrary: fc.constant(own ?? {}) },
    {
      weight: 3,
      arbitrary: fc.dictionary(
        fc.constantFrom(
          "authorization",
          "x-hub-signature-256",
          "x-telegram-bot-api-secret-token",
          "x-twilio-signature",
          "x-lull-signature",
        ),
        fc.oneof(
          fc.constantFrom(...Object.values(TOKENS)).map((t) => `Bearer ${t}`),
          fc.string(),
        ),
      ),
    },
  );

/** Near-valid generic messages, to probe validation of every field. */
const messageish = fc.record({
  conversation: fc.oneof(fc.string(), fc.integer(), fc.constant(undefined)),
  id: fc.oneof(fc.string(), fc.integer(), fc.constant(undefined), fc.constant(null)),
  text: fc.oneof(fc.string(), fc.jsonValue()),
  sender: fc.option(fc.oneof(fc.string(), fc.integer())),
  sentAt: fc.option(fc.oneof(fc.string(), fc.constant("2026-11-22T10:00:00Z"))),
  meta: fc.option(fc.jsonValue()),
}, { requiredKeys: [] });

/** Valid generic messages: mixed with bad ones, they make "all or nothing" observable. */
const validMessage = fc.record({
  conversation: fc.string({ minLength: 1, maxLength: 20 }).map((c) => `prop:${c}`),
  id: fc.string({ minLength: 1, maxLength: 10 }),
  text: fc.string({ maxLength: 40 }),
});

const body = fc.oneof(
  fc.uint8Array({ maxLength: 600 }),
  validMessage.map((m) => JSON.stringify(m)),
  fc.array(fc.oneof(validMessage, messageish), { minLength: 1, maxLength: 4 })
    .map((ms) => JSON.stringify({ messages: ms })),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  messageish.map((m) => JSON.stringify(m)),
  fc.array(messageish, { maxLength: 4 }).map((ms) => JSON.stringify({ messages: ms })),
  fc.string().map((s) => `a=${encodeURIComponent(s)}&Body=${s}`),
  fc.string({ minLength: 5000, maxLength: 6000 }),
  fc.constant(undefined),
);

const scenario = route.chain((r) =>
  fc.record({
    path: path(r.path),
    method: method(r.method),
    contentType: contentType(r.contentType),
    credentials: credentials(r.auth),
    body,
  })
);

const statuses = new Map<number, number>();

type Scenario = {
  path: string;
  method: string;
  contentType: string | undefined;
  credentials: Record<string, string>;
  body: string | Uint8Array | undefined;
};

const ingestAuth = { authorization: `Bearer ${TOKENS.ingest}` };
/** Seeds run before the random ones, so every front door is reached on every run. */
const seeds: [Scenario][] = [
  {
    path: "/lull/messages",
    method: "POST",
    contentType: "application/json",
    credentials: ingestAuth,
    body: JSON.stringify({ conversation: "prop:seed", id: "s1", text: "seed" }),
  },
  {
    path: "/lull/messages",
    method: "POST",
    contentType: "application/json",
    credentials: ingestAuth,
    body: JSON.stringify({
      messages: [{ conversation: "prop:seed", id: "s2", text: "ok" }, { conversation: "x" }],
    }),
  },
  {
    path: "/lull/messages",
    method: "POST",
    contentType: "application/json",
    credentials: {},
    body: "{}",
  },
  { path: "/lull/nope", method: "GET", contentType: undefined, credentials: {}, body: undefined },
  {
    path: "/lull/messages",
    method: "PUT",
    contentType: "application/json",
    credentials: ingestAuth,
    body: "{}",
  },
  {
    path: "/lull/messages",
    method: "POST",
    contentType: "application/json",
    credentials: ingestAuth,
    body: "x".repeat(5000),
  },
  {
    path: "/lull/messages",
    method: "POST",
    contentType: "text/plain",
    credentials: ingestAuth,
    body: "{}",
  },
].map((sc) => [sc]);

describe("bad input at every route", () => {
  it("never throws, never a 5xx but 503, nothing written by a refused request", async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (sc) => {
        const headers = new Headers();
        try {
          for (const [k, v] of Object.entries(sc.credentials)) headers.set(k, v);
          if (sc.contentType !== undefined) headers.set("content-type", sc.contentType);
        } catch {
          // not a valid header value: the runtime would have rejected the request itself
        }
        const hasBody = sc.method !== "GET" && sc.body !== undefined;
        let request: Request;
        try {
          request = new Request(`http://127.0.0.1${sc.path}`, {
            method: sc.method,
            headers,
            ...(hasBody ? { body: sc.body } : {}),
          });
        } catch {
          return; // not a representable HTTP request
        }
        const before = await keyspace();
        const res = await app.handler(request);
        expect(res).toBeInstanceOf(Response);
        expect(res.status === 503 || res.status < 500).toBe(true);
        await res.arrayBuffer();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status < 200 || res.status >= 300) {
          expect(await keyspace()).toEqual(before);
        }
      }),
      { numRuns: 300, examples: seeds },
    );
    // The mix must reach past every front door, and some requests must buffer for real.
    for (const status of [202, 400, 401, 404, 405, 413, 415]) {
      expect(statuses.get(status) ?? 0).toBeGreaterThan(0);
    }
    expect((await keyspace()).size).toBeGreaterThan(0);
  });
});
