import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/core/errors.ts";
import {
  generic,
  GENERIC_MAX_BATCH,
  GENERIC_MAX_TEXT_LENGTH,
} from "../../src/providers/generic.ts";
import type { ProviderParse } from "../../src/providers/types.ts";
import { bareConfig, configWith, fixture, request, secrets } from "./helpers.ts";

const config = configWith();
const parse = (body: unknown) => {
  const p = generic.parse(request(JSON.stringify(body)), config) as ProviderParse;
  if (p.kind !== "messages") throw new Error("expected messages");
  return p;
};
const issuesOf = (body: unknown) => {
  try {
    parse(body);
  } catch (err) {
    if (err instanceof ValidationError) return err.issues;
    throw err;
  }
  throw new Error("expected a ValidationError");
};

describe("generic: bearer tokens", () => {
  const auth = (value?: string, c = config) =>
    generic.authenticate(
      request("{}", { headers: value === undefined ? {} : { authorization: value } }),
      c,
    );

  it("accepts every token of the rotation list", async () => {
    for (const token of secrets.ingestTokens) expect(await auth(`Bearer ${token}`)).toBe(true);
    expect(await auth(`bearer ${secrets.ingestTokens[1]}`)).toBe(true);
  });

  it.each([
    [undefined],
    [""],
    ["Bearer"],
    ["Bearer "],
    ["Bearer wrong"],
    ["Bearer ingest-new-2x"],
    ["Basic ingest-new-2"],
    ["ingest-new-2"],
    ["Bearer ingest-new-2,ingest-old-1"],
  ])("rejects %j", async (value) => {
    expect(await auth(value)).toBe(false);
  });

  it("is disabled and closed when LULL_INGEST_TOKEN is unset", async () => {
    expect(generic.enabled(bareConfig())).toBe(false);
    expect(generic.enabled(config)).toBe(true);
    expect(await auth("Bearer ", bareConfig())).toBe(false);
  });
});

describe("generic: messages", () => {
  it("one message, exactly as DESIGN.md shows it", () => {
    expect(parse(JSON.parse(fixture("generic/single.json")))).toEqual({
      kind: "messages",
      ignored: 0,
      rejected: [],
      messages: [{
        conversation: "support:42",
        id: "m-1",
        provider: "generic",
        text: "hi",
        sender: "u7",
        sentAt: "2026-11-22T10:00:00.000Z",
        meta: { channel: "web", tags: ["vip"] },
      }],
    });
  });

  it("a batch keeps order, trims the conversation, normalises sentAt, drops unknown fields", () => {
    expect(parse(JSON.parse(fixture("generic/batch.json"))).messages).toEqual([
      { conversation: "support:42", id: "m-2", provider: "generic", text: "I want", meta: {} },
      {
        conversation: "support:42",
        id: "m-3",
        provider: "generic",
        text: "pizza",
        sentAt: "2026-11-22T10:00:05.000Z",
        meta: {},
      },
    ]);
  });

  it("text defaults to an empty string", () => {
    expect(parse({ conversation: "c", id: "1" }).messages[0]!.text).toBe("");
  });

  it("keeps a __proto__ key in meta as data", () => {
    const p = generic.parse(
      request('{"conversation":"c","id":"1","meta":{"__proto__":{"x":1}}}'),
      config,
    );
    const meta = (p as Extract<ProviderParse, { kind: "messages" }>).messages[0]!.meta!;
    expect(Object.getPrototypeOf(meta)).toBe(Object.prototype);
    expect(Object.keys(meta)).toEqual(["__proto__"]);
  });

  it.each([
    ["conversation missing", { id: "1" }, ["conversation"]],
    ["conversation blank", { conversation: "   ", id: "1" }, ["conversation"]],
    ["conversation too long", { conversation: "c".repeat(257), id: "1" }, ["conversation"]],
    ["id missing", { conversation: "c" }, ["id"]],
    ["id a number", { conversation: "c", id: 1 }, ["id"]],
    [
      "text too long",
      { conversation: "c", id: "1", text: "x".repeat(GENERIC_MAX_TEXT_LENGTH + 1) },
      [
        "text",
      ],
    ],
    ["text not a string", { conversation: "c", id: "1", text: 5 }, ["text"]],
    ["sentAt not ISO", { conversation: "c", id: "1", sentAt: "yesterday" }, ["sentAt"]],
    ["sentAt without zone", { conversation: "c", id: "1", sentAt: "2026-11-22T10:00:00" }, [
      "sentAt",
    ]],
    ["meta an array", { conversation: "c", id: "1", meta: [] }, ["meta"]],
    ["meta too deep", { conversation: "c", id: "1", meta: deep(20) }, ["meta"]],
    ["empty batch", { messages: [] }, ["messages"]],
    ["batch not an array", { messages: {} }, ["messages"]],
    ["bad item in a batch", { messages: [{ conversation: "c", id: "1" }, { conversation: "c" }] }, [
      "messages",
      1,
      "id",
    ]],
    ["too many in a batch", {
      messages: Array.from(
        { length: GENERIC_MAX_BATCH + 1 },
        (_, i) => ({ conversation: "c", id: `${i}` }),
      ),
    }, ["messages"]],
  ])("rejects %s, naming the path", (_, body, path) => {
    expect(issuesOf(body).map((i) => i.path)).toContainEqual(path);
  });

  it.each([["null"], ["[]"], ["42"], ['"hi"'], ["{"], [""]])("rejects the body %j", (body) => {
    expect(() => generic.parse(request(body), config)).toThrow(ValidationError);
  });
});

function deep(levels: number): Record<string, unknown> {
  let v: Record<string, unknown> = {};
  for (let i = 0; i < levels; i++) v = { v };
  return v;
}

describe("generic: attachments", () => {
  const base = { conversation: "support:42", id: "m-1", text: "my receipt" };

  it("are accepted in the normalised shape and delivered as sent (unknown fields dropped)", () => {
    const attachments = [
      {
        kind: "document",
        url: "https://files.example/r.pdf",
        mimeType: "application/pdf",
        filename: "r.pdf",
        extra: "dropped",
      },
      { kind: "location", latitude: 24.7, longitude: 46.6, name: "Shop" },
      { kind: "contact", contact: { name: "Layla", phones: ["+966551234567"] } },
    ];
    const [m] = parse({ ...base, attachments }).messages;
    expect(m!.attachments).toEqual([
      {
        kind: "document",
        url: "https://files.example/r.pdf",
        mimeType: "application/pdf",
        filename: "r.pdf",
      },
      { kind: "location", latitude: 24.7, longitude: 46.6, name: "Shop" },
      { kind: "contact", contact: { name: "Layla", phones: ["+966551234567"] } },
    ]);
    expect(parse(base).messages[0]!.attachments).toBeUndefined();
  });

  it.each([
    ["not an array", { attachments: "photo.jpg" }, ["attachments"]],
    ["an unknown kind", { attachments: [{ kind: "gif" }] }, ["attachments", 0, "kind"]],
    ["a latitude that is text", {
      attachments: [{ kind: "location", latitude: "north" }],
    }, ["attachments", 0, "latitude"]],
    ["a negative size", { attachments: [{ kind: "image", size: -1 }] }, [
      "attachments",
      0,
      "size",
    ]],
    ["too many", { attachments: Array.from({ length: 21 }, () => ({ kind: "image" })) }, [
      "attachments",
    ]],
  ])("reject %s, naming the field", (_, extra, path) => {
    expect(issuesOf({ ...base, ...extra })[0]!.path).toEqual(path);
  });
});
