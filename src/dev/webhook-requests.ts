/**
 * Builds real, correctly signed webhook requests the way each provider sends them, for the
 * `lull dev` demo and the CLI tests. Payload shapes follow the providers' documentation:
 * WhatsApp Cloud API (X-Hub-Signature-256 over the raw body), Telegram Bot API (secret token
 * header), Twilio (X-Twilio-Signature: HMAC-SHA1 over the URL plus sorted form parameters).
 */
import { createHmac } from "node:crypto";
import type { DevSecrets } from "./dev-state.ts";

/** A request ready for `fetch(url, init)`. */
export interface WebhookRequest {
  url: string;
  init: RequestInit & { body: string; headers: Record<string, string> };
}

/** POST /lull/messages with the ingest bearer token. */
export function genericRequest(
  lullUrl: string,
  secrets: Pick<DevSecrets, "ingestToken">,
  message: { conversation: string; id: string; text: string; sender?: string },
): WebhookRequest {
  return {
    url: `${lullUrl}/messages`,
    init: {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${secrets.ingestToken}`,
      },
      body: JSON.stringify(message),
    },
  };
}

/** POST /lull/webhooks/whatsapp: one inbound text message, signed with the app secret. */
export function whatsappRequest(
  lullUrl: string,
  secrets: Pick<DevSecrets, "whatsappAppSecret">,
  message: { from: string; id: string; text: string; name?: string; timestampS: number },
): WebhookRequest {
  const body = JSON.stringify({
    object: "whatsapp_business_account",
    entry: [{
      id: "102290129340398",
      changes: [{
        field: "messages",
        value: {
          messaging_product: "whatsapp",
          metadata: { display_phone_number: "15550783881", phone_number_id: "106540352242922" },
          contacts: [{ profile: { name: message.name ?? "Demo" }, wa_id: message.from }],
          messages: [{
            from: message.from,
            id: message.id,
            timestamp: String(message.timestampS),
            type: "text",
            text: { body: message.text },
          }],
        },
      }],
    }],
  });
  const signature = createHmac("sha256", secrets.whatsappAppSecret).update(body).digest("hex");
  return {
    url: `${lullUrl}/webhooks/whatsapp`,
    init: {
      method: "POST",
      headers: { "content-type": "application/json", "x-hub-signature-256": `sha256=${signature}` },
      body,
    },
  };
}

/**
 * The route and secret of the first bot TELEGRAM_WEBHOOK_SECRET names: one plain secret is the
 * bot `default` at /webhooks/telegram; a `name=secret,...` list serves each at
 * /webhooks/telegram/<name>.
 */
function firstTelegramBot(secretEnv: string): { path: string; secret: string } {
  const first = secretEnv.split(",")[0]!.trim();
  const at = first.indexOf("=");
  if (at < 0) return { path: "/webhooks/telegram", secret: first };
  return {
    path: `/webhooks/telegram/${encodeURIComponent(first.slice(0, at).trim())}`,
    secret: first.slice(at + 1).trim(),
  };
}

/** POST /lull/webhooks/telegram[/<bot>]: one `message` update with the secret token header. */
export function telegramRequest(
  lullUrl: string,
  secrets: Pick<DevSecrets, "telegramWebhookSecret">,
  message: { chatId: number; updateId: number; messageId: number; text: string; dateS: number },
): WebhookRequest {
  const from = { id: message.chatId, is_bot: false, first_name: "Demo", language_code: "en" };
  const body = JSON.stringify({
    update_id: message.updateId,
    message: {
      message_id: message.messageId,
      from,
      chat: { id: message.chatId, first_name: "Demo", type: "private" },
      date: message.dateS,
      text: message.text,
    },
  });
  const bot = firstTelegramBot(secrets.telegramWebhookSecret);
  return {
    url: `${lullUrl}${bot.path}`,
    init: {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-telegram-bot-api-secret-token": bot.secret,
      },
      body,
    },
  };
}

/**
 * Twilio's signature: base64 HMAC-SHA1 (auth token) over the full URL Twilio posted to,
 * followed by every POST parameter name and value, sorted by name.
 */
export function twilioSignature(
  authToken: string,
  url: string,
  params: Record<string, string>,
): string {
  const data = Object.keys(params).sort().reduce((acc, key) => acc + key + params[key], url);
  return createHmac("sha1", authToken).update(data, "utf8").digest("base64");
}

/**
 * POST /lull/webhooks/twilio: a form-encoded inbound SMS. `publicUrl` is LULL_PUBLIC_URL, the
 * URL the function believes Twilio posts to (what the signature covers).
 */
export function twilioRequest(
  lullUrl: string,
  publicUrl: string,
  secrets: Pick<DevSecrets, "twilioAuthToken">,
  message: { from: string; to: string; sid: string; text: string },
): WebhookRequest {
  const params: Record<string, string> = {
    AccountSid: "AC00000000000000000000000000000000",
    ApiVersion: "2010-04-01",
    Body: message.text,
    From: message.from,
    MessageSid: message.sid,
    NumMedia: "0",
    NumSegments: "1",
    SmsMessageSid: message.sid,
    SmsSid: message.sid,
    SmsStatus: "received",
    To: message.to,
  };
  const signedUrl = twilioSignedUrl(publicUrl);
  return {
    url: `${lullUrl}/webhooks/twilio`,
    init: {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": twilioSignature(secrets.twilioAuthToken, signedUrl, params),
      },
      body: new URLSearchParams(params).toString(),
    },
  };
}

/** The exact URL Twilio signs for the Twilio route, given LULL_PUBLIC_URL. */
export function twilioSignedUrl(publicUrl: string): string {
  return `${publicUrl.replace(/\/+$/, "")}/webhooks/twilio`;
}
