/**
 * The open buffer's meta became a BITFIELD string in 0.3 (one command per append instead of
 * HMGET + HSET). A buffer opened by an older version keeps its meta as a hash until the next
 * script writes it: every script reads both forms, and the first write turns the old one into
 * the new one. Here the old form is written by hand, as 0.2 (and, with a TTL, 0.1) left it.
 */
import { describe, expect, it } from "vitest";
import { byteLength, encodeMessage } from "../../src/store/codec.ts";
import { useRedisServer } from "../harness/redis-server.ts";
import { claimOne, type Fixture, fixture, msg, readMeta } from "./helpers.ts";

const server = useRedisServer();

/** An open buffer of `ids` with a hash meta, `agoMs` old, as an older version wrote it. */
async function legacyBuffer(f: Fixture, conversation: string, ids: string[], agoMs: number) {
  const k = f.keys.conversation(conversation);
  const now = (await f.store.now()) - agoMs;
  const entries = ids.map((id) => `${now}|${encodeMessage(msg(conversation, id))}`);
  await f.raw.rpush(k.buffer, ...entries);
  for (const id of ids) await f.raw.zadd(k.seen, now, id);
  await f.raw.hset(k.meta, {
    firstAt: now,
    lastAt: now,
    count: ids.length,
    bytes: entries.reduce((n, e) => n + byteLength(e), 0),
  });
  await f.raw.zadd(k.partition.due, now + f.s.windowMs + f.s.graceMs, conversation);
  return { k, now, entries };
}

describe("a meta written before 0.3 (a hash)", () => {
  it("the next append carries it over into the string form, counts and times intact", async () => {
    const f = fixture(server, "meta-up-append");
    const conv = "c:legacy-append";
    const { k, now, entries } = await legacyBuffer(f, conv, ["a", "b"], 5_000);
    const r = await f.store.append(msg(conv, "c"));
    expect(r).toMatchObject({ status: "appended", size: 3, armTimer: false });
    expect(await f.raw.type(k.meta)).toBe("string");
    const third = (await f.raw.lrange(k.buffer, 2, 2))[0]!;
    expect(await readMeta(f, conv)).toEqual({
      firstAt: now,
      lastAt: r.nowMs,
      count: 3,
      bytes: entries.reduce((n, e) => n + byteLength(e), 0) + byteLength(third),
      createdAt: 0,
      attempts: 0,
      counted: 0,
    });
    // Its redelivered ids are still duplicates.
    expect((await f.store.append(msg(conv, "a"))).status).toBe("duplicate");
    const claim = await f.store.claim(conv, { force: true });
    expect(claim.status).toBe("claimed");
    if (claim.status !== "claimed") return;
    expect(claim.claim.batch.messages.map((m) => m.id)).toEqual(["a", "b", "c"]);
    expect(Date.parse(claim.claim.batch.firstAt)).toBe(now);
    await f.close();
  });

  it("a claim takes it whole, and a TTL from 0.1 is cleared from the batch", async () => {
    const f = fixture(server, "meta-up-claim");
    const conv = "c:legacy-claim";
    const { k } = await legacyBuffer(f, conv, ["a", "b"], 120_000);
    await f.raw.pexpire(k.buffer, 600_000); // 0.1 buffers carried a TTL
    const claim = await f.store.claim(conv);
    expect(claim.status).toBe("claimed");
    if (claim.status !== "claimed") return;
    expect(claim.claim.batch.messages.map((m) => m.id)).toEqual(["a", "b"]);
    expect(claim.claim.batch.reason).toBe("quiet");
    expect(await f.raw.pttl(k.batchMessages)).toBe(-1);
    expect(await f.raw.exists(k.meta, k.buffer)).toBe(0);
    await f.close();
  });

  it("an ack finds an old-form buffer that queued behind the batch and indexes it", async () => {
    const f = fixture(server, "meta-up-ack");
    const conv = "c:legacy-ack";
    const k = f.keys.conversation(conv);
    const claim = await claimOne(f, conv, ["1"]);
    // An older isolate appended behind the batch meanwhile (a hash meta, no due entry).
    const { now } = await legacyBuffer(f, conv, ["2"], 0);
    await f.raw.zrem(k.partition.due, conv);
    const ack = await f.store.ack(conv, claim.batch.batchId, claim.token);
    expect(ack.dueAgainAtMs).toBe(now + f.s.windowMs + f.s.graceMs);
    expect(Number(await f.raw.zscore(k.partition.due, conv))).toBe(ack.dueAgainAtMs);
    await f.close();
  });

  it("inspect reads it, and a supersede merges into it", async () => {
    const f = fixture(server, "meta-up-sup");
    const conv = "c:legacy-sup";
    const claim = await claimOne(f, conv, ["1"]);
    const { now } = await legacyBuffer(f, conv, ["2", "3"], 0);
    const state = await f.store.inspect(conv);
    expect(state.buffer).toMatchObject({ size: 2 });
    expect(state.buffer?.firstAt).toBe(new Date(now).toISOString());
    const merged = await f.store.supersede(conv, claim.batch.batchId, claim.token);
    expect(merged).toMatchObject({ status: "merged", size: 3 });
    expect(await readMeta(f, conv)).toMatchObject({ count: 3, lastAt: now, counted: 1 });
    await f.close();
  });
});
