/**
 * Telegram Bot API webhook. Telegram POSTs one `Update` per request and, when the webhook was
 * set with `secret_token`, sends it back in `X-Telegram-Bot-Api-Secret-Token`.
 *
 * `message`, `edited_message` and `channel_post` are buffered; every other update kind
 * (callback queries, edited channel posts, member updates, ...) is answered and counted as
 * ignored. The message id is the `update_id`: Telegram redelivers an update with the same
 * `update_id` (so it dedupes), while an edit arrives as a new update (so it is buffered too).
 */
import { z } from "zod";
import type { InboundMessage } from "../core/types.ts";
import { timingSafeEqual } from "./crypto.ts";
import { isUnixSeconds, parseJsonBody, unixSecondsToIso, validate } from "./payload.ts";
import type { ProviderAdapter } from "./types.ts";

const id = z.number().int();
const unixSeconds = z.number().refine(isUnixSeconds, "must be unix seconds");
const optStr = z.string().optional();

const chat = z.object({
  id,
  type: z.string(),
  title: optStr,
  username: optStr,
  first_name: optStr,
});

const user = z.object({ id, is_bot: z.boolean().optional(), first_name: optStr, username: optStr });

const message = z.object({
  message_id: id,
  date: unixSeconds,
  edit_date: unixSeconds.optional(),
  chat,
  from: user.optional(),
  sender_chat: chat.optional(),
  text: optStr,
  caption: optStr,
  sticker: z.object({ emoji: optStr }).optional(),
  location: z.object({ latitude: z.number(), longitude: z.number() }).optional(),
  venue: z.object({ title: optStr, address: optStr }).optional(),
  contact: z.object({ phone_number: optStr, first_name: optStr, last_name: optStr }).optional(),
  poll: z.object({ question: optStr }).optional(),
  dice: z.object({ emoji: optStr, value: z.number().optional() }).optional(),
});

type TelegramMessage = z.output<typeof message>;

const update = z.object({
  update_id: id.min(0),
  message: message.optional(),
  edited_message: message.optional(),
  channel_post: message.optional(),
});

/** Content kinds that carry no text of their own, checked in this order. */
const MEDIA_KINDS = [
  "photo",
  "video",
  "animation",
  "audio",
  "voice",
  "video_note",
  "document",
  "sticker",
  "venue",
  "location",
  "contact",
  "poll",
  "dice",
] as const;

/** The kind of content a message carries, from the raw (unstripped) message object. */
function contentKind(raw: unknown): string | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  return MEDIA_KINDS.find((k) => k in raw);
}

/** Text, or caption, or a placeholder that says what was sent ("[photo]", "[location] ..."). */
function textOf(m: TelegramMessage, kind: string | undefined): string {
  if (m.text !== undefined) return m.text;
  if (m.caption !== undefined && m.caption.trim() !== "") return m.caption;
  switch (kind) {
    case "sticker":
      return m.sticker?.emoji ? `[sticker] ${m.sticker.emoji}` : "[sticker]";
    case "venue":
      return ["[venue]", m.venue?.title, m.venue?.address].filter(Boolean).join(" ");
    case "location":
      return `[location] ${m.location?.latitude},${m.location?.longitude}`;
    case "contact":
      return ["[contact]", m.contact?.first_name, m.contact?.last_name, m.contact?.phone_number]
        .filter(Boolean).join(" ");
    case "poll":
      return m.poll?.question ? `[poll] ${m.poll.question}` : "[poll]";
    case "dice":
      return `[dice] ${m.dice?.emoji ?? ""} ${m.dice?.value ?? ""}`.trim();
    case undefined:
      return "[message]";
    default:
      return `[${kind}]`;
  }
}

const KINDS = ["message", "edited_message", "channel_post"] as const;

/** The Telegram Bot API adapter. */
export const telegram: ProviderAdapter = {
  name: "telegram",
  enabled(config) {
    return config.telegramWebhookSecret !== undefined;
  },
  async authenticate(req, config) {
    const secret = config.telegramWebhookSecret;
    if (secret === undefined) return false;
    return timingSafeEqual(req.headers.get("x-telegram-bot-api-secret-token") ?? "", secret);
  },
  parse(req) {
    const raw = parseJsonBody(req.rawBody);
    const u = validate(update, raw, "invalid Telegram update");
    const kind = KINDS.find((k) => u[k] !== undefined);
    if (kind === undefined) return { kind: "messages", messages: [], ignored: 1 };
    const m = u[kind]!;
    const rawMessage = (raw as Record<string, unknown>)[kind];
    const content = contentKind(rawMessage);
    const sender = m.from?.id ?? m.sender_chat?.id;
    const who = m.from ?? m.sender_chat;
    const msg: InboundMessage = {
      conversation: `telegram:${m.chat.id}`,
      id: String(u.update_id),
      provider: "telegram",
      text: textOf(m, content),
      sentAt: unixSecondsToIso(kind === "edited_message" ? m.edit_date ?? m.date : m.date),
      meta: Object.fromEntries(
        Object.entries({
          kind,
          message_id: m.message_id,
          chat_type: m.chat.type,
          chat_title: m.chat.title,
          username: who?.username,
          first_name: who?.first_name,
          media: m.text === undefined ? content : undefined,
        }).filter(([, v]) => v !== undefined),
      ),
    };
    if (sender !== undefined) msg.sender = String(sender);
    return { kind: "messages", messages: [msg], ignored: 0 };
  },
};
