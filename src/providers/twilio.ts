/**
 * Twilio Programmable Messaging webhook (SMS and Twilio's WhatsApp channel), form-encoded.
 *
 * Signature: `X-Twilio-Signature` is base64(HMAC-SHA1(TWILIO_AUTH_TOKEN, url + params)), where
 * `params` is every POST parameter's name immediately followed by its value, in name order, no
 * separators. `url` is the public URL Twilio posted to, which the function cannot see behind
 * Supabase's gateway, so it is rebuilt: LULL_PUBLIC_URL (the function's public base, e.g.
 * `https://xyz.supabase.co/functions/v1/lull`, trailing slash ignored) + `/webhooks/twilio` +
 * the request's query string, if any. Configure exactly that URL in the Twilio console. As
 * Twilio's own helper libraries do, the URL is also tried with the scheme's default port added
 * or removed, since Twilio may sign either form.
 *
 * Fields: MessageSid (message id), From, To, Body, NumMedia + MediaUrl<n>/MediaContentType<n>,
 * ProfileName/WaId (WhatsApp), Latitude/Longitude/Address/Label (a WhatsApp location).
 * Conversation key: `<sms|whatsapp>:<To digits>:<From digits>`, so each of the account's
 * numbers (one auth token signs for all of them) has its own conversations. Status callbacks
 * posted to the same URL (MessageStatus other than `received`) are counted as ignored.
 *
 * Replay: Twilio's signature covers no timestamp, so a captured request stays valid. The
 * defence is dedup: MessageSid is remembered for LULL_DEDUP_TTL_MS, and a replay inside that
 * window is a duplicate (answered 200, buffered once). Past it, a replayed message would be
 * buffered again; keep LULL_DEDUP_TTL_MS at least as long as you would tolerate that.
 */
import { z } from "zod";
import type { Config } from "../core/config.ts";
import { ValidationError } from "../core/errors.ts";
import type { Attachment, InboundMessage } from "../core/types.ts";
import { attachment, compact, kindOfMimeType, senderIdentity } from "./attachments.ts";
import { hmacBase64, timingSafeEqual } from "../core/crypto.ts";
import { parseFormBody, validate } from "./payload.ts";
import { normalizePhone } from "./phone.ts";
import type { ProviderAdapter, ProviderRequest } from "./types.ts";

/** Path of the Twilio route under the function's public base URL. */
export const TWILIO_ROUTE_PATH = "/webhooks/twilio";

/** Most media Twilio attaches to one message. */
const MAX_MEDIA = 10;

/** A decimal coordinate in a form field, within +-`limit` degrees. */
const coordinate = (name: string, limit: number) =>
  z.string().optional().transform((v, ctx) => {
    if (v === undefined || v.trim() === "") return undefined;
    const n = /^[-+]?[0-9]{1,3}(\.[0-9]+)?$/.test(v.trim()) ? Number(v) : NaN;
    if (!(Math.abs(n) <= limit)) {
      ctx.addIssue({ code: "custom", message: `${name} must be a number within +-${limit}` });
      return z.NEVER;
    }
    return n;
  });

const fields = z.object({
  MessageSid: z.string().min(1, "MessageSid is required").max(64),
  From: z.string().min(1, "From is required").max(128),
  To: z.string({ error: "To is required" }).min(1, "To is required").max(128),
  Body: z.string().default(""),
  NumMedia: z.string().regex(/^[0-9]{1,2}$/, "NumMedia must be a small number").default("0")
    .transform(Number).refine((n) => n <= MAX_MEDIA, `NumMedia must be at most ${MAX_MEDIA}`),
  AccountSid: z.string().optional(),
  MessagingServiceSid: z.string().optional(),
  MessageStatus: z.string().optional(),
  SmsStatus: z.string().optional(),
  ProfileName: z.string().optional(),
  WaId: z.string().optional(),
  ButtonText: z.string().optional(),
  ButtonPayload: z.string().optional(),
  Latitude: coordinate("Latitude", 90),
  Longitude: coordinate("Longitude", 180),
  Address: z.string().optional(),
  Label: z.string().optional(),
});

/**
 * The URLs Twilio may have signed for a request: LULL_PUBLIC_URL + {@link TWILIO_ROUTE_PATH} +
 * the request's query string, then the same with the port removed and with the scheme's
 * default port written out (Twilio's helper libraries accept both forms, so do we).
 */
