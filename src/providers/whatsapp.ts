/**
 * WhatsApp Cloud API webhook.
 *
 * - GET is Meta's subscription handshake: `hub.mode=subscribe`, `hub.verify_token` equal to
 *   WHATSAPP_VERIFY_TOKEN, answered 200 `text/plain` with `hub.challenge`; 403 otherwise.
 * - POST carries `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(WHATSAPP_APP_SECRET, raw body)>`
 *   and `{ object, entry: [{ id, changes: [{ field, value: { metadata, contacts, messages,
 *   statuses } }] }] }`. Every message of every change of every entry is normalised, in
 *   payload order; `statuses` (sent/delivered/read/failed) are counted as ignored. One app
 *   secret serves every business number of the app: each change names its number in
 *   `metadata.phone_number_id`.
 *
 * Conversation key: `whatsapp:<phone_number_id>:<user>`, where `<user>` is the sender's
 * business-scoped user id (BSUID: `messages[].from_user_id`, or the matching
 * `contacts[].user_id`) whenever Meta sends one, and the sender's phone number (E.164 digits of
 * `from`) only when it does not. Users with a username may have no phone number in the webhook
 * at all; the BSUID is always there for them. The README ("Conversation keys") says what a
 * switch from phone to BSUID, and a `user_changed_user_id` system message, do to a conversation.
 *
 * A payload is validated envelope first (a broken envelope is a ValidationError: 400), then
 * message by message: a message that cannot be used, or whose own timestamp is older than
 * LULL_DEDUP_TTL_MS (a possible replay), is returned in `rejected`, and the others are
 * buffered. Meta redelivers any payload not answered 200 for days, so one bad message must not
 * hold the good ones hostage (the HTTP layer answers 400 only when nothing was usable).
 */
import { z } from "zod";
import type { Config } from "../core/config.ts";
import type { Attachment, InboundMessage } from "../core/types.ts";
import { jsonError } from "../core/respond.ts";
import { attachment, compact, senderIdentity } from "./attachments.ts";
import { hmacHex, timingSafeEqual } from "../core/crypto.ts";
import { type Issue, zodIssues } from "../core/errors.ts";
import { isUnixSeconds, parseJsonBody, unixSecondsToIso, validate } from "./payload.ts";
import { normalizePhone } from "./phone.ts";
import type { ProviderAdapter, ProviderParse, ProviderRequest, RejectedMessage } from "./types.ts";

const str = z.string();
const optStr = z.string().optional();

/**
 * A business-scoped user id: ISO country code, a dot, up to 128 alphanumerics (a parent BSUID
 * has `ENT.` after the country code). Checked because it becomes part of a Redis key.
 */
const BSUID = /^[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}$/;
const bsuid = (name: string) =>
  z.string().regex(BSUID, `${name} must be a business-scoped user id like US.13491208655302741918`);

/** Media objects (image, video, audio, document, sticker) share these fields. */
const media = z.object({
  id: optStr,
  url: optStr,
  mime_type: optStr,
  sha256: optStr,
  caption: optStr,
  filename: optStr,
  voice: z.boolean().optional(),
  animated: z.boolean().optional(),
});

const message = z.object({
  from: str.min(1, "from must not be empty").optional(),
  from_user_id: bsuid("from_user_id").optional(),
  from_parent_user_id: bsuid("from_parent_user_id").optional(),
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
    name: z.object({ formatted_name: optStr, first_name: optStr, last_name: optStr }).optional(),
    phones: z.array(z.object({ phone: optStr, wa_id: optStr })).optional(),
    vcard: optStr,
  })).optional(),
  interactive: z.object({
    type: optStr,
    button_reply: z.object({ id: optStr, title: optStr }).optional(),
    list_reply: z.object({ id: optStr, title: optStr, description: optStr }).optional(),
  }).optional(),
  button: z.object({ text: optStr, payload: optStr }).optional(),
  reaction: z.object({ message_id: optStr, emoji: optStr }).optional(),
  system: z.object({
    body: optStr,
    type: optStr,
    wa_id: optStr,
    user_id: optStr,
    parent_user_id: optStr,
  }).optional(),
}).refine((m) => m.from !== undefined || m.from_user_id !== undefined, {
  message: "from or from_user_id is required",
  path: ["from"],
});

type WhatsAppMessage = z.output<typeof message>;

