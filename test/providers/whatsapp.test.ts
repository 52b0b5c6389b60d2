import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/core/errors.ts";
import type { ProviderParse } from "../../src/providers/types.ts";
import { whatsapp } from "../../src/providers/whatsapp.ts";
import { bareConfig, configWith, fixture, request, secrets } from "./helpers.ts";

const URL_BASE = "http://127.0.0.1:54321/functions/v1/lull/webhooks/whatsapp";

/** X-Hub-Signature-256 as Meta computes it, via node:crypto (independent of the adapter). */
const sign = (body: string | Uint8Array, secret = secrets.whatsappAppSecret) =>
  "sha256=" + createHmac("sha256", secret).update(body).digest("hex");

const post = (body: string, headers: Record<string, string> = {}) =>
  request(body, { url: URL_BASE, headers });

const messagesOf = (p: ProviderParse) => {
  if (p.kind !== "messages") throw new Error(`expected messages, got ${p.kind}`);
  return p;
};

function handshake(query: Record<string, string>, config = configWith()) {
  const url = new URL(URL_BASE);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const p = whatsapp.parse(request("", { method: "GET", url: url.href }), config) as ProviderParse;
  if (p.kind !== "response") throw new Error("expected a response");
  return p.response;
}

describe("whatsapp: enabled", () => {
  it("is closed without secrets, and per method with one of them", () => {
    expect(whatsapp.enabled(bareConfig())).toBe(false);
    expect(whatsapp.enabled(bareConfig(), "POST")).toBe(false);
    const onlyVerify = configWith({ WHATSAPP_APP_SECRET: undefined });
    expect(whatsapp.enabled(onlyVerify, "GET")).toBe(true);
    expect(whatsapp.enabled(onlyVerify, "POST")).toBe(false);
    const onlySecret = configWith({ WHATSAPP_VERIFY_TOKEN: undefined });
    expect(whatsapp.enabled(onlySecret, "GET")).toBe(false);
    expect(whatsapp.enabled(onlySecret, "POST")).toBe(true);
    expect(whatsapp.enabled(configWith())).toBe(true);
  });
});

