/**
 * The admin routes wired the way the edge function wires them, for tests: a real RedisStore on the
 * test file's redis-server, a real Flusher, a scripted fake processor, and `admin()` sending a
 * request through handleAdmin / handleMetrics. Shared by test/admin/admin.test.ts and audit.test.ts.
 */
import { systemClock } from "../../src/core/clock.ts";
import { type Config, parseConfig } from "../../src/core/config.ts";
import { Flusher } from "../../src/core/flusher.ts";
import type { Batch, DeliveryOutcome, InboundMessage } from "../../src/core/types.ts";
import { type AdminContext, handleAdmin, handleMetrics } from "../../src/http/admin.ts";
import type { Logger } from "../../src/core/ports.ts";
import { createMetrics, type Metrics } from "../../src/observability/metrics.ts";
import { createTcpClient } from "../../src/redis/tcp-client.ts";
import { RedisStore } from "../../src/store/redis-store.ts";
import { testPrefix } from "../harness/redis-server.ts";

export const ORIGIN = "http://127.0.0.1:54321/functions/v1";

export const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** A processor whose answer the test scripts; it records every batch it is handed. */
export function fakeProcessor() {
  const delivered: Batch[] = [];
  const state = {
    next: { kind: "delivered" } as DeliveryOutcome,
    delivered,
    processor: (batch: Batch): Promise<DeliveryOutcome> => {
      delivered.push(batch);
      return Promise.resolve(state.next);
    },
  };
  return state;
}

/** One test's wired admin routes. */
export interface Harness {
  ctx: AdminContext & { metrics: Metrics };
  config: Config;
  store: RedisStore;
  proc: ReturnType<typeof fakeProcessor>;
  admin(method: string, path: string, init?: { body?: unknown; token?: string | null }): Promise<
    Response
  >;
  append(conversation: string, id: string, text: string): Promise<void>;
}

/** Options of {@link adminHarness}. */
export interface HarnessOptions {
  redisUrl: string;
  /** Key prefix seed (made unique per test). */
  name: string;
  /** The bearer `admin()` sends unless told otherwise. */
  token: string;
  /** Environment on top of Redis, prefix, 4 partitions and LULL_ADMIN_TOKEN = `token`. */
  env?: Record<string, string>;
  /** Stores to close after the test. */
  opened: RedisStore[];
}

/** Wires the admin routes for one test. */
export function adminHarness(options: HarnessOptions): Harness {
  const { token: TOKEN } = options;
  const config = parseConfig({
    LULL_REDIS_URL: options.redisUrl,
    LULL_KEY_PREFIX: testPrefix(options.name),
    LULL_PARTITIONS: "4",
    LULL_ADMIN_TOKEN: TOKEN,
    // The routes stream per-message events too (on in `lull dev`, off by default when deployed).
    LULL_MESSAGE_EVENTS: "true",
    ...options.env,
  });
  const store = new RedisStore({
    client: createTcpClient({ url: options.redisUrl }),
    settings: config,
  });
  options.opened.push(store);
  const proc = fakeProcessor();
  const metrics = createMetrics();
  const flusher = new Flusher({
    store,
    processor: proc.processor,
    config,
    logger: silent,
    // Wired the way the edge function wires it, so the scrape has delivery series to show.
    onOutcome: (r) => {
      metrics.inc("lull_deliveries_total", { outcome: r.outcome });
      metrics.observe("lull_delivery_duration_ms", r.durationMs);
    },
  });
  const ctx: AdminContext & { metrics: Metrics } = {
    config,
    store,
    processor: proc.processor,
    clock: systemClock,
    logger: silent,
    waitUntil: () => {},
    metrics,
    flusher,
    breakers: { redis: { state: "closed" }, processor: { state: "open" } },
  };
  return {
    ctx,
    config,
    store,
    proc,
    admin(method, path, init = {}) {
      const headers = new Headers();
      const token = init.token === undefined ? TOKEN : init.token;
      if (token !== null) headers.set("authorization", `Bearer ${token}`);
      let body: string | undefined;
      if (init.body !== undefined) {
        body = typeof init.body === "string" ? init.body : JSON.stringify(init.body);
        headers.set("content-type", "application/json");
      }
      const req = new Request(ORIGIN + path, { method, headers, body });
      const route = new URL(req.url).pathname.replace(/^\/functions\/v1/, "");
      return route === "/lull/metrics" ? handleMetrics(req, ctx) : handleAdmin(req, route, ctx);
    },
    async append(conversation, id, text) {
      const msg: InboundMessage = { conversation, id, provider: "generic", text };
      await store.append(msg);
    },
  };
}