const contact = z.object({
  wa_id: optStr,
  user_id: optStr,
  parent_user_id: optStr,
  profile: z.object({ name: optStr, username: optStr }).optional(),
});

type WhatsAppContact = z.output<typeof contact>;

/** The envelope; messages are validated one by one afterwards. */
const payload = z.object({
  object: optStr,
  entry: z.array(z.object({
    id: optStr,
    changes: z.array(z.object({
      field: optStr,
      value: z.object({
        metadata: z.object({ display_phone_number: optStr, phone_number_id: optStr }).optional(),
        contacts: z.array(contact).optional(),
        messages: z.array(z.unknown()).optional(),
        statuses: z.array(z.unknown()).optional(),
      }).optional(),
    })).default([]),
  })),
});

/** A `phone_number_id` (Graph API object id: digits). It becomes part of the key. */
const PHONE_NUMBER_ID = /^[0-9]{1,32}$/;

/** Readable text and attachments for one message, by type. */
function describe(m: WhatsAppMessage): {
  text: string;
  attachments: Attachment[];
  meta: Record<string, unknown>;
} {
  const meta: Record<string, unknown> = {};
  const none: Attachment[] = [];
  switch (m.type) {
    case "text":
      return { text: m.text?.body ?? "", attachments: none, meta };
    case "image":
    case "video":
    case "audio":
    case "document":
    case "sticker": {
      const obj = m[m.type];
      const a = attachment({
        kind: m.type,
        id: obj?.id,
        url: obj?.url,
        mimeType: obj?.mime_type,
        caption: obj?.caption,
        filename: obj?.filename,
        sha256: obj?.sha256,
        voice: obj?.voice,
        animated: obj?.animated,
      });
      const label = m.type === "audio" && obj?.voice ? "voice" : m.type;
      const fallback = obj?.filename ? `[${label}] ${obj.filename}` : `[${label}]`;
      return { text: obj?.caption?.trim() ? obj.caption : fallback, attachments: [a], meta };
    }
    case "location": {
      const l = m.location;
      const coords = l?.latitude !== undefined && l.longitude !== undefined
        ? `${l.latitude},${l.longitude}`
        : undefined;
      const a = attachment({
        kind: "location",
        latitude: l?.latitude,
        longitude: l?.longitude,
        name: l?.name,
        address: l?.address,
        url: l?.url,
      });
      return { text: join(["[location]", l?.name, l?.address, coords]), attachments: [a], meta };
    }
    case "contacts": {
      const cards = (m.contacts ?? []).map((c) => {
        const name = c.name?.formatted_name ??
          (join([c.name?.first_name, c.name?.last_name]) || undefined);
        const phones = (c.phones ?? []).map((p) => p.phone ?? p.wa_id)
          .filter((p): p is string => p !== undefined);
        const userId = c.phones?.find((p) => p.wa_id !== undefined)?.wa_id;
        return attachment({
          kind: "contact",
          name,
          contact: { name, phones: phones.length > 0 ? phones : undefined, userId, vcard: c.vcard },
        });
      });
      const names = cards.map((c) => c.name).filter((n) => n !== undefined).join(", ");
      return { text: join(["[contacts]", names]), attachments: cards, meta };
    }
    case "interactive": {
      const reply = m.interactive?.button_reply ?? m.interactive?.list_reply;
      meta.interactive_type = m.interactive?.type;
      if (reply) meta.reply = compact({ ...reply });
      return { text: reply?.title ?? "[interactive]", attachments: none, meta };
    }
    case "button":
      meta.payload = m.button?.payload;
      return { text: m.button?.text ?? "[button]", attachments: none, meta };
    case "reaction":
      meta.reacted_to = m.reaction?.message_id;
      // An empty emoji is WhatsApp's way of saying the reaction was removed.
      return {
        text: m.reaction?.emoji ? `[reaction] ${m.reaction.emoji}` : "[reaction removed]",
        attachments: none,
        meta,
      };
    case "system": {
      // user_changed_number / user_changed_user_id: the processor learns the new identifier
      // here; the user's next messages arrive under the conversation key it implies.
      const s = m.system;
      meta.system = compact({
        type: s?.type,
        newPhone: s?.wa_id,
        newUserId: s?.user_id,
        newParentUserId: s?.parent_user_id,
      });
      return { text: join(["[system]", s?.body]), attachments: none, meta };
    }
    default:
      // unsupported, order, ...: keep the message (the sender did write something).
      return { text: `[${m.type}]`, attachments: none, meta };
  }
}

