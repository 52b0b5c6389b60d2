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
    const common = { phone_number_id: "106540352242922", display_phone_number: "15550783881" };
    expect(p.messages).toEqual([
      {
        conversation: "whatsapp:966501234567",
        id: "wamid.HBgMOTY2NTAxMjM0NTY3FQIAEhggQTFCMkMzRDRFNUY2MDcwODA5MEExQjJDM0Q0RTVGNgA=",
        provider: "whatsapp",
        text: "hi",
        sender: "966501234567",
        sentAt: "2025-11-22T10:00:00.000Z",
        meta: { type: "text", ...common, profile_name: "Sara Al-Qahtani" },
      },
      {
        conversation: "whatsapp:966501234567",
        id: "wamid.HBgMOTY2NTAxMjM0NTY3FQIAEhggQjJDM0Q0RTVGNjA3MDgwOTBBMUIyQzNENEU1RjYwNwA=",
        provider: "whatsapp",
        text: "this one please",
        sender: "966501234567",
        sentAt: "2025-11-22T10:00:02.000Z",
        meta: {
          type: "image",
          ...common,
          profile_name: "Sara Al-Qahtani",
          media: { id: "1003383421387256", mime_type: "image/jpeg" },
        },
      },
      {
        conversation: "whatsapp:447700900123",
        id: "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAEhggQzNENEU1RjYwNzA4MDkwQTFCMkMzRDRFNUY2MDcwOAA=",
        provider: "whatsapp",
        text: "[location] Kingdom Centre King Fahd Rd, Riyadh 24.7136,46.6753",
        sender: "447700900123",
        sentAt: "2025-11-22T10:00:10.000Z",
        meta: {
          type: "location",
          ...common,
          profile_name: "Omar",
          location: {
            latitude: 24.7136,
            longitude: 46.6753,
            name: "Kingdom Centre",
            address: "King Fahd Rd, Riyadh",
          },
        },
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
      ["wamid.audio1", "audio", "[audio]"],
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
    expect(byId.get("wamid.audio1")).toMatchObject({ media: { id: "1212300002", voice: true } });
    expect(byId.get("wamid.list1")).toMatchObject({
      interactive_type: "list_reply",
      reply: { id: "size-large", title: "Large", description: "14 inch" },
      reply_to: "wamid.outbound-list",
    });
    expect(byId.get("wamid.tplbutton1")).toMatchObject({ payload: "STOP_PROMOS" });
    expect(byId.get("wamid.reaction1")).toMatchObject({ reacted_to: "wamid.outbound-menu" });
    expect(byId.get("wamid.contacts1")).toMatchObject({
      contacts: [{ name: "Layla Hassan", phones: ["+966 55 123 4567"] }],
    });
    for (const m of p.messages) expect(m.conversation).toBe("whatsapp:966501234567");
  });

  it("a payload of statuses only yields no messages and counts every status", () => {
    const p = messagesOf(
      whatsapp.parse(post(fixture("whatsapp/statuses-only.json")), config) as ProviderParse,
    );
    expect(p).toEqual({ kind: "messages", messages: [], ignored: 2 });
  });

  it("a removed reaction (empty emoji) says so", () => {
    const body = JSON.stringify({
      entry: [{
        changes: [{
          value: {
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

  it.each([
    ["no entry", {}],
    ["message without id", {
      entry: [{
        changes: [{
          value: { messages: [{ from: "966501234567", timestamp: "1", type: "text" }] },
        }],
      }],
    }],
    ["timestamp not unix seconds", {
      entry: [{
        changes: [{
          value: {
            messages: [{ from: "966501234567", id: "w", timestamp: "yesterday", type: "text" }],
          },
        }],
      }],
    }],
    ["from not a phone number", {
      entry: [{
        changes: [{
          value: { messages: [{ from: "abc", id: "w", timestamp: "1", type: "text" }] },
        }],
      }],
    }],
  ])("rejects %s with a ValidationError naming the path", (_, payload) => {
    const run = () => whatsapp.parse(post(JSON.stringify(payload)), config);
    expect(run).toThrow(ValidationError);
    try {
      run();
    } catch (err) {
      expect((err as ValidationError).issues.length).toBeGreaterThan(0);
      expect((err as ValidationError).issues[0]!.path.length).toBeGreaterThan(0);
    }
  });
});
