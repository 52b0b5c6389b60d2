/**
 * What the read/admin commands (tail, buffers, stats, dlq) work against: Redis directly (the
 * store, the default whenever a Redis is configured), or the function's admin API over HTTP
 * (`--url`, a deployed project without Redis credentials at hand, or a `lull dev` running on the
 * in-memory store, whose state lives only inside the functions process).
 */
import { conversationFingerprint, runAudited, splitTokens } from "../core/audit.ts";
import { type ConversationPurge, purgeConversationEverywhere, purgeDetail } from "../http/purge.ts";
import type { Outbox } from "../outbox/outbox.ts";
import { createPostgresOutbox } from "../outbox/postgres-outbox.ts";
import { cliActor } from "./cli-actor.ts";
import type { Config } from "../core/config.ts";
import { ConversationBusyError, DeadLetterNotFoundError } from "../core/errors.ts";
import type {
  AuditRecord,
  BufferEvent,
  BufferStore,
  DeadLetter,
  EventCursor,
  StatsSnapshot,
} from "../core/types.ts";
import { decodeEventCursor, encodeEventCursor } from "../core/event-cursor.ts";
import { openCliStore } from "./open-store.ts";
import { maskConversation } from "../core/mask.ts";
import {
  type BufferView,
  type DeadLetterSummary,
  deadLetterSummary,
  listBufferViews,
} from "../core/views.ts";
import { CommandError } from "./cli-errors.ts";
import type { Connection } from "./connect.ts";
import { requestJson } from "./http.ts";

/** One open buffer or outstanding batch, as `lull buffers` shows it (the admin API's row). */
export type BufferRow = BufferView;

export type { DeadLetterSummary };

/** The operations the CLI needs. */
export interface CliBackend {
  kind: "redis" | "http";
  buffers(limitPerPartition: number): Promise<BufferRow[]>;
  stats(): Promise<StatsSnapshot>;
  dlqList(limit: number): Promise<DeadLetterSummary[]>;
  dlqGet(batchId: string): Promise<DeadLetter | null>;
  /** Throws DeadLetterNotFoundError or ConversationBusyError. */
  dlqRequeue(batchId: string): Promise<{ conversation: string }>;
  dlqDelete(batchId: string): Promise<boolean>;
  readEvents(cursor: EventCursor | null, limit: number): Promise<{
    events: BufferEvent[];
    cursor: EventCursor;
  }>;
  /** The newest audit records, newest first. */
  audit(limit: number): Promise<AuditRecord[]>;
  /** Privacy request (audited). Throws ConversationBusyError while a batch is in flight. */
  purgeConversation(conversation: string): Promise<ConversationPurge>;
  close(): Promise<void>;
}

/**
 * The CLI backend on a store (Redis, read directly). Changes are audited here as `actor`
 * (`cli:<os user>`), since no admin API sees them.
 */
export function storeBackend(
  store: BufferStore,
  config: Config,
  actor: string = cliActor(),
): CliBackend {
  const label = (conversation: string) => maskConversation(conversation, config.logPii);
  // The outbox (when a database is configured) is opened only for a purge.
  let outbox: Outbox | undefined;
  const onAuditError = (err: unknown) =>
    process.stderr.write(
      `lull: warning: could not write the audit record: ${
        err instanceof Error ? err.message : String(err)
      }\n`,
    );
  return {
    kind: "redis",
    async buffers(limit) {
      const listing = await listBufferViews(store, {
        partitions: config.partitions,
        limitPerPartition: limit,
        label,
      });
      return listing.rows;
    },
    stats: () => store.stats(),
    async dlqList(limit) {
      return (await store.dlqList({ limit })).map((d) =>
        deadLetterSummary(d, label(d.conversation))
      );
    },
    dlqGet: (id) => store.dlqGet(id),
    dlqRequeue: (id) =>
      runAudited(
        store,
        { actor, action: "dlq_requeue", target: id },
        () => store.dlqRequeue(id),
        (r) => ({ result: "ok", detail: `conversation ${label(r.conversation)}` }),
        onAuditError,
      ),
    dlqDelete: (id) =>
      runAudited(
        store,
        { actor, action: "dlq_delete", target: id },
        () => store.dlqDelete(id),
        (deleted) => (deleted ? { result: "ok" } : null),
        onAuditError,
      ),
    readEvents: (cursor, limit) => store.readEvents(cursor, { limit }),
    audit: (limit) => store.readAudit({ limit }),
    async purgeConversation(conversation) {
      if (config.databaseUrl) outbox ??= createPostgresOutbox({ url: config.databaseUrl });
      return runAudited(
        store,
        {
          actor,
          action: "purge_conversation",
          target: label(conversation),
          subject: await conversationFingerprint(conversation),
        },
        () => purgeConversationEverywhere(store, outbox, conversation),
        (p) => ({ result: "ok", detail: purgeDetail(p) }),
        onAuditError,
      );
    },
    async close() {
      await outbox?.close();
      await store.close();
    },
  };
}

