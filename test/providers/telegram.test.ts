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
  it("message: bot and chat id as the conversation, update_id as the message id", () => {
    expect(parse(fixture("telegram/message-text.json"))).toEqual({
      kind: "messages",
      ignored: 0,
      rejected: [],
      messages: [{
        conversation: "telegram:default:5012345678",
        id: "871502337",
        provider: "telegram",
        text: "hi there",
        sender: "5012345678",
        sentAt: "2025-11-22T10:00:00.000Z",
        attachments: [],
        meta: {
          kind: "message",
          bot: "default",
          message_id: 412,
          chat_id: 5012345678,
          chat_type: "private",
          sender: { userId: "5012345678", username: "sara_q", name: "Sara" },
        },
      }],
    });
  });

  it("group photo without caption: negative chat id kept, the largest size attached", () => {
    expect(parse(fixture("telegram/group-photo.json")).messages).toEqual([{
      conversation: "telegram:default:-1001234567890",
      id: "871502338",
      provider: "telegram",
      text: "[photo]",
      sender: "5012345678",
      sentAt: "2025-11-22T10:00:05.000Z",
      attachments: [{
        kind: "image",
        id: "AgACAgQAAxkBAAIBTWXs-large",
        size: 65420,
        width: 1280,
        height: 960,
      }],
      meta: {
        kind: "message",
        bot: "default",
        message_id: 77,
        chat_id: -1001234567890,
        chat_type: "supergroup",
        chat_title: "Pizza Orders",
        sender: { userId: "5012345678", username: "sara_q", name: "Sara" },
      },
    }]);
  });

  it("edited_message: a new update_id, sentAt from edit_date", () => {
    const [m] = parse(fixture("telegram/edited-message.json")).messages;
    expect(m).toMatchObject({
      conversation: "telegram:default:5012345678",
      id: "871502339",
      text: "hi there, one large please",
      sentAt: "2025-11-22T10:01:00.000Z",
      meta: { kind: "edited_message", message_id: 412 },
    });
  });

  it("channel_post: sender is the channel (sender_chat), caption as text", () => {
    expect(parse(fixture("telegram/channel-post.json")).messages).toEqual([{
      conversation: "telegram:default:-1009876543210",
      id: "871502340",
      provider: "telegram",
      text: "new menu is live",
      sender: "-1009876543210",
      sentAt: "2025-11-22T10:01:40.000Z",
      attachments: [{
        kind: "video",
        id: "BAACAgQAAxkBAAIBVGXs",
        caption: "new menu is live",
        size: 1048576,
        width: 1280,
        height: 720,
        durationS: 12,
      }],
      meta: {
        kind: "channel_post",
        bot: "default",
        message_id: 9,
        chat_id: -1009876543210,
        chat_type: "channel",
        chat_title: "Lull Announcements",
        sender: { userId: "-1009876543210", username: "lull_news", name: "Lull Announcements" },
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
      rejected: [],
    });
  });

  const file = { file_unique_id: "AgADu", file_size: 2048 };
  it.each([
    ["location", { location: { latitude: 24.7, longitude: 46.6 } }, "[location] 24.7,46.6", {
      kind: "location",
      latitude: 24.7,
      longitude: 46.6,
    }],
    [
      "venue (location and venue in one attachment)",
      {
        location: { latitude: 24.71, longitude: 46.67 },
        venue: {
          location: { latitude: 24.71, longitude: 46.67 },
          title: "Kingdom Centre",
          address: "King Fahd Rd",
        },
      },
      "[venue] Kingdom Centre King Fahd Rd",
      {
        kind: "location",
        latitude: 24.71,
        longitude: 46.67,
        name: "Kingdom Centre",
        address: "King Fahd Rd",
      },
    ],
    [
      "sticker",
      {
        sticker: {
          emoji: "\u{1F355}",
          file_id: "CAACAgIAAxkBAAIB",
          ...file,
          width: 512,
          height: 512,
          is_animated: false,
          is_video: false,
        },
      },
      "[sticker] \u{1F355}",
      {
        kind: "sticker",
        id: "CAACAgIAAxkBAAIB",
        mimeType: "image/webp",
        size: 2048,
        width: 512,
        height: 512,
        emoji: "\u{1F355}",
      },
    ],
    [
      "voice",
      { voice: { file_id: "AwACAgQAAxkBAAIB", ...file, duration: 3, mime_type: "audio/ogg" } },
      "[voice]",
      {
        kind: "audio",
        id: "AwACAgQAAxkBAAIB",
        mimeType: "audio/ogg",
        size: 2048,
        durationS: 3,
        voice: true,
      },
    ],
    [
      "audio",
      {
        audio: {
          file_id: "CQACAgQAAxkBAAIB",
          ...file,
          duration: 200,
          performer: "Fairuz",
          title: "Kifak Inta",
          file_name: "kifak.mp3",
          mime_type: "audio/mpeg",
        },
      },
      "[audio] Fairuz Kifak Inta",
      {
        kind: "audio",
        id: "CQACAgQAAxkBAAIB",
        mimeType: "audio/mpeg",
        filename: "kifak.mp3",
        size: 2048,
        durationS: 200,
        name: "Fairuz Kifak Inta",
      },
    ],
    [
      "video_note",
      { video_note: { file_id: "DQACAgQAAxkBAAIB", ...file, length: 240, duration: 7 } },
      "[video note]",
      {
        kind: "video",
        id: "DQACAgQAAxkBAAIB",
        size: 2048,
        width: 240,
        height: 240,
        durationS: 7,
        round: true,
      },
    ],
    [
      "animation (its document twin is not a second attachment)",
      {
        animation: { file_id: "CgACAgQAAxkBAAIB", ...file, mime_type: "video/mp4", duration: 2 },
        document: { file_id: "CgACAgQAAxkBAAIB", ...file, mime_type: "video/mp4" },
      },
      "[animation]",
      {
        kind: "video",
        id: "CgACAgQAAxkBAAIB",
        mimeType: "video/mp4",
        size: 2048,
        durationS: 2,
        animated: true,
      },
    ],
    [
      "document with caption",
      {
        document: {
          file_id: "BQACAgQAAxkBAAIB",
          ...file,
          file_name: "menu.pdf",
          mime_type: "application/pdf",
        },
        caption: "menu",
      },
      "menu",
      {
        kind: "document",
        id: "BQACAgQAAxkBAAIB",
        mimeType: "application/pdf",
        caption: "menu",
        filename: "menu.pdf",
        size: 2048,
      },
    ],
    [
      "contact",
      { contact: { phone_number: "+966501234567", first_name: "Layla", user_id: 777 } },
      "[contact] Layla +966501234567",
      {
        kind: "contact",
        name: "Layla",
        contact: { name: "Layla", phones: ["+966501234567"], userId: "777" },
      },
    ],
  ])("%s: readable text and one normalised attachment", (_, content, text, attached) => {
    const body = JSON.stringify({
      update_id: 1,
      message: { message_id: 1, date: 1763805600, chat: { id: 5, type: "private" }, ...content },
    });
    const [m] = parse(body).messages;
    expect(m!.text).toBe(text);
    expect(m!.attachments).toEqual([attached]);
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

describe("telegram: several bots, forum topics, albums, replays", () => {
  const bots = configWith({
    TELEGRAM_WEBHOOK_SECRET: "sales=sales-Secret_1,support=support-Secret_2",
  });
  const text = fixture("telegram/message-text.json");
  const withSecret = (secret: string, account?: string) =>
    request(text, {
      headers: { "x-telegram-bot-api-secret-token": secret },
      ...(account !== undefined ? { account } : {}),
    });

  it("each bot route takes its own secret only; unknown bots and the bare route are closed", async () => {
    expect(await telegram.authenticate(withSecret("sales-Secret_1", "sales"), bots)).toBe(true);
    expect(await telegram.authenticate(withSecret("support-Secret_2", "support"), bots)).toBe(true);
    expect(await telegram.authenticate(withSecret("support-Secret_2", "sales"), bots)).toBe(false);
    expect(await telegram.authenticate(withSecret("sales-Secret_1", "nobody"), bots)).toBe(false);
    expect(telegram.enabled(bots, "POST", "sales")).toBe(true);
    expect(telegram.enabled(bots, "POST", "nobody")).toBe(false);
    // Named bots only: the bare route has no `default` bot to serve.
    expect(telegram.enabled(bots, "POST")).toBe(false);
    expect(await telegram.authenticate(withSecret("sales-Secret_1"), bots)).toBe(false);
  });

  it("the same chat writing to two bots is two conversations", () => {
    const keys = ["sales", "support"].map((account) => {
      const p = telegram.parse(request(text, { account }), bots) as ProviderParse;
      if (p.kind !== "messages") throw new Error("expected messages");
      return p.messages[0]!.conversation;
    });
    expect(keys).toEqual(["telegram:sales:5012345678", "telegram:support:5012345678"]);
  });

  it("a forum topic is its own conversation, unless TELEGRAM_FORUM_TOPICS is false", () => {
    const body = fixture("telegram/forum-topic.json");
    const [m] = parse(body).messages;
    expect(m!.conversation).toBe("telegram:default:-1001987654321:1187");
    expect(m!.meta).toMatchObject({ topic_id: 1187, sender: { name: "Sara Q" } });
    const flat = telegram.parse(request(body), configWith({ TELEGRAM_FORUM_TOPICS: "false" }));
    expect((flat as { messages: { conversation: string }[] }).messages[0]!.conversation)
      .toBe("telegram:default:-1001987654321");
  });

  it("an album arrives as one message per photo in one conversation, largest size each", () => {
    const ms = ["media-group-1.json", "media-group-2.json"]
      .map((f) => parse(fixture(`telegram/${f}`)).messages[0]!);
    expect(ms.map((m) => [m.conversation, m.text, m.attachments![0]!.id])).toEqual([
      ["telegram:default:5012345678", "both pizzas arrived cold", "AgACAgQAAxkBAAIFMWmg-x"],
      ["telegram:default:5012345678", "[photo]", "AgACAgQAAxkBAAIFMmmg-x"],
    ]);
    expect(ms.map((m) => m.meta!.media_group_id)).toEqual([
      "13857226193858305",
      "13857226193858305",
    ]);
  });

  it("an update older than LULL_DEDUP_TTL_MS is refused as stale", () => {
    const nowMs = (1763805600 + 86400 + 1) * 1000;
    const p = telegram.parse(request(text, { nowMs }), configWith()) as ProviderParse;
    expect(p).toMatchObject({ kind: "messages", messages: [], rejected: [{ reason: "stale" }] });
  });
});
