/**
 * Telegram Bot API webhook. Telegram POSTs one `Update` per request and, when the webhook was
 * set with `secret_token`, sends it back in `X-Telegram-Bot-Api-Secret-Token`.
 *
 * Several bots: TELEGRAM_WEBHOOK_SECRET is one secret (the bot `default`, served at
 * `/lull/webhooks/telegram`) or `name=secret,...`, each bot served at
 * `/lull/webhooks/telegram/<name>` and checked against its own secret only. A route naming a bot
 * that is not configured answers 404. The bot name is part of the conversation key:
 * `telegram:<bot>:<chat id>`, plus `:<message_thread_id>` for a message in a forum topic
 * (`is_topic_message`), unless TELEGRAM_FORUM_TOPICS is false.
 *
 * `message`, `edited_message` and `channel_post` are buffered; every other update kind
 * (callback queries, edited channel posts, member updates, ...) is answered and counted as
 * ignored. The message id is the `update_id`: Telegram redelivers an update with the same
 * `update_id` (so it dedupes), while an edit arrives as a new update (so it is buffered too).
 * The photos of an album (`media_group_id`) arrive as separate updates, so they are separate
 * messages of one burst, each with its own attachment.
 *
 * Replay: an update whose own time (`date`, or `edit_date` for an edit) is older than
 * LULL_DEDUP_TTL_MS is refused (`rejected`, reason `stale`).
 */
import { z } from "zod";
import { type Config, DEFAULT_TELEGRAM_BOT, type TelegramBot } from "../core/config.ts";
import type { Attachment, InboundMessage } from "../core/types.ts";
import { attachment, compact, senderIdentity } from "./attachments.ts";
import { timingSafeEqual } from "../core/crypto.ts";
import { isUnixSeconds, parseJsonBody, unixSecondsToIso, validate } from "./payload.ts";
import type { ProviderAdapter, ProviderParse, ProviderRequest } from "./types.ts";

const id = z.number().int();
const unixSeconds = z.number().refine(isUnixSeconds, "must be unix seconds");
const optStr = z.string().optional();
const optInt = z.number().int().min(0).optional();
const fileId = z.string().min(1, "file_id is required").max(512);

const chat = z.object({
  id,
  type: z.string(),
  title: optStr,
  username: optStr,
  first_name: optStr,
  is_forum: z.boolean().optional(),
});

const user = z.object({
  id,
  is_bot: z.boolean().optional(),
  first_name: optStr,
  last_name: optStr,
  username: optStr,
});

/** Fields every Telegram file object has. */
const file = { file_id: fileId, file_unique_id: optStr, file_size: optInt };

const photoSize = z.object({ ...file, width: optInt, height: optInt });