/** The admin API's ceiling for `?limit=`. */
const adminMaxLimit = 1000;

/** The CLI backend on the function's admin API (`/lull/admin/...`, LULL_ADMIN_TOKEN). */
export function httpBackend(lullUrl: string, adminToken: string): CliBackend {
  const base = `${lullUrl}/admin`;
  const call = (method: string, path: string, body?: unknown) =>
    requestJson(method, `${base}${path}`, adminToken, body, 30_000);
  const clamp = (n: number) => Math.min(Math.max(1, n), adminMaxLimit);
  const notFoundIs = async <T>(work: () => Promise<T>, fallback: T): Promise<T> => {
    try {
      return await work();
    } catch (e) {
      if (e instanceof CommandError && e.code === "dlq_not_found") return fallback;
      throw e;
    }
  };
  return {
    kind: "http",
    async buffers(limit) {
      // The admin route builds the same rows (src/core/views.ts) as the Redis path.
      const r = await call("GET", `/buffers?limit=${clamp(limit)}`) as { buffers: BufferRow[] };
      return r.buffers;
    },
    stats: async () => await call("GET", "/stats") as StatsSnapshot,
    async dlqList(limit) {
      const r = await call("GET", `/dlq?limit=${clamp(limit)}`) as {
        deadLetters: DeadLetterSummary[];
      };
      return r.deadLetters;
    },
    dlqGet: (id) =>
      notFoundIs(async () => {
        const { label: _label, ...d } = await call("GET", `/dlq/${encodeURIComponent(id)}`) as
          & DeadLetter
          & { label?: string };
        return d;
      }, null),
    async dlqRequeue(id) {
      try {
        const r = await call("POST", `/dlq/${encodeURIComponent(id)}/requeue`) as {
          conversation: string;
        };
        return { conversation: r.conversation };
      } catch (e) {
        if (e instanceof CommandError && e.code === "dlq_not_found") {
          throw new DeadLetterNotFoundError(id);
        }
        if (e instanceof CommandError && e.code === "conversation_busy") {
          throw new ConversationBusyError("", "requeue");
        }
        throw e;
      }
    },
    dlqDelete: (id) =>
      notFoundIs(async () => {
        await call("DELETE", `/dlq/${encodeURIComponent(id)}`);
        return true;
      }, false),
    async readEvents(cursor, limit) {
      const q = new URLSearchParams({ limit: String(clamp(limit)) });
      if (cursor) q.set("cursor", encodeEventCursor(cursor));
      const r = await call("GET", `/events?${q}`) as { events: BufferEvent[]; cursor: string };
      return { events: r.events, cursor: decodeEventCursor(r.cursor) };
    },
    async audit(limit) {
      const r = await call("GET", `/audit?limit=${clamp(limit)}`) as { audit: AuditRecord[] };
      return r.audit;
    },
    async purgeConversation(conversation) {
      try {
        const r = await call("DELETE", `/conversations/${encodeURIComponent(conversation)}`) as
          & ConversationPurge
          & { purged?: boolean; label?: string };
        const { purged: _purged, label: _label, ...rest } = r;
        return rest;
      } catch (e) {
        if (e instanceof CommandError && e.code === "conversation_busy") {
          throw new ConversationBusyError(conversation, "purge");
        }
        throw e;
      }
    },
    close: () => Promise.resolve(),
  };
}

/**
 * Picks the backend: `--url` (or a `lull dev` on the memory store) means the admin API; a
 * configured Redis means the store; else LULL_PUBLIC_URL + LULL_ADMIN_TOKEN means the admin API.
 */
export function openBackend(conn: Connection, urlFlag: string | undefined): CliBackend {
  const viaHttp = (url: string) => {
    const token = splitTokens(conn.config.adminToken)[0];
    if (!token) {
      throw new CommandError(
        "no_token",
        "the admin API needs LULL_ADMIN_TOKEN (the same value the function has)",
      );
    }
    return httpBackend(url.replace(/\/+$/, ""), token);
  };
  if (urlFlag !== undefined) return viaHttp(urlFlag);
  if (conn.stack?.store === "memory") return viaHttp(conn.stack.lullUrl);
  if (conn.config.redis.kind !== "none") {
    return storeBackend(openCliStore(conn.config), conn.config);
  }
  if (conn.config.publicUrl && conn.config.adminToken) return viaHttp(conn.config.publicUrl);
  throw new CommandError(
    "no_redis",
    "nothing to read: set LULL_REDIS_URL (or UPSTASH_REDIS_REST_URL and " +
      "UPSTASH_REDIS_REST_TOKEN), or LULL_PUBLIC_URL and LULL_ADMIN_TOKEN (or --url) for the " +
      "admin API, or start `lull dev` in this directory.",
  );
}
