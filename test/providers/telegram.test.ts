import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/core/errors.ts";
import { telegram } from "../../src/providers/telegram.ts";
import type { ProviderParse } from "../../src/providers/types.ts";
import { bareConfig, configWith, fixture, request, secrets } from "./helpers.ts";

const config = configWith();
const parse = (body: string) => {
  const p = telegram.parse(request(body), config) as ProviderParse;
  if (p.kind !== "messages") throw new Error("expected messages");
  return p;
};

describe("telegram: secret header", () => {
  const body = fixture("telegram/message-text.json");

  it("accepts the configured secret token", async () => {
    const req = request(body, {
      headers: { "x-telegram-bot-api-secret-token": secrets.telegramSecret },
    });
    expect(await telegram.authenticate(req, config)).toBe(true);
  });

  it.each([
    ["missing", {}],
    ["wrong", { "x-telegram-bot-api-secret-token": "tg-secret_token-A2" }],
    ["a prefix of it", { "x-telegram-bot-api-secret-token": "tg-secret" }],
    ["empty", { "x-telegram-bot-api-secret-token": "" }],
  ])("rejects a %s token", async (_, headers) => {
    expect(await telegram.authenticate(request(body, { headers }), config)).toBe(false);
  });

  it("is disabled and rejects everything when the secret is unset", async () => {
    expect(telegram.enabled(bareConfig())).toBe(false);
    expect(telegram.enabled(config)).toBe(true);
    const req = request(body, { headers: { "x-telegram-bot-api-secret-token": "" } });
    expect(await telegram.authenticate(req, bareConfig())).toBe(false);
  });
});

describe("telegram: normalisation", () => {
  it("message: chat id as the conversation, update_id as the message id", () => {
    expect(parse(fixture("telegram/message-text.json"))).toEqual({
      kind: "messages",
      ignored: 0,
      messages: [{
        conversation: "telegram:5012345678",
        id: "871502337",
        provider: "telegram",
        text: "hi there",
        sender: "5012345678",
        sentAt: "2025-11-22T10:00:00.000Z",
        meta: {
          kind: "message",
          message_id: 412,
          chat_type: "private",
          username: "sara_q",
          first_name: "Sara",
        },
      }],
    });
  });

  it("group photo without caption: negative chat id kept, placeholder text", () => {
    expect(parse(fixture("telegram/group-photo.json")).messages).toEqual([{
      conversation: "telegram:-1001234567890",
      id: "871502338",
      provider: "telegram",
      text: "[photo]",
      sender: "5012345678",
      sentAt: "2025-11-22T10:00:05.000Z",
      meta: {
        kind: "message",
        message_id: 77,
        chat_type: "supergroup",
        chat_title: "Pizza Orders",
        username: "sara_q",
        first_name: "Sara",
        media: "photo",
      },
    }]);
  });

  it("edited_message: a new update_id, sentAt from edit_date", () => {
    const [m] = parse(fixture("telegram/edited-message.json")).messages;
    expect(m).toMatchObject({
      conversation: "telegram:5012345678",
      id: "871502339",
      text: "hi there, one large please",
      sentAt: "2025-11-22T10:01:00.000Z",
      meta: { kind: "edited_message", message_id: 412 },
    });
  });

  it("channel_post: sender is the channel (sender_chat), caption as text", () => {
    expect(parse(fixture("telegram/channel-post.json")).messages).toEqual([{
      conversation: "telegram:-1009876543210",
      id: "871502340",
      provider: "telegram",
      text: "new menu is live",
      sender: "-1009876543210",
      sentAt: "2025-11-22T10:01:40.000Z",
      meta: {
        kind: "channel_post",
        message_id: 9,
        chat_type: "channel",
        chat_title: "Lull Announcements",
        username: "lull_news",
        media: "video",
      },
    }]);
  });

  it("a redelivered update keeps its id (so the store dedupes it)", () => {
    const body = fixture("telegram/message-text.json");
    expect(parse(body).messages[0]!.id).toBe(parse(body).messages[0]!.id);
  });

  it("other update kinds are ignored and counted", () => {
    expect(parse(fixture("telegram/callback-query.json"))).toEqual({
      kind: "messages",
      messages: [],
      ignored: 1,
    });
  });

  it.each([
    ["location", { location: { latitude: 24.7, longitude: 46.6 } }, "[location] 24.7,46.6"],
    ["sticker", { sticker: { emoji: "\u{1F355}", file_id: "f" } }, "[sticker] \u{1F355}"],
    ["voice", { voice: { file_id: "f", duration: 3 } }, "[voice]"],
    ["document with caption", { document: { file_id: "f" }, caption: "menu" }, "menu"],
    [
      "contact",
      { contact: { phone_number: "+966501234567", first_name: "Layla" } },
      "[contact] Layla +966501234567",
    ],
  ])("%s", (_, content, text) => {
    const body = JSON.stringify({
      update_id: 1,
      message: { message_id: 1, date: 1, chat: { id: 5, type: "private" }, ...content },
    });
    expect(parse(body).messages[0]!.text).toBe(text);
  });

  it.each([
    ["no update_id", { message: { message_id: 1, date: 1, chat: { id: 5, type: "private" } } }],
    ["chat id not a number", {
      update_id: 1,
      message: { message_id: 1, date: 1, chat: { id: "5", type: "private" } },
    }],
    ["message without chat", { update_id: 1, message: { message_id: 1, date: 1 } }],
    ["date out of range", {
      update_id: 1,
      message: { message_id: 1, date: 1e300, chat: { id: 5, type: "private" } },
    }],
  ])("rejects %s", (_, payload) => {
    expect(() => parse(JSON.stringify(payload))).toThrow(ValidationError);
  });
});
