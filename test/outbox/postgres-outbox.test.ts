/**
 * The Postgres outbox adapter and its migration, on a real PostgreSQL started for this file:
 * insert-or-ignore by (provider, conversation, id), arrival order, the per-conversation claim
 * (exclusive across connections, deletions commit with it), depth, error mapping.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InboundMessage } from "../../src/core/types.ts";
import { type Outbox, OutboxUnavailableError } from "../../src/outbox/outbox.ts";
import { coalescedLookup, createPostgresOutbox } from "../../src/outbox/postgres-outbox.ts";
import { type PostgresServer, startPostgresServer } from "../harness/postgres-server.ts";

let pg: PostgresServer;
let outbox: Outbox;

beforeAll(async () => {
  pg = await startPostgresServer();
  outbox = createPostgresOutbox({ url: pg.url });
});

afterAll(async () => {
  await outbox?.close();
  await pg?.stop();
});

function msg(conversation: string, id: string, text = id): InboundMessage {
  return { conversation, id, provider: "generic", text, meta: { n: id } };
}

describe("the pending check", () => {
  it("answers concurrent checks each for its own conversation, whatever the conversation holds", async () => {
    const odd = ['q:1,"x"', "q:{2}", "q:\\3", "q: 4 ", "q:ü5", "q:NULL"];
    for (const c of odd.filter((_, i) => i % 2 === 0)) await outbox.write(msg(c, "only"));
    const answers = await Promise.all(
      [...odd, ...odd, "q:absent"].map((c) => outbox.hasPending(c)),
    );
    const expected = odd.map((_, i) => i % 2 === 0);
    expect(answers).toEqual([...expected, ...expected, false]);
  });

  it("a row committed while a check is out is seen by every check made after the commit", async () => {
    const sent: string[][] = [];
    const answers: ((found: Set<string>) => void)[] = [];
    const lookup = coalescedLookup((keys: string[]) => {
      sent.push(keys);
      return new Promise<Set<string>>((resolve) => answers.push(resolve));
    });
    const before = lookup("c:1");
    await new Promise((r) => setTimeout(r, 0));
    expect(sent).toEqual([["c:1"]]);
    // The row for c:1 commits now; these checks come after it and must not share the query
    // already out (it may have read before the commit).
    const after = [lookup("c:1"), lookup("c:2"), lookup("c:1")];
    answers[0]!(new Set());
    expect(await before).toBe(false);
    await new Promise((r) => setTimeout(r, 0));
    expect(sent).toEqual([["c:1"], ["c:1", "c:2"]]);
    answers[1]!(new Set(["c:1"]));
    expect(await Promise.all(after)).toEqual([true, false, true]);
  });

  it("a failed query fails the checks that shared it, and the next checks send a new one", async () => {
    let calls = 0;
    const lookup = coalescedLookup((keys: string[]) => {
      calls++;
      return calls === 1 ? Promise.reject(new Error("gone")) : Promise.resolve(new Set(keys));
    });
    const first = [lookup("a"), lookup("b")];
    await expect(first[0]).rejects.toThrow("gone");
    await expect(first[1]).rejects.toThrow("gone");
    expect(await lookup("a")).toBe(true);
    expect(calls).toBe(2);
  });
});

describe("migration", () => {
  it("applies twice cleanly on a fresh database, with schema, table, key and index", async () => {
    const url = await pg.createDatabase(`fresh_${Date.now()}`);
    await pg.migrate(url);
    await pg.migrate(url);
    const fresh = createPostgresOutbox({ url });
    try {
      expect(await fresh.write(msg("m:1", "a"))).toEqual({ status: "written" });
      expect(await fresh.write(msg("m:1", "a"))).toEqual({ status: "duplicate" });
    } finally {
      await fresh.close();
    }
    const postgres = (await import("postgres")).default;
    const sql = postgres(url, { max: 1, prepare: false, onnotice: () => {} });
    try {
      const indexes = await sql`
        select indexname from pg_indexes where schemaname = 'lull' and tablename = 'outbox'
        order by indexname`;
      expect(indexes.map((r) => r.indexname)).toEqual([
        "outbox_conversation_seq_idx",
        "outbox_message_key",
        "outbox_pkey",
      ]);
    } finally {
      await sql.end();
    }
  });

  it("grants the outbox to service_role and nothing to anon when those roles exist", async () => {
    const url = await pg.createDatabase(`roles_${Date.now()}`);
    await pg.sql.unsafe(`
      do $$ begin
        if not exists (select 1 from pg_roles where rolname = 'service_role') then
          create role service_role; end if;
        if not exists (select 1 from pg_roles where rolname = 'anon') then
          create role anon; end if;
      end $$`);
    await pg.migrate(url);
    await pg.migrate(url);
    const postgres = (await import("postgres")).default;
    const sql = postgres(url, { max: 1, prepare: false, onnotice: () => {} });
    try {
      const [r] = await sql`
        select has_table_privilege('service_role', 'lull.outbox', 'insert') as service_insert,
               has_table_privilege('service_role', 'lull.outbox', 'delete') as service_delete,
               has_table_privilege('anon', 'lull.outbox', 'select') as anon_select,
               has_schema_privilege('anon', 'lull', 'usage') as anon_usage`;
      expect(r).toEqual({
        service_insert: true,
        service_delete: true,
        anon_select: false,
        anon_usage: false,
      });
    } finally {
      await sql.end();
    }
  });
});

describe("PostgresOutbox", () => {
  it("stores a redelivered message once; the same id in another conversation is its own row", async () => {
    expect(await outbox.write(msg("dup:1", "x"))).toEqual({ status: "written" });
    expect(await outbox.write(msg("dup:1", "x", "again"))).toEqual({ status: "duplicate" });
    expect(await outbox.write(msg("dup:2", "x"))).toEqual({ status: "written" });
    expect(await outbox.write({ ...msg("dup:1", "x"), provider: "telegram" })).toEqual({
      status: "written",
    });
    const rows = await pg.sql`
      select conversation, provider, message->>'text' as text from lull.outbox
      where conversation like 'dup:%' order by seq`;
    expect(rows.map((r) => `${r.conversation}/${r.provider}/${r.text}`)).toEqual([
      "dup:1/generic/x",
      "dup:2/generic/x",
      "dup:1/telegram/x",
    ]);
  });

  it("claims a conversation's rows in arrival order with the full message, deleting what it handled", async () => {
    for (const id of ["c", "a", "b"]) await outbox.write(msg("order:1", id));
    expect(await outbox.hasPending("order:1")).toBe(true);
    const claimed = await outbox.claimConversation("order:1", { limit: 2 }, async (claim) => {
      await claim.delete([claim.rows[0]!.seq]);
      return claim.rows.map((r) => r.message);
    });
    expect(claimed).toEqual({
      locked: false,
      value: [msg("order:1", "c"), msg("order:1", "a")],
    });
    const left = await outbox.claimConversation("order:1", { limit: 10 }, async (claim) => {
      await claim.delete(claim.rows.map((r) => r.seq));
      return claim.rows.map((r) => r.message.id);
    });
    expect(left).toEqual({ locked: false, value: ["a", "b"] });
    expect(await outbox.hasPending("order:1")).toBe(false);
  });

  it("a claim failing mid-way rolls its deletions back", async () => {
    await outbox.write(msg("rollback:1", "r1"));
    await expect(outbox.claimConversation("rollback:1", { limit: 10 }, async (claim) => {
      await claim.delete(claim.rows.map((r) => r.seq));
      throw new Error("replayer crashed");
    })).rejects.toBeInstanceOf(OutboxUnavailableError);
    expect(await outbox.hasPending("rollback:1")).toBe(true);
  });

  it("holds a conversation exclusively: a second claimer is locked out, or waits its turn", async () => {
    await outbox.write(msg("lock:1", "l1"));
    const other = createPostgresOutbox({ url: pg.url });
    try {
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let inside!: () => void;
      const entered = new Promise<void>((r) => (inside = r));
      const first = outbox.claimConversation("lock:1", { limit: 10 }, async (claim) => {
        inside();
        await held;
        await claim.delete(claim.rows.map((r) => r.seq));
        return claim.rows.length;
      });
      await entered;
      expect(await other.claimConversation("lock:1", { limit: 10 }, async () => 0)).toEqual({
        locked: true,
      });
      // Another conversation is not blocked by it.
      expect(await other.claimConversation("lock:2", { limit: 10 }, async (c) => c.rows.length))
        .toEqual({ locked: false, value: 0 });
      const waiting = other.claimConversation(
        "lock:1",
        { limit: 10, waitMs: 10_000 },
        async (claim) => claim.rows.length,
      );
      release();
      expect(await first).toEqual({ locked: false, value: 1 });
      // The waiter got the conversation after the first commit: its rows were gone by then.
      expect(await waiting).toEqual({ locked: false, value: 0 });
    } finally {
      await other.close();
    }
  });

  it("lists conversations by their oldest row and reports depth and the oldest row's age", async () => {
    await pg.sql`delete from lull.outbox`;
    expect(await outbox.depth()).toEqual({ depth: 0, oldestAgeMs: null });
    await outbox.write(msg("list:b", "1"));
    await outbox.write(msg("list:a", "2"));
    await outbox.write(msg("list:b", "3"));
    expect(await outbox.pendingConversations(10)).toEqual(["list:b", "list:a"]);
    expect(await outbox.pendingConversations(1)).toEqual(["list:b"]);
    const depth = await outbox.depth();
    expect(depth.depth).toBe(3);
    expect(depth.oldestAgeMs).toBeGreaterThanOrEqual(0);
  });

  it("a dead server is an OutboxUnavailableError, and the pool recovers when it returns", async () => {
    await pg.kill();
    try {
      const err = await outbox.write(msg("down:1", "d1")).catch((e) => e);
      expect(err).toBeInstanceOf(OutboxUnavailableError);
      expect(err.code).toBe("outbox_unavailable");
    } finally {
      await pg.start();
    }
    let written: unknown;
    for (let i = 0; i < 50 && written === undefined; i++) {
      written = await outbox.write(msg("down:1", "d1")).catch(() => undefined);
      if (written === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    expect(written).toEqual({ status: "written" });
  });
});