const message = z.object({
  message_id: id,
  message_thread_id: id.optional(),
  is_topic_message: z.boolean().optional(),
  media_group_id: optStr,
  date: unixSeconds,
  edit_date: unixSeconds.optional(),
  chat,
  from: user.optional(),
  sender_chat: chat.optional(),
  text: optStr,
  caption: optStr,
  photo: z.array(photoSize).min(1, "photo must list at least one size").optional(),
  voice: z.object({ ...file, duration: optInt, mime_type: optStr }).optional(),
  audio: z.object({
    ...file,
    duration: optInt,
    performer: optStr,
    title: optStr,
    file_name: optStr,
    mime_type: optStr,
  }).optional(),
  video: z.object({
    ...file,
    width: optInt,
    height: optInt,
    duration: optInt,
    file_name: optStr,
    mime_type: optStr,
  }).optional(),
  video_note: z.object({ ...file, length: optInt, duration: optInt }).optional(),
  animation: z.object({
    ...file,
    width: optInt,
    height: optInt,
    duration: optInt,
    file_name: optStr,
    mime_type: optStr,
  }).optional(),
  document: z.object({ ...file, file_name: optStr, mime_type: optStr }).optional(),
  sticker: z.object({
    ...file,
    width: optInt,
    height: optInt,
    emoji: optStr,
    is_animated: z.boolean().optional(),
    is_video: z.boolean().optional(),
  }).optional(),
  location: z.object({ latitude: z.number(), longitude: z.number() }).optional(),
  venue: z.object({
    location: z.object({ latitude: z.number(), longitude: z.number() }).optional(),
    title: optStr,
    address: optStr,
  }).optional(),
  contact: z.object({
    phone_number: optStr,
    first_name: optStr,
    last_name: optStr,
    user_id: id.optional(),
    vcard: optStr,
  }).optional(),
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

const words = (...parts: (string | undefined)[]) =>
  parts.filter((p) => p !== undefined && p.trim() !== "").join(" ");

/** The largest photo size (by area, then bytes): the one worth fetching. */
function largest(sizes: z.output<typeof photoSize>[]): z.output<typeof photoSize> {
  const area = (s: z.output<typeof photoSize>) => (s.width ?? 0) * (s.height ?? 0);
  return sizes.reduce((best, s) =>
    area(s) > area(best) || (area(s) === area(best) && (s.file_size ?? 0) > (best.file_size ?? 0))
      ? s
      : best
  );
}

/** The message's attachments and the label its text falls back to. */
function content(m: TelegramMessage): { attachments: Attachment[]; label: string | undefined } {
  const caption = m.caption;
  const media = (a: Attachment, label: string) => ({
    attachments: [attachment({ ...a, caption })],
    label,
  });
  if (m.photo) {
    const p = largest(m.photo);
    return media({
      kind: "image",
      id: p.file_id,
      size: p.file_size,
      width: p.width,
      height: p.height,
    }, "[photo]");
  }
  if (m.animation) {
    // An animation message also carries `document` (for old clients); the animation wins.
    const v = m.animation;
    return media({
      kind: "video",
      id: v.file_id,
      mimeType: v.mime_type,
      filename: v.file_name,
      size: v.file_size,
      width: v.width,
      height: v.height,
      durationS: v.duration,
      animated: true,
    }, "[animation]");
  }
  if (m.video) {
    const v = m.video;
    return media({
      kind: "video",
      id: v.file_id,
      mimeType: v.mime_type,
      filename: v.file_name,
      size: v.file_size,
      width: v.width,
      height: v.height,
      durationS: v.duration,
    }, "[video]");
  }
  if (m.video_note) {
    const v = m.video_note;
    return media({
      kind: "video",
      id: v.file_id,
      size: v.file_size,
      width: v.length,
      height: v.length,
      durationS: v.duration,
      round: true,
    }, "[video note]");
  }
  if (m.voice) {
    const v = m.voice;
    return media({
      kind: "audio",
      id: v.file_id,
      mimeType: v.mime_type,
      size: v.file_size,
      durationS: v.duration,
      voice: true,
    }, "[voice]");
  }
  if (m.audio) {
    const a = m.audio;
    return media({
      kind: "audio",
      id: a.file_id,
      mimeType: a.mime_type,
      filename: a.file_name,
      size: a.file_size,
      durationS: a.duration,
      name: words(a.performer, a.title) || undefined,
    }, words("[audio]", a.performer, a.title));
  }
  if (m.document) {
    const d = m.document;
    return media({
      kind: "document",
      id: d.file_id,
      mimeType: d.mime_type,
      filename: d.file_name,
      size: d.file_size,
    }, words("[document]", d.file_name));
  }
  if (m.sticker) {
    const s = m.sticker;
    return media({
      kind: "sticker",
      id: s.file_id,
      mimeType: s.is_video
        ? "video/webm"
        : s.is_animated
        ? "application/x-tgsticker"
        : "image/webp",
      size: s.file_size,
      width: s.width,
      height: s.height,
      emoji: s.emoji,
      animated: s.is_animated || s.is_video || undefined,
    }, words("[sticker]", s.emoji));
  }
  if (m.venue) {
    // A venue message carries `location` too; one attachment with both.
    const at = m.venue.location ?? m.location;
    return {
      attachments: [attachment({
        kind: "location",
        latitude: at?.latitude,
        longitude: at?.longitude,
        name: m.venue.title,
        address: m.venue.address,
      })],
      label: words("[venue]", m.venue.title, m.venue.address),
    };
  }
  if (m.location) {
    const l = m.location;
    return {
      attachments: [attachment({ kind: "location", latitude: l.latitude, longitude: l.longitude })],
      label: `[location] ${l.latitude},${l.longitude}`,
    };
  }
  if (m.contact) {
    const c = m.contact;
    const name = words(c.first_name, c.last_name) || undefined;
    return {
      attachments: [attachment({
        kind: "contact",
        name,
        contact: {
          name,
          phones: c.phone_number !== undefined ? [c.phone_number] : undefined,
          userId: c.user_id !== undefined ? String(c.user_id) : undefined,
          vcard: c.vcard,
        },
      })],
      label: words("[contact]", c.first_name, c.last_name, c.phone_number),
    };
  }
  if (m.poll) {
    return { attachments: [], label: m.poll.question ? `[poll] ${m.poll.question}` : "[poll]" };
  }
  if (m.dice) {
    return {
      attachments: [],
      label: `[dice] ${m.dice.emoji ?? ""} ${m.dice.value ?? ""}`.trim(),
    };
  }
  return { attachments: [], label: undefined };
}

/** Text, or caption, or a label that says what was sent ("[photo]", "[location] ..."). */
function textOf(m: TelegramMessage, label: string | undefined): string {
  if (m.text !== undefined) return m.text;
  if (m.caption !== undefined && m.caption.trim() !== "") return m.caption;
  return label ?? "[message]";
}

const KINDS = ["message", "edited_message", "channel_post"] as const;

/** The bot a request is for: the named route's, or `default` on the bare route. */
function botOf(config: Config, account: string | undefined): TelegramBot | undefined {
  const name = account ?? DEFAULT_TELEGRAM_BOT;
  return config.telegramBots.find((b) => b.name === name);
}

function parse(req: ProviderRequest, config: Config): ProviderParse {
  const bot = botOf(config, req.account);
  const u = validate(update, parseJsonBody(req.rawBody), "invalid Telegram update");
  const kind = KINDS.find((k) => u[k] !== undefined);
  if (kind === undefined || bot === undefined) {
    return { kind: "messages", messages: [], ignored: 1, rejected: [] };
  }
  const m = u[kind]!;
  const id = String(u.update_id);
  const sentS = kind === "edited_message" ? m.edit_date ?? m.date : m.date;
  if (sentS * 1000 < req.nowMs - config.dedupTtlMs) {
    return {
      kind: "messages",
      messages: [],
      ignored: 0,
      rejected: [{
        reason: "stale",
        id,
        issues: [{
          path: [kind, kind === "edited_message" ? "edit_date" : "date"],
          message: "older than LULL_DEDUP_TTL_MS: refused as a possible replay",
        }],
      }],
    };
  }
  const topic = config.telegramForumTopics && m.is_topic_message === true &&
      m.message_thread_id !== undefined
    ? `:${m.message_thread_id}`
    : "";
  const { attachments, label } = content(m);
  const person = m.from;
  const senderChat = m.sender_chat;
  const senderId = person?.id ?? senderChat?.id;
  const msg: InboundMessage = {
    conversation: `telegram:${bot.name}:${m.chat.id}${topic}`,
    id,
    provider: "telegram",
    text: textOf(m, label),
    sentAt: unixSecondsToIso(sentS),
    attachments,
    meta: compact({
      kind,
      bot: bot.name,
      message_id: m.message_id,
      chat_id: m.chat.id,
      chat_type: m.chat.type,
      chat_title: m.chat.title,
      topic_id: topic !== "" ? m.message_thread_id : undefined,
      media_group_id: m.media_group_id,
      sender: senderIdentity({
        userId: senderId !== undefined ? String(senderId) : undefined,
        username: person?.username ?? senderChat?.username,
        name: person ? words(person.first_name, person.last_name) || undefined : senderChat?.title,
      }),
    }),
  };
  if (senderId !== undefined) msg.sender = String(senderId);
  return { kind: "messages", messages: [msg], ignored: 0, rejected: [] };
}

/** The Telegram Bot API adapter. */
export const telegram: ProviderAdapter = {
  name: "telegram",
  enabled(config, _method, account) {
    // The bare route serves the bot `default` only; named bots have their own routes.
    return botOf(config, account) !== undefined;
  },
  authenticate(req, config) {
    const bot = botOf(config, req.account);
    if (bot === undefined) return Promise.resolve(false);
    const given = req.headers.get("x-telegram-bot-api-secret-token") ?? "";
    return Promise.resolve(timingSafeEqual(given, bot.secret));
  },
  parse,
};