function join(parts: (string | undefined)[]): string {
  return parts.filter((p) => p !== undefined && p.trim() !== "").join(" ");
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

/** The contact entry that describes the sender of `m`, if the change has one. */
function contactOf(
  m: WhatsAppMessage,
  contacts: WhatsAppContact[] | undefined,
): WhatsAppContact | undefined {
  if (!contacts || contacts.length === 0) return undefined;
  const match = contacts.find((c) =>
    (m.from_user_id !== undefined && c.user_id === m.from_user_id) ||
    (m.from !== undefined && c.wa_id !== undefined && c.wa_id === m.from)
  );
  // Meta sends one contact per change for one sender; with several, only an exact match counts.
  return match ?? (contacts.length === 1 ? contacts[0] : undefined);
}

/** Normalises a signed POST body. */
function parseMessages(req: ProviderRequest, config: Config): ProviderParse {
  const body = validate(payload, parseJsonBody(req.rawBody), "invalid WhatsApp webhook payload");
  const messages: InboundMessage[] = [];
  const rejected: RejectedMessage[] = [];
  const staleBeforeS = (req.nowMs - config.dedupTtlMs) / 1000;
  let ignored = 0;
  body.entry.forEach((entry, e) => {
    entry.changes.forEach((change, c) => {
      const value = change.value;
      ignored += value?.statuses?.length ?? 0;
      if (!value?.messages) return;
      const root = ["entry", e, "changes", c, "value"];
      const metadata = value.metadata;
      const numberId = metadata?.phone_number_id;
      value.messages.forEach((raw, i) => {
        const at = [...root, "messages", i];
        const rawId = typeof (raw as { id?: unknown })?.id === "string"
          ? (raw as { id: string }).id
          : undefined;
        const reject = (issues: Issue[]) =>
          rejected.push(compact({ reason: "invalid" as const, id: rawId, issues }));
        if (numberId === undefined || !PHONE_NUMBER_ID.test(numberId)) {
          reject([{
            path: [...root, "metadata", "phone_number_id"],
            message: "metadata.phone_number_id is required (digits): it names the receiving number",
          }]);
          return;
        }
        const parsed = message.safeParse(raw);
        if (!parsed.success) {
          reject(zodIssues(parsed.error).map((x) => ({ ...x, path: [...at, ...x.path] })));
          return;
        }
        const m = parsed.data;
        let phone: string | undefined;
        if (m.from !== undefined) {
          try {
            phone = normalizePhone(m.from, config.defaultCountryCode);
          } catch (err) {
            reject([{
              path: [...at, "from"],
              message: err instanceof Error ? err.message : "invalid phone number",
            }]);
            return;
          }
        }
        const who = contactOf(m, value.contacts);
        const contactUserId = who?.user_id !== undefined && BSUID.test(who.user_id)
          ? who.user_id
          : undefined;
        const userId = m.from_user_id ?? contactUserId;
        const parentUserId = m.from_parent_user_id ??
          (who?.parent_user_id !== undefined && BSUID.test(who.parent_user_id)
            ? who.parent_user_id
            : undefined);
        if (m.timestamp < staleBeforeS) {
          rejected.push({
            reason: "stale",
            id: m.id,
            issues: [{
              path: [...at, "timestamp"],
              message: "older than LULL_DEDUP_TTL_MS: refused as a possible replay",
            }],
          });
          return;
        }
        // The refine above guarantees one of them.
        const user = (userId ?? phone)!;
        const { text, attachments, meta } = describe(m);
        messages.push({
          conversation: `whatsapp:${numberId}:${user}`,
          id: m.id,
          provider: "whatsapp",
          text,
          sender: user,
          sentAt: unixSecondsToIso(m.timestamp),
          attachments,
          meta: compact({
            type: m.type,
            phone_number_id: numberId,
            display_phone_number: metadata?.display_phone_number,
            sender: senderIdentity({
              phone,
              userId,
              parentUserId,
              username: who?.profile?.username,
              name: who?.profile?.name,
            }),
            reply_to: m.context?.id,
            ...meta,
          }),
        });
      });
    });
  });
  return { kind: "messages", messages, ignored, rejected };
}

/** The WhatsApp Cloud API adapter. */
export const whatsapp: ProviderAdapter = {
  name: "whatsapp",
  enabled(config, method, account) {
    if (account !== undefined) return false;
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
