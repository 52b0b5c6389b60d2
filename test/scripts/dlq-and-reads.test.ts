import { describe, expect, it } from "vitest";
import {
  ConversationBusyError,
  DeadLetterNotFoundError,
  ScriptError,
} from "../../src/core/errors.ts";
import type { Claim } from "../../src/core/types.ts";
import { maskConversation } from "../../src/core/mask.ts";
import { runScript } from "../../src/redis/run-script.ts";
import { scripts } from "../../src/scripts/generated.ts";
import { useRedisServer } from "../harness/redis-server.ts";
import {
  backdate,
  claimOne,
  counters,
  type Fixture,
  fixture,
  msg,
  streamEvents,
} from "./helpers.ts";

const server = useRedisServer();

async function deadLetter(f: Fixture, conv: string, ids: string[]): Promise<Claim> {
  const c = await claimOne(f, conv, ids);
  await f.store.fail(conv, c.batch.batchId, c.token, {
    error: "HTTP 400",
    delayMs: 0,
    permanent: true,
  });
  return c;
}

describe("requeueDeadLetter-9.lua / deleteDeadLetter-2.lua / DLQ reads", () => {
  it("requeue: DLQ_NOT_FOUND for an unknown id", async () => {
    const f = fixture(server, "requeue-nf");
    await expect(f.store.dlqRequeue("b_missing")).rejects.toBeInstanceOf(DeadLetterNotFoundError);
    expect(await f.store.dlqGet("b_missing")).toBeNull();
    await f.close();
  });

  it("requeue: CONVERSATION_BUSY while a batch is outstanding", async () => {
    const f = fixture(server, "requeue-busy");
    const conv = "c:busy";
    const dead = await deadLetter(f, conv, ["1"]);
    await claimOne(f, conv, ["2"]);
    await expect(f.store.dlqRequeue(dead.batch.batchId)).rejects.toBeInstanceOf(
      ConversationBusyError,
    );
    expect(await f.store.dlqGet(dead.batch.batchId)).not.toBeNull();
    await f.close();
  });

  it("requeue re-checks the conversation inside the script (DLQ_NOT_FOUND on mismatch)", async () => {
    const f = fixture(server, "requeue-mismatch", { partitions: 1 });
    const dead = await deadLetter(f, "c:owner", ["1"]);
    const other = f.keys.conversation("c:someone-else");
    const p = other.partition;
    await expect(runScript(
      f.client,
      scripts.requeueDeadLetter,
      [
        f.keys.deadLetter(0, dead.batch.batchId),
        p.dlq,
        other.batch,
        other.batchMessages,
        other.fence,
        p.due,
        p.events,
      ],
      [dead.batch.batchId, "c:someone-else", "c:*"],
      {
        batchId: dead.batch.batchId,
      },
    )).rejects.toBeInstanceOf(DeadLetterNotFoundError);
    await f.close();
  });

  it("requeue: same batchId, new fence, attempt reset, reason requeue, due now; buffer waits", async () => {
    const f = fixture(server, "requeue-ok");
    const conv = "c:requeue";
    const k = f.keys.conversation(conv);
    const dead = await deadLetter(f, conv, ["1", "2"]);
    await f.store.append(msg(conv, "3")); // open buffer (no batch now), no TTL ever
    const requeued = await f.store.dlqRequeue(dead.batch.batchId);
    expect(requeued.conversation).toBe(conv);
    // Due from the requeue's store time, which it answers.
    expect(Number(await f.raw.zscore(k.partition.due, conv))).toBe(requeued.nowMs);
    expect(await f.raw.pttl(k.fence)).toBe(-1);
    expect(await f.raw.pttl(k.buffer)).toBe(-1);
    expect(await f.raw.pttl(k.meta)).toBe(-1);
    expect(await f.store.dlqGet(dead.batch.batchId)).toBeNull();
    expect(await f.raw.zscore(k.partition.dlq, dead.batch.batchId)).toBeNull();
    const h = await f.raw.hgetall(k.batch);
    expect(h).toMatchObject({
      batchId: dead.batch.batchId,
      fence: "2",
      attempt: "0",
      reason: "requeue",
      count: "2",
      inFlight: "0",
      nextAt: "0",
    });
    expect((await streamEvents(f, k.partition.partition)).at(-1)).toMatchObject({
      type: "requeued",
      batchId: dead.batch.batchId,
    });
    const listed = await f.store.listDue(k.partition.partition, 10);
    expect(listed).toContain(conv);
    const r = await f.store.claim(conv);
    expect(r.status).toBe("claimed");
    if (r.status !== "claimed") return;
    expect(r.claim.batch).toMatchObject({
      batchId: dead.batch.batchId,
      fence: 2,
      attempt: 1,
      reason: "requeue",
      firstAt: dead.batch.firstAt,
    });
    expect(r.claim.batch.messages).toEqual(dead.batch.messages);
    await f.close();
  });

  it("get, list newest first across partitions, delete (existed vs not)", async () => {
    const f = fixture(server, "dlq-list", { partitions: 8 });
    const convs = ["a:1", "b:2", "c:3", "d:4"];
    const ids: string[] = [];
    for (const conv of convs) ids.push((await deadLetter(f, conv, [`${conv}-m`])).batch.batchId);
    // Make the dead times distinct and known.
    for (const [i, id] of ids.entries()) {
      const p = f.keys.partitionOf(convs[i]!);
      await f.raw.zadd(f.keys.partition(p).dlq, 1_000_000 + i, id);
    }
    const partitions = new Set(convs.map((c) => f.keys.partitionOf(c)));
    expect(partitions.size).toBeGreaterThan(1);
    const list = await f.store.dlqList({ limit: 3 });
    expect(list.map((d) => d.batchId)).toEqual([ids[3], ids[2], ids[1]]);
    const one = await f.store.dlqGet(ids[0]!);
    expect(one).toMatchObject({
      batchId: ids[0],
      conversation: "a:1",
      partition: f.keys.partitionOf("a:1"),
      attempts: 1,
      fence: 1,
      reason: "manual",
      lastError: "HTTP 400",
    });
    expect(one!.messages.map((m) => m.id)).toEqual(["a:1-m"]);
    expect(await f.store.dlqDelete(ids[0]!)).toBe(true);
    expect(await f.store.dlqDelete(ids[0]!)).toBe(false);
    expect(await f.store.dlqGet(ids[0]!)).toBeNull();
    await f.close();
  });
});