export function twilioSignedUrls(publicUrl: string, requestUrl: URL): string[] {
  const base = publicUrl.replace(/\/+$/, "") + TWILIO_ROUTE_PATH + requestUrl.search;
  const urls = [base];
  const m = /^(https?:\/\/)([^/?#]*)(.*)$/i.exec(base);
  if (m === null) return urls;
  const [, scheme, authority, rest] = m as unknown as [string, string, string, string];
  const at = authority.lastIndexOf("@");
  const userinfo = authority.slice(0, at + 1);
  const host = authority.slice(at + 1).replace(/:[0-9]*$/, "");
  const defaultPort = scheme.toLowerCase() === "https://" ? "443" : "80";
  for (
    const url of [
      scheme + userinfo + host + rest,
      `${scheme}${userinfo}${host}:${defaultPort}${rest}`,
    ]
  ) {
    if (!urls.includes(url)) urls.push(url);
  }
  return urls;
}

/** The string Twilio signs: the URL then each name+value, sorted by name (then value). */
export function twilioSignaturePayload(url: string, params: Map<string, string[]>): string {
  const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  let out = url;
  for (const name of [...params.keys()].sort(byCodeUnit)) {
    for (const value of [...params.get(name)!].sort(byCodeUnit)) out += name + value;
  }
  return out;
}

async function authenticate(req: ProviderRequest, config: Config): Promise<boolean> {
  const token = config.twilioAuthToken;
  if (token === undefined || config.publicUrl === undefined) return false;
  const given = req.headers.get("x-twilio-signature");
  if (given === null || given === "") return false;
  let params: Map<string, string[]>;
  try {
    params = parseFormBody(req.rawBody);
  } catch {
    return false; // invalid UTF-8 cannot be what Twilio signed
  }
  let ok = false;
  for (const url of twilioSignedUrls(config.publicUrl, req.url)) {
    const expected = await hmacBase64("SHA-1", token, twilioSignaturePayload(url, params));
    ok = timingSafeEqual(given, expected) || ok;
  }
  return ok;
}

/** Splits `whatsapp:+9665...` into channel and number; a bare number is SMS. */
function channelOf(field: "From" | "To", value: string): {
  channel: "sms" | "whatsapp";
  number: string;
} {
  const m = /^([a-z]+):(.*)$/i.exec(value);
  if (m === null) return { channel: "sms", number: value };
  if (m[1]!.toLowerCase() === "whatsapp") return { channel: "whatsapp", number: m[2]! };
  throw new ValidationError("invalid Twilio webhook", [
    { path: [field], message: `unsupported channel '${m[1]}'` },
  ]);
}

function phoneOf(field: "From" | "To", number: string, config: Config): string {
  try {
    return normalizePhone(number, config.defaultCountryCode);
  } catch (err) {
    throw new ValidationError("invalid Twilio webhook", [
      { path: [field], message: err instanceof Error ? err.message : "invalid phone number" },
    ]);
  }
}

function parse(req: ProviderRequest, config: Config) {
  const form = parseFormBody(req.rawBody);
  // Twilio sends each field once; when a name repeats, the first value wins.
  const first = Object.fromEntries([...form].map(([k, v]) => [k, v[0]]));
  const f = validate(fields, first, "invalid Twilio webhook");
  if (f.MessageStatus !== undefined && f.MessageStatus !== "received") {
    return { kind: "messages" as const, messages: [], ignored: 1, rejected: [] };
  }
  const { channel, number } = channelOf("From", f.From);
  const sender = phoneOf("From", number, config);
  const to = phoneOf("To", channelOf("To", f.To).number, config);
  const attachments: Attachment[] = [];
  for (let i = 0; i < f.NumMedia; i++) {
    const url = first[`MediaUrl${i}`];
    if (url === undefined || url === "") {
      throw new ValidationError("invalid Twilio webhook", [
        {
          path: [`MediaUrl${i}`],
          message: `MediaUrl${i} is required when NumMedia is ${f.NumMedia}`,
        },
      ]);
    }
    const mimeType = first[`MediaContentType${i}`] || undefined;
    attachments.push(attachment({ kind: kindOfMimeType(mimeType), url, mimeType }));
  }
  if ((f.Latitude === undefined) !== (f.Longitude === undefined)) {
    const missing = f.Latitude === undefined ? "Latitude" : "Longitude";
    throw new ValidationError("invalid Twilio webhook", [
      { path: [missing], message: "Latitude and Longitude come together" },
    ]);
  }
  let location: string | undefined;
  if (f.Latitude !== undefined && f.Longitude !== undefined) {
    attachments.push(attachment({
      kind: "location",
      latitude: f.Latitude,
      longitude: f.Longitude,
      name: f.Label || undefined,
      address: f.Address || undefined,
    }));
    location = ["[location]", f.Label, f.Address, `${f.Latitude},${f.Longitude}`]
      .filter((p) => p !== undefined && p !== "").join(" ");
  }
  const mediaLabel = attachments.length > 0
    ? attachments.map((a) => `[${a.kind}]`).join(" ")
    : undefined;
  const text = f.Body !== "" ? f.Body : f.ButtonText ?? location ?? mediaLabel ?? "";
  const meta = compact({
    channel,
    to,
    account_sid: f.AccountSid,
    messaging_service_sid: f.MessagingServiceSid,
    num_media: f.NumMedia,
    sender: senderIdentity({ phone: sender, name: f.ProfileName }),
    wa_id: f.WaId,
    button_payload: f.ButtonPayload,
  });
  const msg: InboundMessage = {
    conversation: `${channel}:${to}:${sender}`,
    id: f.MessageSid,
    provider: "twilio",
    text,
    sender,
    attachments,
    meta,
  };
  return { kind: "messages" as const, messages: [msg], ignored: 0, rejected: [] };
}

/** The Twilio adapter. Needs TWILIO_AUTH_TOKEN and LULL_PUBLIC_URL. */
export const twilio: ProviderAdapter = {
  name: "twilio",
  enabled(config, _method, account) {
    return account === undefined && config.twilioAuthToken !== undefined &&
      config.publicUrl !== undefined;
  },
  authenticate,
  parse,
};
