/**
 * WhatsApp Cloud API webhook.
 *
 * - GET is Meta's subscription handshake: `hub.mode=subscribe`, `hub.verify_token` equal to
 *   WHATSAPP_VERIFY_TOKEN, answered 200 `text/plain` with `hub.challenge`; 403 otherwise.
 * - POST carries `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(WHATSAPP_APP_SECRET, raw body)>`
 *   and `{ object, entry: [{ id, changes: [{ field, value: { metadata, contacts, messages,
 *   statuses } }] }] }`. Every message of every change of every entry is normalised, in
 *   payload order; `statuses` (sent/delivered/read/failed) are counted as ignored.
 *
 * Conversation key: `whatsapp:<E.164 digits of from>`, shared with Twilio's WhatsApp channel so
 * the same person is one conversation whichever API delivered the message.
 */
import { z } from "zod";
import type { Config } from "../core/config.ts";
import type { InboundMessage } from "../core/types.ts";
import { ValidationError } from "../core/errors.ts";
import { jsonError } from "../http/respond.ts";
import { hmacHex, timingSafeEqual } from "./crypto.ts";
import { isUnixSeconds, parseJsonBody, unixSecondsToIso, validate } from "./payload.ts";
import { normalizePhone } from "./phone.ts";
import type { ProviderAdapter, ProviderParse, ProviderRequest } from "./types.ts";

const str = z.string();
const optStr = z.string().optional();

/** Media objects (image, video, audio, document, sticker) share these fields. */
const media = z.object({
  id: optStr,
  mime_type: optStr,
  sha256: optStr,
  caption: optStr,
  filename: optStr,
  voice: z.boolean().optional(),
  animated: z.boolean().optional(),
});

const message = z.object({
  from: str.min(1, "from is required"),
  id: str.min(1, "id is required").max(512),
  timestamp: z.union([str, z.number()]).transform((v, ctx) => {
    const n = typeof v === "number" ? v : /^[0-9]{1,12}$/.test(v) ? Number(v) : NaN;
    if (!isUnixSeconds(n)) {
      ctx.addIssue({ code: "custom", message: "timestamp must be unix seconds" });
      return z.NEVER;
    }
    return n;
  }),
  type: str.min(1).max(64),
  context: z.object({ id: optStr, from: optStr }).optional(),
  text: z.object({ body: str }).optional(),
  image: media.optional(),
  video: media.optional(),
  audio: media.optional(),
  document: media.optional(),
  sticker: media.optional(),
  location: z.object({
    latitude: z.number().optional(),
    longitude: z.number().optional(),
    name: optStr,
    address: optStr,
    url: optStr,
  }).optional(),
  contacts: z.array(z.object({
    name: z.object({ formatted_name: optStr, first_name: optStr }).optional(),
    phones: z.array(z.object({ phone: optStr, wa_id: optStr })).optional(),
  })).optional(),
  interactive: z.object({
    type: optStr,
    button_reply: z.object({ id: optStr, title: optStr }).optional(),
    list_reply: z.object({ id: optStr, title: optStr, description: optStr }).optional(),
  }).optional(),
  button: z.object({ text: optStr, payload: optStr }).optional(),
  reaction: z.object({ message_id: optStr, emoji: optStr }).optional(),
});

type WhatsAppMessage = z.output<typeof message>;

const payload = z.object({
  object: optStr,
  entry: z.array(z.object({
    id: optStr,
    changes: z.array(z.object({
      field: optStr,
      value: z.object({
        metadata: z.object({ display_phone_number: optStr, phone_number_id: optStr }).optional(),
        contacts: z.array(z.object({
          wa_id: optStr,
          profile: z.object({ name: optStr }).optional(),
        })).optional(),
        messages: z.array(message).optional(),
        statuses: z.array(z.unknown()).optional(),
      }).optional(),
    })).default([]),
  })),
});

/** Text and extra meta for one message, by type. Captions/titles/labels become the text. */
function describe(m: WhatsAppMessage): { text: string; meta: Record<string, unknown> } {
  const meta: Record<string, unknown> = {};
  switch (m.type) {
    case "text":
      return { text: m.text?.body ?? "", meta };
    case "image":
    case "video":
    case "audio":
    case "document":
    case "sticker": {
      const obj = m[m.type];
      meta.media = dropUndefined({
        id: obj?.id,
        mime_type: obj?.mime_type,
        filename: obj?.filename,
        voice: obj?.voice,
        animated: obj?.animated,
      });
      const label = obj?.filename ? `[${m.type}] ${obj.filename}` : `[${m.type}]`;
      return { text: obj?.caption?.trim() ? obj.caption : label, meta };
    }
    case "location": {
      const l = m.location;
      const coords = l?.latitude !== undefined && l.longitude !== undefined
        ? `${l.latitude},${l.longitude}`
        : undefined;
      meta.location = dropUndefined({ ...l });
      return { text: join(["[location]", l?.name, l?.address, coords]), meta };
    }
    case "contacts": {
      const people = (m.contacts ?? []).map((c) => ({
        name: c.name?.formatted_name ?? c.name?.first_name,
        phones: (c.phones ?? []).map((p) => p.phone ?? p.wa_id).filter((p) => p !== undefined),
      }));
      meta.contacts = people;
      const names = people.map((p) => p.name).filter((n) => n !== undefined).join(", ");
      return { text: join(["[contacts]", names]), meta };
    }
    case "interactive": {
      const reply = m.interactive?.button_reply ?? m.interactive?.list_reply;
      meta.interactive_type = m.interactive?.type;
      if (reply) meta.reply = dropUndefined({ ...reply });
      return { text: reply?.title ?? "[interactive]", meta };
    }
    case "button":
      meta.payload = m.button?.payload;
      return { text: m.button?.text ?? "[button]", meta };
    case "reaction":
      meta.reacted_to = m.reaction?.message_id;
      // An empty emoji is WhatsApp's way of saying the reaction was removed.
      return {
        text: m.reaction?.emoji ? `[reaction] ${m.reaction.emoji}` : "[reaction removed]",
        meta,
      };
    default:
      // unsupported, order, system, ...: keep the message (the sender did write something).
      return { text: `[${m.type}]`, meta };
  }
}

