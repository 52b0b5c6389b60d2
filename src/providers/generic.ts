/**
 * lull's own JSON ingest (`POST /lull/messages`), for any system that is not one of the named
 * providers. Authenticated with `Authorization: Bearer <token>` against LULL_INGEST_TOKEN, a
 * comma list so tokens can be rotated: any listed token is accepted.
 *
 * Body: one message `{ conversation, id, text?, sender?, sentAt?, attachments?, meta? }` or
 * `{ "messages": [ ...1..100 of them ] }`. The conversation key is used as given (trimmed; no
 * provider namespace is added, the caller owns its key space). Unknown fields are accepted and
 * dropped, so callers can send richer objects without breaking; put anything worth keeping in
 * `meta`. One invalid message rejects the whole request (nothing is buffered).
 */
import { z } from "zod";
import type { InboundMessage } from "../core/types.ts";
import { attachment } from "./attachments.ts";
import { bearerMatches } from "../core/bearer.ts";
import { isJsonObject, nestsWithin, parseJsonBody, validate } from "./payload.ts";
import type { ProviderAdapter } from "./types.ts";

/** Longest conversation key, message id and sender accepted (characters). */
export const GENERIC_MAX_KEY_LENGTH = 256;
/** Longest message text accepted (characters). */
export const GENERIC_MAX_TEXT_LENGTH = 32 * 1024;
/** Most messages in one `{ "messages": [...] }` request. */
export const GENERIC_MAX_BATCH = 100;
/** Deepest nesting accepted inside `meta`. */
export const GENERIC_MAX_META_DEPTH = 16;
/** Most attachments on one generic message. */
export const GENERIC_MAX_ATTACHMENTS = 20;

const field = (name: string, max = 2048) =>
  z.string({ error: `${name} must be a string` })
    .max(max, `${name} must be at most ${max} characters`).optional();
const number = (name: string) =>
  z.number({ error: `${name} must be a number` }).finite(`${name} must be finite`).optional();
const whole = (name: string) =>
  z.number({ error: `${name} must be a number` }).int(`${name} must be a whole number`)
    .min(0, `${name} must not be negative`).optional();
const flag = (name: string) => z.boolean({ error: `${name} must be true or false` }).optional();

/**
 * An attachment as the providers' adapters normalise it (see {@link Attachment}); generic
 * callers send the same shape. Unknown fields are dropped, like unknown message fields.
 */
const attachmentSchema = z.object({
  kind: z.enum(["image", "audio", "video", "document", "sticker", "location", "contact"], {
    error: "kind must be image, audio, video, document, sticker, location or contact",
  }),
  id: field("id", GENERIC_MAX_KEY_LENGTH),
  url: field("url"),
  mimeType: field("mimeType", GENERIC_MAX_KEY_LENGTH),
  caption: field("caption", GENERIC_MAX_TEXT_LENGTH),
  filename: field("filename", GENERIC_MAX_KEY_LENGTH),
  sha256: field("sha256", GENERIC_MAX_KEY_LENGTH),
  size: whole("size"),
  width: whole("width"),
  height: whole("height"),
  durationS: number("durationS"),
  voice: flag("voice"),
  animated: flag("animated"),
  round: flag("round"),
  emoji: field("emoji", 64),
  latitude: number("latitude"),
  longitude: number("longitude"),
  name: field("name", GENERIC_MAX_KEY_LENGTH),
  address: field("address"),
  contact: z.object({
    name: field("name", GENERIC_MAX_KEY_LENGTH),
    phones: z.array(z.string({ error: "phones must be strings" }).max(64)).max(20).optional(),
    userId: field("userId", GENERIC_MAX_KEY_LENGTH),
    vcard: field("vcard", GENERIC_MAX_TEXT_LENGTH),
  }, { error: "contact must be an object" }).optional(),
});

const key = (name: string) =>
  z.string({
    error: (iss) => iss.input === undefined ? `${name} is required` : `${name} must be a string`,
  })
    .trim()
    .min(1, `${name} must not be empty`)
    .max(GENERIC_MAX_KEY_LENGTH, `${name} must be at most ${GENERIC_MAX_KEY_LENGTH} characters`);

/** One generic message as callers send it. */
export const genericMessageSchema = z.object({
  conversation: key("conversation"),
  id: key("id"),
  text: z.string({ error: "text must be a string" })
    .max(GENERIC_MAX_TEXT_LENGTH, `text must be at most ${GENERIC_MAX_TEXT_LENGTH} characters`)
    .default(""),
  sender: z.string({ error: "sender must be a string" })
    .max(GENERIC_MAX_KEY_LENGTH, `sender must be at most ${GENERIC_MAX_KEY_LENGTH} characters`)
    .optional(),
  // Normalised to UTC `toISOString()` form so every provider's sentAt looks the same.
  sentAt: z.iso.datetime({ offset: true, error: "sentAt must be an ISO 8601 date-time" })
    .transform((s) => new Date(s).toISOString())
    .optional(),
  attachments: z.array(attachmentSchema, { error: "attachments must be an array" })
    .max(GENERIC_MAX_ATTACHMENTS, `attachments must hold at most ${GENERIC_MAX_ATTACHMENTS}`)
    .optional(),
  // Checked by hand instead of z.record: the object is kept as parsed (no prototype games
  // with a "__proto__" key) and its depth is bounded without recursion.
  meta: z.custom<Record<string, unknown>>(
    (v) => isJsonObject(v) && nestsWithin(v, GENERIC_MAX_META_DEPTH),
    `meta must be a JSON object nested at most ${GENERIC_MAX_META_DEPTH} deep`,
  ).optional(),
});

const batchSchema = z.object({
  messages: z.array(genericMessageSchema, { error: "messages must be an array" })
    .min(1, "messages must hold at least 1 message")
    .max(GENERIC_MAX_BATCH, `messages must hold at most ${GENERIC_MAX_BATCH} messages`),
});

/** The generic JSON adapter. */
export const generic: ProviderAdapter = {
  name: "generic",
  enabled(config, _method, account) {
    return account === undefined && config.ingestTokens.length > 0;
  },
  async authenticate(req, config) {
    // Compares with every token, no early exit: which token matched stays private too.
    return bearerMatches(req.headers, config.ingestTokens);
  },
  parse(req) {
    const body = parseJsonBody(req.rawBody);
    const list = isJsonObject(body) && "messages" in body
      ? validate(batchSchema, body, "invalid messages").messages
      : [validate(genericMessageSchema, body, "invalid message")];
    const messages = list.map((m): InboundMessage => {
      const msg: InboundMessage = {
        conversation: m.conversation,
        id: m.id,
        provider: "generic",
        text: m.text,
        meta: m.meta ?? {},
      };
      if (m.sender !== undefined) msg.sender = m.sender;
      if (m.sentAt !== undefined) msg.sentAt = m.sentAt;
      if (m.attachments !== undefined) msg.attachments = m.attachments.map((a) => attachment(a));
      return msg;
    });
    return { kind: "messages", messages, ignored: 0, rejected: [] };
  },
};
