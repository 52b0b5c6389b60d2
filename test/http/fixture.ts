/**
 * An in-process app for HTTP tests: the real handler, Flusher and breakers over a MemoryStore
 * (no I/O) that a test can make fail like Redis does, a recording processor, and a hand-driven
 * clock. Timers handed to waitUntil are only collected: nothing runs behind the test's back.
 */
import { bufferSettings } from "../../src/store/create-store.ts";
import { parseConfig } from "../../src/core/config.ts";
import { RedisTimeoutError, RedisUnavailableError } from "../../src/core/errors.ts";
import type { Batch, BufferStore, DeliveryOutcome } from "../../src/core/types.ts";
import { type App, createApp } from "../../src/app.ts";
import { MemoryStore } from "../../src/store/memory-store.ts";
import { ManualClock } from "../harness/clock.ts";
import { createLogger } from "../../src/observability/logger.ts";

/** How the wrapped store behaves. */
export type StoreMode = "ok" | "unavailable" | "timeout" | "boom";

export interface TestApp {
  app: App;
  handler: (req: Request) => Promise<Response>;
  clock: ManualClock;
  /** The underlying store (never failing), for assertions. */
  memory: MemoryStore;
  /** Store calls that reached the (faulty) store, by method. */
  calls: string[];
  setStore(mode: StoreMode): void;
  delivered: Batch[];
  setProcessor(answer: (batch: Batch) => DeliveryOutcome): void;
  waited: Promise<unknown>[];
  logs: string[];
  /** Alerts sent: `kind: text`. */
  alerts: string[];
}

export const baseEnv: Record<string, string> = {
  LULL_INGEST_TOKEN: "ingest-a,ingest-b",
  LULL_CRON_SECRET: "cron",
  LULL_ADMIN_TOKEN: "admin",
  LULL_PROCESSOR_URL: "http://127.0.0.1:9/unused",
  LULL_PROCESSOR_SECRET: "proc",
  WHATSAPP_APP_SECRET: "wa",
  WHATSAPP_VERIFY_TOKEN: "wa-verify",
  TELEGRAM_WEBHOOK_SECRET: "tg",
  TWILIO_AUTH_TOKEN: "tw",
  LULL_PUBLIC_URL: "https://example.test/functions/v1/lull",
  LULL_MAX_BODY_BYTES: "2048",
};

/** Builds the app; `env` entries override (an empty string unsets a variable). */
export function makeTestApp(env: Record<string, string> = {}): TestApp {
  const config = parseConfig({ ...baseEnv, ...env });
  const clock = new ManualClock(Date.UTC(2026, 10, 22, 10));
  const memory = new MemoryStore({ settings: bufferSettings(config), clock });
  let mode: StoreMode = "ok";
  const calls: string[] = [];
  const faulty = new Proxy(memory, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        calls.push(String(prop));
        if (mode === "unavailable") {
          return Promise.reject(new RedisUnavailableError("connection refused"));
        }
        if (mode === "timeout") return Promise.reject(new RedisTimeoutError("no answer"));
        if (mode === "boom") return Promise.reject(new Error("boom: secret internals"));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as BufferStore;
  const delivered: Batch[] = [];
  let answer: (batch: Batch) => DeliveryOutcome = () => ({ kind: "delivered" });
  const waited: Promise<unknown>[] = [];
  const logs: string[] = [];
  const alerts: string[] = [];
  const app = createApp({
    alerter: {
      alert: (kind, text) => {
        alerts.push(`${kind}: ${text}`);
        return Promise.resolve();
      },
    },
    config,
    store: faulty,
    storeKind: "memory",
    clock,
    processor: (batch) => {
      delivered.push(batch);
      return Promise.resolve(answer(batch));
    },
    waitUntil: (p) => {
      waited.push(p);
    },
    logger: createLogger({ level: "debug", sink: (line) => logs.push(line), clock }),
  });
  return {
    app,
    handler: app.handler,
    clock,
    memory,
    calls,
    setStore: (m) => (mode = m),
    delivered,
    setProcessor: (a) => (answer = a),
    waited,
    logs,
    alerts,
  };
}

/** A request to the function (path relative to /lull). */
export function req(
  path: string,
  init: RequestInit & { json?: unknown; token?: string } = {},
): Request {
  const headers = new Headers(init.headers);
  if (init.token !== undefined) headers.set("authorization", `Bearer ${init.token}`);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set("content-type", "application/json");
    body = JSON.stringify(init.json);
  }
  return new Request(`http://127.0.0.1/lull${path}`, {
    ...init,
    headers,
    body,
    ...(body instanceof ReadableStream ? { duplex: "half" } : {}),
  } as RequestInit);
}