function join(parts: (string | undefined)[]): string {
  return parts.filter((p) => p !== undefined && p.trim() !== "").join(" ");
}

function dropUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** Answers Meta's GET subscription handshake. */
function handshake(req: ProviderRequest, config: Config): ProviderParse {
  const q = req.url.searchParams;
  const expected = config.whatsappVerifyToken;
  if (expected === undefined) {
    return { kind: "response", response: jsonError(404, "not_found", "route not exposed") };
  }
  const token = q.get("hub.verify_token") ?? "";
  const ok = q.get("hub.mode") === "subscribe" && timingSafeEqual(token, expected);
  if (!ok) {
    return {
      kind: "response",
      response: jsonError(403, "forbidden", "hub.mode or hub.verify_token does not match"),
    };
  }
  const challenge = q.get("hub.challenge");
  if (challenge === null || challenge === "" || challenge.length > 512) {
    return {
      kind: "response",
      response: jsonError(400, "invalid_request", "hub.challenge is missing or too long"),
    };
  }
  return {
    kind: "response",
    response: new Response(challenge, {
      status: 200,
      // nosniff: the challenge is echoed from the query string; never let it render as HTML.
      headers: { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff" },
    }),
  };
}

/** Normalises a signed POST body. */
function parseMessages(req: ProviderRequest, config: Config): ProviderParse {
  const body = validate(payload, parseJsonBody(req.rawBody), "invalid WhatsApp webhook payload");
  const messages: InboundMessage[] = [];
  let ignored = 0;
  body.entry.forEach((entry, e) => {
    entry.changes.forEach((change, c) => {
      const value = change.value;
      ignored += value?.statuses?.length ?? 0;
      if (!value?.messages) return;
      const metadata = value.metadata;
      value.messages.forEach((m, i) => {
        let from: string;
        try {
          from = normalizePhone(m.from, config.defaultCountryCode);
        } catch (err) {
          const path = ["entry", e, "changes", c, "value", "messages", i, "from"];
          throw new ValidationError(
            "invalid WhatsApp webhook payload",
            [{ path, message: err instanceof Error ? err.message : "invalid phone number" }],
          );
        }
        const contact = value.contacts?.find((ct) => ct.wa_id === m.from) ??
          (value.contacts?.length === 1 ? value.contacts[0] : undefined);
        const { text, meta } = describe(m);
        messages.push({
          conversation: `whatsapp:${from}`,
          id: m.id,
          provider: "whatsapp",
          text,
          sender: from,
          sentAt: unixSecondsToIso(m.timestamp),
          meta: dropUndefined({
            type: m.type,
            phone_number_id: metadata?.phone_number_id,
            display_phone_number: metadata?.display_phone_number,
            profile_name: contact?.profile?.name,
            reply_to: m.context?.id,
            ...meta,
          }),
        });
      });
    });
  });
  return { kind: "messages", messages, ignored };
}

/** The WhatsApp Cloud API adapter. */
export const whatsapp: ProviderAdapter = {
  name: "whatsapp",
  enabled(config, method) {
    const get = config.whatsappVerifyToken !== undefined;
    const post = config.whatsappAppSecret !== undefined;
    if (method === undefined) return get || post;
    return method.toUpperCase() === "GET" ? get : post;
  },
  async authenticate(req, config) {
    // The handshake authenticates itself (the verify token is checked in parse).
    if (req.method.toUpperCase() === "GET") return config.whatsappVerifyToken !== undefined;
    const secret = config.whatsappAppSecret;
    if (secret === undefined) return false;
    const header = req.headers.get("x-hub-signature-256") ?? "";
    const expected = "sha256=" + await hmacHex("SHA-256", secret, req.rawBody);
    // Meta sends lower-case hex; accept an upper-case variant from proxies that reformat it.
    const given = header.startsWith("sha256=") ? "sha256=" + header.slice(7).toLowerCase() : header;
    return timingSafeEqual(given, expected);
  },
  parse(req, config) {
    return req.method.toUpperCase() === "GET" ? handshake(req, config) : parseMessages(req, config);
  },
};
