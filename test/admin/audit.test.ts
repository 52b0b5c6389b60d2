/**
 * The audit log (issue 13 item 7) on a real redis-server: every admin action through the admin
 * API leaves a record naming the token by fingerprint (never the secret), what, when, result;
 * `lull audit` reads it; direct CLI actions are audited as cli:<os user>.
 */
import { createHash } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { AuditRecord } from "../../src/core/types.ts";
import { AUDIT_MAX_ENTRIES } from "../../src/core/types.ts";
import { RedisStore } from "../../src/store/redis-store.ts";
import { MemoryStore } from "../../src/store/memory-store.ts";
import { storeBackend } from "../../src/cli/backend.ts";
import { type RedisServer, startRedisServer } from "../harness/redis-server.ts";
import { type PostgresServer, startPostgresServer } from "../harness/postgres-server.ts";
import { createPostgresOutbox } from "../../src/outbox/postgres-outbox.ts";
import { runCli } from "../cli/cli-stack.ts";
import { adminHarness, type Harness } from "./harness.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";

let redis: RedisServer;
const opened: RedisStore[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});

afterAll(async () => {
  await redis.stop();
});

const TOKEN = "admin-token-for-tests-0123456789";
const OLD_TOKEN = "older-admin-token-still-accepted";

const setup = (name: string, env: Record<string, string> = {}): Harness =>
  adminHarness({
    redisUrl: redis.url,
    name,
    token: TOKEN,
    env: { LULL_ADMIN_TOKEN: `${TOKEN},${OLD_TOKEN}`, ...env },
    opened,
  });

async function body<T = any>(res: Response): Promise<T> {
  return await res.json() as T;
}

const fingerprint = (t: string) =>
  `token:${createHash("sha256").update(t).digest("hex").slice(0, 8)}`;

/** Every string anywhere in the audit answer and in the raw Redis stream. */
async function everythingStored(h: Harness): Promise<string> {
  const raw = await redis.client.xrange(h.store.keys.audit(), "-", "+");
  return JSON.stringify(raw) + JSON.stringify(await h.store.readAudit({ limit: 1000 }));
}

describe("audit log", () => {
  it("requeue, delete, flush and sweep through the admin API are audited by token fingerprint", async () => {
    const h = setup("audit-api");
    const c = "whatsapp:123:966501234567";
    await h.append(c, "m1", "hello");
    h.proc.next = { kind: "permanent", error: "processor answered 422" };
    const flushed = await h.admin("POST", "/lull/admin/flush", { body: { conversation: c } });
    expect(flushed.status).toBe(200);
    const [dead] = await h.store.dlqList();
    expect(dead).toBeDefined();
    h.proc.next = { kind: "delivered" };
    // The older token of the rotation list acts: the record names it, not the first one.
    const requeue = await h.admin("POST", `/lull/admin/dlq/${dead!.batchId}/requeue`, {
      token: OLD_TOKEN,
    });
    expect(requeue.status).toBe(200);
    const missing = await h.admin("DELETE", "/lull/admin/dlq/b_nope");
    expect(missing.status).toBe(404);
    expect((await h.admin("POST", "/lull/admin/flush")).status).toBe(200);

    const res = await h.admin("GET", "/lull/admin/audit?limit=10");
    expect(res.status).toBe(200);
    const { audit } = await res.json() as { audit: AuditRecord[] };
    // Newest first.
    expect(audit.map((a) => [a.action, a.result, a.actor])).toEqual([
      ["sweep", "ok", fingerprint(TOKEN)],
      ["dlq_requeue", "ok", fingerprint(OLD_TOKEN)],
      ["flush", "dead", fingerprint(TOKEN)],
    ]);
    // The refused delete (404) changed nothing and left no record.
    expect(audit.some((a) => a.target === "b_nope")).toBe(false);
    expect(audit[1]!.target).toBe(dead!.batchId);
    // A conversation is named by its masked label and a fingerprint of the key, never raw.
    const flush = audit[2]!;
    expect(flush.target).toBe("whatsapp:**************67");
    expect(flush.subject).toBe(createHash("sha256").update(c).digest("hex").slice(0, 12));
    expect(flush.detail).toContain(dead!.batchId);
    for (const a of audit) expect(Date.parse(a.at)).not.toBeNaN();

    const stored = await everythingStored(h);
    for (const secret of [TOKEN, OLD_TOKEN, "966501234567"]) expect(stored).not.toContain(secret);
    // Reads are not audited; an unauthorised call changes nothing and is not either.
    expect((await h.admin("DELETE", `/lull/admin/dlq/x`, { token: "wrong" })).status).toBe(401);
    expect(await h.store.readAudit({ limit: 100 })).toHaveLength(3);
  });

  it("the CLI acting on Redis directly audits as cli:<os user>", async () => {
    const h = setup("audit-cli");
    const c = "support:cli";
    await h.append(c, "m1", "hi");
    h.proc.next = { kind: "permanent", error: "processor answered 400" };
    await h.ctx.flusher.flushConversation(c, { force: true });
    const [dead] = await h.store.dlqList();
    const backend = storeBackend(h.store, h.config, "cli:tester");
    await backend.dlqRequeue(dead!.batchId);
    expect(await backend.dlqDelete("b_missing")).toBe(false);
    expect(await backend.dlqDelete(dead!.batchId)).toBe(false);
    const audit = await backend.audit(10);
    expect(audit.map((a) => [a.actor, a.action, a.target, a.result])).toEqual([
      ["cli:tester", "dlq_requeue", dead!.batchId, "ok"],
    ]);
  });

  it("is capped: the Redis stream and the MemoryStore keep at most AUDIT_MAX_ENTRIES", async () => {
    const h = setup("audit-cap");
    const memory = new MemoryStore({ settings: h.config });
    const entry = { actor: "cli:t", action: "sweep" as const, target: "", result: "ok" };
    for (let i = 0; i < AUDIT_MAX_ENTRIES + 50; i++) await memory.recordAudit(entry);
    expect(await memory.readAudit({ limit: AUDIT_MAX_ENTRIES + 100 })).toHaveLength(
      AUDIT_MAX_ENTRIES,
    );
    const pipeline = [];
    for (let i = 0; i < AUDIT_MAX_ENTRIES + 500; i++) pipeline.push(h.store.recordAudit(entry));
    await Promise.all(pipeline);
    const len = await redis.client.xlen(h.store.keys.audit());
    // MAXLEN ~ trims whole nodes: a little over the cap, never unbounded.
    expect(len).toBeGreaterThanOrEqual(AUDIT_MAX_ENTRIES);
    expect(len).toBeLessThan(AUDIT_MAX_ENTRIES + 500);
  });
});

