import { describe, expect, it } from "vitest";
import type { InboundMessage } from "../../src/core/types.ts";
import { decodeEntry, encodeMessage, makeEntry } from "../../src/store/codec.ts";

describe("buffer entry codec", () => {
  const base: InboundMessage = {
    conversation: "whatsapp:1",
    id: "wamid.1",
    provider: "whatsapp",
    text: "hi",
  };

  it("leaves out an empty meta (every byte of an entry is stored), and decoding restores {}", () => {
    const json = encodeMessage({ ...base, meta: {} });
    expect(JSON.parse(json)).not.toHaveProperty("meta");
    expect(encodeMessage(base)).toBe(json);
    expect(decodeEntry(makeEntry(1_700_000_000_000, json)).meta).toEqual({});
  });

  it("keeps a meta with fields", () => {
    const json = encodeMessage({ ...base, meta: { interactive_type: "button" } });
    expect(decodeEntry(makeEntry(1, json)).meta).toEqual({ interactive_type: "button" });
  });

  it("decodes an entry written with the empty meta spelled out exactly as one without", () => {
    const ms = 1_700_000_000_000;
    const older = `${ms}|{"id":"wamid.1","provider":"whatsapp","text":"hi","meta":{}}`;
    expect(decodeEntry(older)).toEqual(decodeEntry(makeEntry(ms, encodeMessage(base))));
  });
});
