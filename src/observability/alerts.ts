/**
 * Operator alerts (a batch dead-lettered, a breaker opened, Redis fell back) posted to
 * LULL_ALERT_WEBHOOK_URL as `{ "text": "..." }`, the body both Slack and Microsoft Teams incoming
 * webhooks accept.
 *
 * Alerting is a side channel: it never throws into the code path that raised the alert, and it
 * rate-limits per kind so an outage that fails every request does not flood the channel.
 */
import { type Clock, systemClock } from "../core/clock.ts";
import type { Logger } from "../core/ports.ts";

/** Options for {@link createAlerter}. */
export interface AlerterOptions {
  /** Webhook URL (LULL_ALERT_WEBHOOK_URL). Without it every alert is a no-op. */
  url?: string;
  /** Injected for tests and runtimes. @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Where send failures are reported (the webhook URL itself is never logged: it is a secret). */
  logger?: Pick<Logger, "warn">;
  /** Minimum time between two alerts of the same kind; repeats inside it are counted, not sent. @default 300000 */
  minIntervalMs?: number;
  /** Give up on the webhook after this long. @default 5000 */
  timeoutMs?: number;
  /** @default systemClock */
  clock?: Clock;
  /** Names this deployment in the message (e.g. the project ref). @default "lull" */
  source?: string;
}

/** Sends alerts. */
export interface Alerter {
  /**
   * Posts one alert unless one of the same `kind` was sent less than `minIntervalMs` ago.
   * Resolves when the post finished or failed; never rejects. `fields` are shown as
   * `key: value` lines and must already be PII-masked by the caller.
   */
  alert(kind: string, text: string, fields?: Record<string, string | number>): Promise<void>;
}

/** Builds the message text: one headline, then one line per field. */
export function formatAlert(
  source: string,
  kind: string,
  text: string,
  fields: Record<string, string | number> = {},
  suppressed = 0,
): string {
  const lines = [`[${source}] ${kind}: ${text}`];
  for (const [k, v] of Object.entries(fields)) lines.push(`${k}: ${v}`);
  if (suppressed > 0) {
    lines.push(`(${suppressed} more '${kind}' alert${suppressed === 1 ? "" : "s"} suppressed)`);
  }
  return lines.join("\n");
}

/** Creates an {@link Alerter}. */
export function createAlerter(options: AlerterOptions = {}): Alerter {
  const url = options.url;
  const doFetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const clock = options.clock ?? systemClock;
  const minIntervalMs = options.minIntervalMs ?? 300_000;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const source = options.source ?? "lull";
  const lastSentAt = new Map<string, number>();
  const suppressedSince = new Map<string, number>();

  const warn = (msg: string, fields: Record<string, unknown>) => {
    try {
      options.logger?.warn(msg, fields);
    } catch {
      // a broken logger must not turn an alert into a thrown error
    }
  };

  return {
    async alert(kind, text, fields) {
      if (!url) return;
      try {
        const now = clock.now();
        const last = lastSentAt.get(kind);
        if (last !== undefined && now - last < minIntervalMs) {
          suppressedSince.set(kind, (suppressedSince.get(kind) ?? 0) + 1);
          return;
        }
        // Reserve the slot before awaiting so concurrent alerts of one kind send only once.
        lastSentAt.set(kind, now);
        const suppressed = suppressedSince.get(kind) ?? 0;
        suppressedSince.delete(kind);

        const controller = new AbortController();
        const timer = setTimeout(
          () => controller.abort(new Error(`alert webhook timed out after ${timeoutMs} ms`)),
          timeoutMs,
        );
        try {
          const res = await doFetch(url, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ text: formatAlert(source, kind, text, fields, suppressed) }),
            signal: controller.signal,
          });
          // Drain the body so the connection can be reused (Deno warns on leaked bodies).
          await res.body?.cancel().catch(() => {});
          if (!res.ok) warn("alert webhook answered an error", { kind, status: res.status });
        } finally {
          clearTimeout(timer);
        }
      } catch (err) {
        warn("alert webhook failed", {
          kind,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    },
  };
}