describe("whatsapp: GET handshake", () => {
  it("answers 200 text/plain with the challenge when mode and token match", async () => {
    const res = handshake({
      "hub.mode": "subscribe",
      "hub.verify_token": secrets.whatsappVerifyToken,
      "hub.challenge": "1158201444",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(await res.text()).toBe("1158201444");
  });

  it.each([
    [{ "hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1" }],
    [{ "hub.mode": "unsubscribe", "hub.verify_token": "wa-verify-token-77", "hub.challenge": "1" }],
    [{ "hub.verify_token": "wa-verify-token-77", "hub.challenge": "1" }],
    [{ "hub.mode": "subscribe", "hub.challenge": "1" }],
  ])("answers 403 JSON otherwise (%j)", async (query) => {
    const res = handshake(query);
    expect(res.status).toBe(403);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect((await res.json()).error.code).toBe("forbidden");
  });

  it("never answers the challenge when the verify token is unset", async () => {
    const res = handshake(
      { "hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1" },
      configWith({ WHATSAPP_VERIFY_TOKEN: undefined }),
    );
    expect(res.status).toBe(404);
  });
});

describe("whatsapp: X-Hub-Signature-256", () => {
  const body = fixture("whatsapp/messages-multi.json");

  it("accepts the right signature over the raw body", async () => {
    expect(
      await whatsapp.authenticate(post(body, { "x-hub-signature-256": sign(body) }), configWith()),
    )
      .toBe(true);
  });

  it("accepts upper-case hex (some proxies reformat it)", async () => {
    const upper = "sha256=" + sign(body).slice(7).toUpperCase();
    expect(await whatsapp.authenticate(post(body, { "x-hub-signature-256": upper }), configWith()))
      .toBe(true);
  });

  it.each([
    ["missing", {}],
    ["signed with another secret", { "x-hub-signature-256": sign(body, "other") }],
    ["without the sha256= prefix", { "x-hub-signature-256": sign(body).slice(7) }],
    ["over a re-serialised body", {
      "x-hub-signature-256": sign(JSON.stringify(JSON.parse(body))),
    }],
    ["empty", { "x-hub-signature-256": "" }],
  ])("rejects a signature %s", async (_, headers) => {
    expect(await whatsapp.authenticate(post(body, headers), configWith())).toBe(false);
  });

  it("rejects everything when the app secret is unset", async () => {
    const config = configWith({ WHATSAPP_APP_SECRET: undefined });
    expect(await whatsapp.authenticate(post(body, { "x-hub-signature-256": sign(body) }), config))
      .toBe(false);
  });
});

describe("whatsapp: normalisation", () => {
  const config = configWith();

  it("reads every message of every change of every entry; statuses are ignored but counted", () => {
    const p = messagesOf(
      whatsapp.parse(post(fixture("whatsapp/messages-multi.json")), config) as ProviderParse,
    );
    expect(p.ignored).toBe(1);
    expect(p.rejected).toEqual([]);
    const common = { phone_number_id: "106540352242922", display_phone_number: "15550783881" };
    const sara = { phone: "966501234567", name: "Sara Al-Qahtani" };
    expect(p.messages).toEqual([
      {
        conversation: "whatsapp:106540352242922:966501234567",
        id: "wamid.HBgMOTY2NTAxMjM0NTY3FQIAEhggQTFCMkMzRDRFNUY2MDcwODA5MEExQjJDM0Q0RTVGNgA=",
        provider: "whatsapp",
        text: "hi",
        sender: "966501234567",
        sentAt: "2025-11-22T10:00:00.000Z",
        attachments: [],
        meta: { type: "text", ...common, sender: sara },
      },
      {
        conversation: "whatsapp:106540352242922:966501234567",
        id: "wamid.HBgMOTY2NTAxMjM0NTY3FQIAEhggQjJDM0Q0RTVGNjA3MDgwOTBBMUIyQzNENEU1RjYwNwA=",
        provider: "whatsapp",
        text: "this one please",
        sender: "966501234567",
        sentAt: "2025-11-22T10:00:02.000Z",
        attachments: [{
          kind: "image",
          id: "1003383421387256",
          mimeType: "image/jpeg",
          caption: "this one please",
          sha256: "HgsFkYVbfbo1ycFSCCtWNuK3ByRdqgmWsbWBrVQ2fuo=",
        }],
        meta: { type: "image", ...common, sender: sara },
      },
      {
        conversation: "whatsapp:106540352242922:447700900123",
        id: "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAEhggQzNENEU1RjYwNzA4MDkwQTFCMkMzRDRFNUY2MDcwOAA=",
        provider: "whatsapp",
        text: "[location] Kingdom Centre King Fahd Rd, Riyadh 24.7136,46.6753",
        sender: "447700900123",
        sentAt: "2025-11-22T10:00:10.000Z",
        attachments: [{
          kind: "location",
          latitude: 24.7136,
          longitude: 46.6753,
          name: "Kingdom Centre",
          address: "King Fahd Rd, Riyadh",
        }],
        meta: { type: "location", ...common, sender: { phone: "447700900123", name: "Omar" } },
      },
    ]);
  });

  it("gives every message type a text and keeps its type in meta", () => {
    const p = messagesOf(
      whatsapp.parse(post(fixture("whatsapp/message-types.json")), config) as ProviderParse,
    );
    expect(p.ignored).toBe(0);
    expect(p.messages.map((m) => [m.id, m.meta?.type, m.text])).toEqual([
      ["wamid.doc1", "document", "[document] invoice-1042.pdf"],
      ["wamid.audio1", "audio", "[voice]"],
      ["wamid.sticker1", "sticker", "[sticker]"],
      ["wamid.video1", "video", "[video]"],
      ["wamid.button1", "interactive", "Yes, confirm"],
      ["wamid.list1", "interactive", "Large"],
      ["wamid.tplbutton1", "button", "Stop promotions"],
      ["wamid.reaction1", "reaction", "[reaction] \u{1F44D}"],
      ["wamid.contacts1", "contacts", "[contacts] Layla Hassan"],
      ["wamid.unsupported1", "unsupported", "[unsupported]"],
    ]);
    const byId = new Map(p.messages.map((m) => [m.id, m.meta]));
    const attachmentsOf = new Map(p.messages.map((m) => [m.id, m.attachments]));
    expect(attachmentsOf.get("wamid.audio1")).toEqual([{
      kind: "audio",
      id: "1212300002",
      mimeType: "audio/ogg; codecs=opus",
      sha256: "a1m0Zs1l9lGq1Cw5u0Zs2Q1rZ3X8R6cF0b3VfQ9a3y4=",
      voice: true,
    }]);
    expect(attachmentsOf.get("wamid.doc1")).toMatchObject([
      { kind: "document", id: "1212300001", filename: "invoice-1042.pdf" },
    ]);
    expect(attachmentsOf.get("wamid.sticker1")).toMatchObject([
      { kind: "sticker", id: "1212300003", mimeType: "image/webp", animated: false },
    ]);
    expect(attachmentsOf.get("wamid.video1")).toMatchObject([{ kind: "video", id: "1212300004" }]);
    expect(attachmentsOf.get("wamid.button1")).toEqual([]);
    expect(byId.get("wamid.list1")).toMatchObject({
      interactive_type: "list_reply",
      reply: { id: "size-large", title: "Large", description: "14 inch" },
      reply_to: "wamid.outbound-list",
    });
    expect(byId.get("wamid.tplbutton1")).toMatchObject({ payload: "STOP_PROMOS" });
    expect(byId.get("wamid.reaction1")).toMatchObject({ reacted_to: "wamid.outbound-menu" });
    expect(attachmentsOf.get("wamid.contacts1")).toMatchObject([{
      kind: "contact",
      name: "Layla Hassan",
      contact: { name: "Layla Hassan", phones: ["+966 55 123 4567"] },
    }]);
    for (const m of p.messages) {
      expect(m.conversation).toBe("whatsapp:106540352242922:966501234567");
    }
  });

  it("a payload of statuses only yields no messages and counts every status", () => {
    const p = messagesOf(
      whatsapp.parse(post(fixture("whatsapp/statuses-only.json")), config) as ProviderParse,
    );
    expect(p).toEqual({ kind: "messages", messages: [], ignored: 2, rejected: [] });
  });

  it("a removed reaction (empty emoji) says so", () => {
    const body = JSON.stringify({
      entry: [{
        changes: [{
          value: {
            metadata: { phone_number_id: "106540352242922" },
            messages: [{
              from: "966501234567",
              id: "wamid.r",
              timestamp: "1763805600",
              type: "reaction",
              reaction: { message_id: "wamid.x", emoji: "" },
            }],
          },
        }],
      }],
    });
    const p = messagesOf(whatsapp.parse(post(body), config) as ProviderParse);
    expect(p.messages[0]?.text).toBe("[reaction removed]");
  });

  it("a broken envelope is a ValidationError naming the path", () => {
    const run = () => whatsapp.parse(post(JSON.stringify({ entry: "nope" })), config);
    expect(run).toThrow(ValidationError);
    try {
      run();
    } catch (err) {
      expect((err as ValidationError).issues[0]!.path).toEqual(["entry"]);
    }
  });

  const one = (m: Record<string, unknown>, metadata: unknown = { phone_number_id: "1065" }) =>
    JSON.stringify({ entry: [{ changes: [{ value: { metadata, messages: [m] } }] }] });
  const ok = { from: "966501234567", id: "w", timestamp: "1763805600", type: "text" };

  it.each([
    ["message without id", one({ ...ok, id: undefined }), ["id"]],
    ["timestamp not unix seconds", one({ ...ok, timestamp: "yesterday" }), ["timestamp"]],
    ["from not a phone number", one({ ...ok, from: "abc" }), ["from"]],
    ["neither from nor from_user_id", one({ ...ok, from: undefined }), ["from"]],
    ["from_user_id not a BSUID", one({ ...ok, from_user_id: "US:1" }), ["from_user_id"]],
  ])("rejects %s, naming the field", (_, body, field) => {
    const p = messagesOf(whatsapp.parse(post(body), config) as ProviderParse);
    expect(p.messages).toEqual([]);
    expect(p.rejected).toHaveLength(1);
    expect(p.rejected[0]!.reason).toBe("invalid");
    expect(p.rejected[0]!.issues[0]!.path).toEqual([
      "entry",
      0,
      "changes",
      0,
      "value",
      "messages",
      0,
      ...field,
    ]);
  });

  it("rejects messages of a change without metadata.phone_number_id (it names the number)", () => {
    const p = messagesOf(whatsapp.parse(post(one(ok, {})), config) as ProviderParse);
    expect(p.messages).toEqual([]);
    expect(p.rejected[0]!.issues[0]!.path).toEqual([
      "entry",
      0,
      "changes",
      0,
      "value",
      "metadata",
      "phone_number_id",
    ]);
  });
});

describe("whatsapp: business-scoped user ids, numbers, replays", () => {
  const config = configWith();
  const parse = (name: string, nowMs?: number) =>
    messagesOf(
      whatsapp.parse(
        request(fixture(`whatsapp/${name}`), nowMs === undefined ? {} : { nowMs }),
        config,
      ) as ProviderParse,
    );

  it("a user with a username and no phone number: keyed by BSUID, username and name kept", () => {
    const p = parse("bsuid-only.json");
    expect(p.rejected).toEqual([]);
    expect(p.messages.map((m) => [m.conversation, m.sender, m.text])).toEqual([
      [
        "whatsapp:106540352242922:US.13491208655302749999",
        "US.13491208655302749999",
        "hola, do you deliver to Brooklyn?",
      ],
      ["whatsapp:106540352242922:US.13491208655302749999", "US.13491208655302749999", "[voice]"],
    ]);
    expect(p.messages[0]!.meta!.sender).toEqual({
      userId: "US.13491208655302749999",
      username: "@maria.lopez",
      name: "Maria Lopez",
    });
    expect(p.messages[1]!.attachments).toEqual([{
      kind: "audio",
      id: "1812300009",
      mimeType: "audio/ogg; codecs=opus",
      sha256: "8yEj0hDqg1H3m7b8mQ0fYcWmB6u8gGQk2n0S0yH0c2Q=",
      voice: true,
    }]);
  });

  it("mixed payload: BSUID preferred, phone only without one, the unusable message rejected", () => {
    const p = parse("mixed.json");
    expect(p.messages.map((m) => [m.conversation, m.sender])).toEqual([
      ["whatsapp:106540352242922:IN.1410018717833190", "IN.1410018717833190"],
      ["whatsapp:106540352242922:US.13491208655302749999", "US.13491208655302749999"],
      ["whatsapp:106540352242922:447700900123", "447700900123"],
    ]);
    expect(p.messages.map((m) => m.meta!.sender)).toEqual([
      { phone: "919810218674", userId: "IN.1410018717833190", name: "Krish Thakur" },
      {
        userId: "US.13491208655302749999",
        parentUserId: "US.ENT.11815799212886844830",
        username: "@maria.lopez",
        name: "Maria Lopez",
      },
      { phone: "447700900123", name: "Omar" },
    ]);
    expect(p.rejected).toEqual([{
      reason: "invalid",
      id: "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAEhggNoSenderAtAll0000000000000000000000000A",
      issues: [{
        path: ["entry", 0, "changes", 0, "value", "messages", 3, "from"],
        message: "from or from_user_id is required",
      }],
    }]);
  });

  it("two business numbers under one app: one conversation per number", () => {
    const p = parse("two-numbers.json");
    expect(p.messages.map((m) => m.conversation)).toEqual([
      "whatsapp:106540352242922:SA.2098312003948571",
      "whatsapp:106540352249999:SA.2098312003948571",
    ]);
    expect(p.messages.map((m) => m.meta!.display_phone_number)).toEqual([
      "15550783881",
      "15550783999",
    ]);
  });

  it("user_changed_user_id: buffered under the old BSUID, the new one in meta.system", () => {
    const [m] = parse("user-changed-user-id.json").messages;
    expect(m).toMatchObject({
      conversation: "whatsapp:106540352242922:US.13491208655302749999",
      text: "[system] User Maria Lopez changed their user id",
      attachments: [],
      meta: {
        type: "system",
        system: { type: "user_changed_user_id", newUserId: "US.20771029384756102938" },
      },
    });
  });

  it("a message older than LULL_DEDUP_TTL_MS is refused as stale; a fresh one is kept", () => {
    // 1763805620 (bsuid-only's first message) + one day + 1 s: the first is 1 s too old.
    const nowMs = (1763805620 + 86400 + 1) * 1000;
    const p = parse("bsuid-only.json", nowMs);
    expect(p.rejected.map((r) => [r.reason, r.id])).toEqual([
      ["stale", "wamid.HBgLVVMuMTM0OTEyMDg2NTUzMDI3NDk5OTkVAgASGBQzQTAwQkQxQ0IwMEYzNkU0RjBBNAA="],
    ]);
    expect(p.messages.map((m) => m.text)).toEqual(["[voice]"]);
  });
});