describe("purge --conversation", () => {
  let pg: PostgresServer;
  beforeAll(async () => {
    pg = await startPostgresServer();
  });
  afterAll(async () => {
    await pg?.stop();
  });

  it("DELETE /lull/admin/conversations/:key purges Redis and the outbox rows, audited, others kept", async () => {
    const h = setup("purge-api");
    const outbox = createPostgresOutbox({ url: pg.url });
    try {
      h.ctx.outbox = { outbox };
      const c = "telegram:bot1:4242";
      const other = "telegram:bot1:4343";
      for (const [conv, id] of [[c, "a"], [c, "b"], [other, "z"]] as const) {
        await outbox.write({ conversation: conv, id, provider: "telegram", text: `t ${id}` });
      }
      await h.append(c, "m1", "my secret words");
      await h.append(other, "o1", "not mine");
      const res = await h.admin("DELETE", `/lull/admin/conversations/${encodeURIComponent(c)}`);
      expect(res.status).toBe(200);
      const answer = await body(res);
      expect(answer).toMatchObject({ purged: true, conversation: c, buffered: 1, outboxRows: 2 });
      const rows = await pg.sql`select conversation from lull.outbox order by seq`;
      expect(rows.map((r) => r.conversation)).toEqual([other]);
      expect((await h.store.inspect(c)).buffer).toBeNull();
      expect((await h.store.inspect(other)).buffer?.messages.map((m) => m.text)).toEqual([
        "not mine",
      ]);
      const [record] = await h.store.readAudit({ limit: 1 });
      expect(record).toMatchObject({
        action: "purge_conversation",
        result: "ok",
        actor: fingerprint(TOKEN),
      });
      expect(record!.detail).toContain("outbox rows 2");
      expect(await everythingStored(h)).not.toContain("4242");
      expect(await everythingStored(h)).not.toContain(TOKEN);
    } finally {
      await outbox.close();
    }
  });

  it("a batch in flight: 409, nothing removed, no record (a refusal changes nothing)", async () => {
    const h = setup("purge-busy");
    const c = "support:busy";
    await h.append(c, "m1", "hi");
    const claim = await h.store.claim(c, { force: true });
    expect(claim.status).toBe("claimed");
    const res = await h.admin("DELETE", `/lull/admin/conversations/${encodeURIComponent(c)}`);
    expect(res.status).toBe(409);
    expect((await body(res)).error.code).toBe("conversation_busy");
    expect((await h.store.inspect(c)).batch).not.toBeNull();
    expect(await h.store.readAudit({ limit: 10 })).toEqual([]);
    await h.store.ack(
      c,
      claim.status === "claimed" ? claim.claim.batch.batchId : "",
      claim.status === "claimed" ? claim.claim.token : "",
    );
    expect((await h.admin("DELETE", `/lull/admin/conversations/${encodeURIComponent(c)}`)).status)
      .toBe(200);
    expect((await h.store.readAudit({ limit: 10 })).map((a) => a.result)).toEqual(["ok"]);
  });

  it("lull purge: refuses without a terminal unless --yes, purges on Redis as cli:<user>, lull audit shows it", async () => {
    const h = setup("purge-cli");
    const c = "sms:+15550001:+15550002";
    await h.append(c, "m1", "text me");
    await h.append("sms:+15550001:+15559999", "k1", "keep");
    const cwd = mkdtempSync(join(tmpdir(), "lull-purge-"));
    const env = {
      LULL_REDIS_URL: redis.url,
      LULL_KEY_PREFIX: h.config.keyPrefix,
      LULL_PARTITIONS: "4",
      LULL_DATABASE_URL: pg.url,
    };
    try {
      const refused = await runCli(["purge", "--conversation", c], { cwd, env });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain("--yes");
      expect((await h.store.inspect(c)).buffer?.size).toBe(1);

      const done = await runCli(["purge", "--conversation", c, "--yes", "--json"], { cwd, env });
      expect(done.stderr).toBe("");
      expect(done.code).toBe(0);
      expect(JSON.parse(done.stdout)).toMatchObject({
        conversation: c,
        buffered: 1,
        outboxRows: 0,
      });
      expect((await h.store.inspect(c)).buffer).toBeNull();
      expect((await h.store.inspect("sms:+15550001:+15559999")).buffer?.size).toBe(1);

      const audit = await runCli(["audit", "--json"], { cwd, env });
      expect(audit.code).toBe(0);
      const records = JSON.parse(audit.stdout) as AuditRecord[];
      expect(records[0]).toMatchObject({
        actor: `cli:${userInfo().username}`,
        action: "purge_conversation",
        result: "ok",
      });
      expect(audit.stdout).not.toContain("15550002");
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});