describe("read-side scripts", () => {
  it("listDue returns only conversations due now, oldest first, up to the limit", async () => {
    const f = fixture(server, "list-due", { partitions: 1 });
    for (const conv of ["c:a", "c:b", "c:c"]) await f.store.append(msg(conv, "1"));
    expect(await f.store.listDue(0, 10)).toEqual([]);
    await f.raw.zadd(f.keys.partition(0).due, 2, "c:b", 1, "c:c");
    expect(await f.store.listDue(0, 10)).toEqual(["c:c", "c:b"]);
    expect(await f.store.listDue(0, 1)).toEqual(["c:c"]);
    await f.close();
  });

  it("listConversations: open buffers and in-flight batches, deduplicated, limited", async () => {
    const f = fixture(server, "list-convs", { partitions: 1 });
    await f.store.append(msg("c:open", "1"));
    await claimOne(f, "c:flying", ["1"]);
    await f.store.append(msg("c:flying", "2")); // buffer behind the batch
    const all = await f.store.listConversations(0, 10);
    expect([...all].sort()).toEqual(["c:flying", "c:open"]);
    expect(await f.store.listConversations(0, 1)).toHaveLength(1);
    await f.close();
  });

  it("inspect: buffer, batch, due score, lock", async () => {
    const f = fixture(server, "inspect");
    const conv = "support:42";
    const empty = await f.store.inspect(conv);
    expect(empty).toMatchObject({ conversation: conv, buffer: null, batch: null, dueAtMs: null });
    const c = await claimOne(f, conv, ["1", "2"]);
    const a = await f.store.append(msg(conv, "3", "later"));
    await f.store.fail(conv, c.batch.batchId, c.token, {
      error: "HTTP 500",
      delayMs: 9_000,
      permanent: false,
    });
    const s = await f.store.inspect(conv);
    expect(s.partition).toBe(f.keys.partitionOf(conv));
    expect(s.buffer).toMatchObject({ size: 1, flushAtMs: a.flushAtMs });
    expect(s.buffer!.messages.map((m) => m.text)).toEqual(["later"]);
    expect(s.batch).toMatchObject({
      batchId: c.batch.batchId,
      fence: 1,
      attempt: 1,
      reason: "manual",
      size: 2,
      inFlight: false,
      lastError: "HTTP 500",
    });
    expect(s.batch!.nextAttemptAtMs).toBe(s.dueAtMs);
    expect(s.nowMs).toBeGreaterThan(0);
    await f.close();
  });

  it("stats: totals, 7 days oldest first, sizes", async () => {
    const f = fixture(server, "stats", { partitions: 2 });
    await f.store.append(msg("c:1", "1"));
    await f.store.append(msg("c:1", "1"));
    await f.store.append(msg("c:2", "1"));
    await deadLetter(f, "c:3", ["1"]);
    await claimOne(f, "c:4", ["1"]);
    const s = await f.store.stats();
    // Ingested counts messages as their burst becomes a batch: c:3 and c:4, not the open c:1, c:2.
    expect(s.totals).toMatchObject({ ingested: 2, duplicates: 1, dead: 1 });
    expect(s.days).toHaveLength(7);
    const today = new Date(s.nowMs).toISOString().slice(0, 10);
    expect(s.days.at(-1)).toMatchObject({ day: today });
    expect(s.days.at(-1)!.counters.ingested).toBe(2);
    expect(s.days[0]!.counters.ingested).toBe(0);
    expect(s.openBuffers).toBe(2);
    expect(s.inFlight).toBe(1);
    expect(s.dlqSize).toBe(1);
    await f.close();
  });

  it("readEvents: null cursor tails, then reads only newer events, per partition", async () => {
    const f = fixture(server, "events", { partitions: 2 });
    await f.store.append(msg("c:before", "1"));
    const tail = await f.store.readEvents(null);
    expect(tail.events).toEqual([]);
    await f.store.append(msg("c:after", "1"));
    await f.store.append(msg("c:after", "1"));
    const next = await f.store.readEvents(tail.cursor);
    expect(next.events.map((e) => e.type)).toEqual(["appended", "duplicate"]);
    expect(next.events[0]).toMatchObject({
      partition: f.keys.partitionOf("c:after"),
      conversation: maskConversation("c:after", false),
      fields: { id: "1", size: "1" },
    });
    expect((await f.store.readEvents(next.cursor)).events).toEqual([]);
    const limited = await f.store.readEvents({}, { limit: 1 });
    const pAfter = f.keys.partitionOf("c:after");
    expect(limited.events.filter((e) => e.partition === pAfter)).toHaveLength(1);
    await f.close();
  });

  it("readLatestEvents-1: newest first, pages back past 200 entries for a type, stops at scanMax", async () => {
    const f = fixture(server, "latest");
    const events = f.keys.partition(0).events;
    const read = async (count: number, type: string, scanMax: number) => {
      const r = await runScript(f.client, scripts.readLatestEvents, [events], [
        count,
        type,
        scanMax,
      ]) as [string, [string, string[]][]];
      return { lastId: r[0], entries: r[1].map(([id, fields]) => ({ id, type: fields[1] })) };
    };
    expect(await read(10, "", 100)).toEqual({ lastId: "0-0", entries: [] });
    expect(await read(10, "delivered", 100)).toEqual({ lastId: "0-0", entries: [] });
    // One `delivered`, then 450 other events on top of it (more than two pages of 200).
    const first = String(
      await f.raw.xadd(events, "*", "type", "delivered", "conv", "c", "at", "1"),
    );
    for (let i = 0; i < 450; i++) {
      await f.raw.xadd(events, "*", "type", "appended", "conv", "c", "at", String(i + 2));
    }
    const last = String(await f.raw.xadd(events, "*", "type", "delivered", "conv", "c", "at", "0"));
    const all = await read(3, "", 100);
    expect(all.lastId).toBe(last);
    expect(all.entries.map((e) => e.type)).toEqual(["delivered", "appended", "appended"]);
    const delivered = await read(10, "delivered", 10_000);
    expect(delivered).toEqual({
      lastId: last,
      entries: [{ id: last, type: "delivered" }, { id: first, type: "delivered" }],
    });
    // Never one entry twice across the page boundaries; at most `count`.
    const appended = await read(1000, "appended", 10_000);
    expect(appended.entries).toHaveLength(450);
    expect(new Set(appended.entries.map((e) => e.id)).size).toBe(450);
    expect((await read(1, "delivered", 10_000)).entries).toEqual([{ id: last, type: "delivered" }]);
    // scanMax bounds the walk: the older `delivered` is out of reach within 300 entries.
    expect((await read(10, "delivered", 300)).entries).toEqual([{ id: last, type: "delivered" }]);
    expect(await f.raw.xlen(events)).toBe(452); // read-only
    await f.close();
  });

  it("recordEvent writes a masked event and counts; best effort on a bad event", async () => {
    const f = fixture(server, "record");
    const conv = "whatsapp:966501234567";
    const p = f.keys.partitionOf(conv);
    await f.store.recordEvent(conv, "fallback", { batchId: "b_1" }, "fallbacks");
    expect((await streamEvents(f, p)).at(-1)).toMatchObject({
      type: "fallback",
      conv: "whatsapp:**********67",
      batchId: "b_1",
    });
    expect((await counters(f, p)).fallbacks).toBe("1");
    await f.store.recordEvent(conv, "lock_lost", {});
    expect((await streamEvents(f, p)).at(-1)).toMatchObject({ type: "lock_lost" });
    expect((await counters(f, p)).fallbacks).toBe("1");
    await f.close();
    // Best effort: with Redis unreachable it resolves instead of adding a second failure.
    await expect(f.store.recordEvent(conv, "fallback", {}, "fallbacks")).resolves.toBeUndefined();
  });

  it("getTime-0 and ping-0", async () => {
    const f = fixture(server, "time");
    const [sec, usec] = await f.raw.time();
    const serverMs = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    const now = await f.store.now();
    expect(now).toBeGreaterThanOrEqual(serverMs);
    expect(now - serverMs).toBeLessThan(60_000);
    await expect(f.store.ping()).resolves.toBeUndefined();
    expect(await runScript(f.client, scripts.ping, [], [])).toBe("PONG");
    await f.close();
  });

  it("a script error reply surfaces as ScriptError", async () => {
    const f = fixture(server, "script-error");
    const k = f.keys.conversation("c:wrongtype");
    await f.raw.set(k.buffer, "not a list");
    await expect(f.store.append(msg("c:wrongtype", "1"))).rejects.toBeInstanceOf(ScriptError);
    await f.close();
  });

  it("backdating helper really moves the burst (sanity for the other tests)", async () => {
    const f = fixture(server, "backdate", { windowMs: 1_000, graceMs: 0, maxWaitMs: 5_000 });
    await f.store.append(msg("c:bd", "1"));
    expect((await f.store.claim("c:bd")).status).toBe("not_due");
    await backdate(f, "c:bd", 2_000);
    expect((await f.store.claim("c:bd")).status).toBe("claimed");
    await f.close();
  });
});
