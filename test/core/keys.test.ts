import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeConversation, fnv1a32, Keys, partitionOf } from "../../src/core/keys.ts";

/** FNV-1a over TextEncoder's bytes: the definition fnv1a32 must keep matching. */
function referenceFnv(input: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(input)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/** Any UTF-16 sequence, lone and reversed surrogates included. */
const codeUnits = fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 40 })
  .map((units) => String.fromCharCode(...units));

describe("keys", () => {
  it("fnv1a32 matches the reference vectors", () => {
    expect(fnv1a32("")).toBe(0x811c9dc5);
    expect(fnv1a32("a")).toBe(0xe40c292c);
    expect(fnv1a32("foobar")).toBe(0xbf9cf968);
  });

  it("fnv1a32 hashes the UTF-8 bytes TextEncoder gives (lone surrogates as U+FFFD)", () => {
    for (const s of ["é", "€", "テスト🙂", "\ud800", "a\udc00b", "\udc00\ud800", "\ud83d\ude42x"]) {
      expect(fnv1a32(s)).toBe(referenceFnv(s));
    }
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: "binary" }), codeUnits), (s) => {
        expect(fnv1a32(s)).toBe(referenceFnv(s));
      }),
      { numRuns: 300 },
    );
  });

  it("cached keys equal freshly built ones, also after the cache dropped them", () => {
    const keys = new Keys("lull", 16);
    const fresh = (c: string) => new Keys("lull", 16).conversation(c);
    const first = keys.conversation("support:1");
    expect(keys.conversation("support:1")).toBe(first);
    for (let i = 0; i < 3000; i++) keys.conversation(`support:${i}`);
    for (const c of ["support:1", "support:2999", "{x}", "whatsapp:+966 5"]) {
      const k = keys.conversation(c);
      const f = fresh(c);
      expect({ ...k, partition: { ...k.partition, providerRate: null }, processed: null })
        .toEqual({ ...f, partition: { ...f.partition, providerRate: null }, processed: null });
      expect(k.processed("b1")).toBe(f.processed("b1"));
      expect(k.partition.providerRate("whatsapp")).toBe(f.partition.providerRate("whatsapp"));
    }
    expect(keys.partition(3)).toBe(keys.partition(3));
    expect(keys.wake()).toEqual(new Keys("lull", 16).wake());
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
