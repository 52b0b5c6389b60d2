import { describe, expect, it } from "vitest";
import { encodeConversation, fnv1a32, Keys, partitionOf } from "../../src/core/keys.ts";

describe("keys", () => {
  it("fnv1a32 matches the reference vectors", () => {
    expect(fnv1a32("")).toBe(0x811c9dc5);
    expect(fnv1a32("a")).toBe(0xe40c292c);
    expect(fnv1a32("foobar")).toBe(0xbf9cf968);
  });

  it("partitions are stable and within range, and spread", () => {
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) {
      const p = partitionOf(`support:${i}`, 16);
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThan(16);
      expect(partitionOf(`support:${i}`, 16)).toBe(p);
      seen.add(p);
    }
    expect(seen.size).toBe(16);
  });

  it("encodes ids so braces, colons, spaces never appear and ids stay distinct", () => {
    for (const id of ["{a}", "a:b", "a b", "テスト🙂", "(x)*!'", "%7B"]) {
      const e = encodeConversation(id);
      expect(e).toMatch(/^[A-Za-z0-9\-_.~%]*$/);
      expect(decodeURIComponent(e)).toBe(id);
    }
    expect(encodeConversation("%7B")).not.toBe(encodeConversation("{"));
  });

  it("every key of a conversation carries its partition's hash tag", () => {
    const keys = new Keys("lull", 16);
    for (const conv of ["support:42", "{x}", "a}{b", "whatsapp:+966 5"]) {
      const k = keys.conversation(conv);
      const tag = `lull:${k.partition.partition}`;
      const all = [
        k.seen,
        k.buffer,
        k.meta,
        k.lock,
        k.fence,
        k.batch,
        k.batchMessages,
        k.processed("b_{1}"),
        k.partition.due,
        k.partition.leases,
        k.partition.dlq,
        k.partition.events,
        k.partition.stats,
        k.partition.daily,
        keys.deadLetter(k.partition.partition, "b_{1}"),
      ];
      for (const key of all) expect(Keys.hashTag(key)).toBe(tag);
      expect(new Set(all).size).toBe(all.length);
    }
  });

  it("hashTag follows the cluster rule (first { to the next }, empty tag = whole key)", () => {
    expect(Keys.hashTag("a{b}c")).toBe("b");
    expect(Keys.hashTag("{}x")).toBe("{}x");
    expect(Keys.hashTag("a{b}{c}")).toBe("b");
    expect(Keys.hashTag("nobraces")).toBe("nobraces");
  });

  it("rejects a prefix with braces", () => {
    expect(() => new Keys("a{b", 4)).toThrow(/must not contain/);
  });
});
