import { createHmac } from "node:crypto";
import twilioLib from "twilio";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/core/errors.ts";
import { hmacBase64 } from "../../src/core/crypto.ts";
import type { ProviderParse } from "../../src/providers/types.ts";
import { twilio, twilioSignaturePayload, twilioSignedUrls } from "../../src/providers/twilio.ts";
import { bareConfig, configWith, fixture, request, secrets } from "./helpers.ts";

const config = configWith();
/** What the function sees behind Supabase's gateway: not the URL Twilio signed. */
const INTERNAL = "http://127.0.0.1:54321/functions/v1/lull/webhooks/twilio";
const PUBLIC = `${secrets.publicUrl}/webhooks/twilio`;

/** Twilio's algorithm, written independently with node:crypto and URLSearchParams. */
function twilioSign(url: string, body: string, token = secrets.twilioAuthToken): string {
  const params = [...new URLSearchParams(body)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const data = url + params.map(([k, v]) => k + v).join("");
  return createHmac("sha1", token).update(data, "utf8").digest("base64");
}

const post = (body: string, headers: Record<string, string> = {}, query = "") =>
  request(body, {
    url: INTERNAL + query,
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
  });

const parse = (body: string) => {
  const p = twilio.parse(post(body), config) as ProviderParse;
  if (p.kind !== "messages") throw new Error("expected messages");
  return p;
};

describe("twilio: X-Twilio-Signature", () => {
  it("matches the example in Twilio's security documentation", async () => {
    const params = new Map(Object.entries({
      CallSid: ["CA1234567890ABCDE"],
      Caller: ["+12349013030"],
      Digits: ["1234"],
      From: ["+12349013030"],
      To: ["+18005551212"],
    }));
    const payload = twilioSignaturePayload("https://mycompany.com/myapp.php?foo=1&bar=2", params);
    expect(await hmacBase64("SHA-1", "12345", payload)).toBe("0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
  });

  it("accepts a signature over LULL_PUBLIC_URL + /webhooks/twilio (not the internal URL)", async () => {
    const body = fixture("twilio/sms.form");
    const ok = post(body, { "x-twilio-signature": twilioSign(PUBLIC, body) });
    expect(await twilio.authenticate(ok, config)).toBe(true);
    const internal = post(body, { "x-twilio-signature": twilioSign(INTERNAL, body) });
    expect(await twilio.authenticate(internal, config)).toBe(false);
  });

  it("includes the request's query string in the signed URL", async () => {
    const body = fixture("twilio/whatsapp-media.form");
    const signed = twilioSign(`${PUBLIC}?tenant=acme`, body);
    expect(
      await twilio.authenticate(
        post(body, { "x-twilio-signature": signed }, "?tenant=acme"),
        config,
      ),
    )
      .toBe(true);
    expect(await twilio.authenticate(post(body, { "x-twilio-signature": signed }), config)).toBe(
      false,
    );
  });

  it("accepts the URL signed with the default port written out", async () => {
    const body = fixture("twilio/sms.form");
    const withPort = "https://xyz.supabase.co:443/functions/v1/lull/webhooks/twilio";
    expect(
      await twilio.authenticate(
        post(body, { "x-twilio-signature": twilioSign(withPort, body) }),
        config,
      ),
    )
      .toBe(true);
  });

  it.each([
    ["missing", () => ({})],
    ["by another token", (b: string) => ({ "x-twilio-signature": twilioSign(PUBLIC, b, "nope") })],
    ["over a tampered body", (b: string) => ({
      "x-twilio-signature": twilioSign(PUBLIC, b.replace("Hello", "Hullo")),
    })],
    ["over unsorted params", (b: string) => ({
      "x-twilio-signature": createHmac("sha1", secrets.twilioAuthToken)
        .update(PUBLIC + [...new URLSearchParams(b)].map(([k, v]) => k + v).join(""))
        .digest("base64"),
    })],
  ])("rejects a signature %s", async (_, headers) => {
    const body = fixture("twilio/sms.form");
    expect(await twilio.authenticate(post(body, headers(body)), config)).toBe(false);
  });

  it("is disabled without TWILIO_AUTH_TOKEN and rejects everything", async () => {
    expect(twilio.enabled(bareConfig())).toBe(false);
    expect(twilio.enabled(config)).toBe(true);
    const body = fixture("twilio/sms.form");
    const req = post(body, { "x-twilio-signature": twilioSign(PUBLIC, body) });
    expect(await twilio.authenticate(req, bareConfig())).toBe(false);
  });

  it("accepts signatures made by Twilio's official helper library, for every fixture", async () => {
    for (
      const name of [
        "sms.form",
        "whatsapp-media.form",
        "whatsapp-location.form",
        "mms-second-number.form",
      ]
    ) {
      const body = fixture(`twilio/${name}`);
      const params = Object.fromEntries(new URLSearchParams(body));
      const signature = twilioLib.getExpectedTwilioSignature(
        secrets.twilioAuthToken,
        PUBLIC,
        params,
      );
      expect(twilioLib.validateRequest(secrets.twilioAuthToken, signature, PUBLIC, params))
        .toBe(true);
      expect(await twilio.authenticate(post(body, { "x-twilio-signature": signature }), config))
        .toBe(true);
      const other = twilioLib.getExpectedTwilioSignature("another-token", PUBLIC, params);
      expect(await twilio.authenticate(post(body, { "x-twilio-signature": other }), config))
        .toBe(false);
    }
  });

  it("lists the URL variants it tries", () => {
    expect(twilioSignedUrls("https://a.example/fn/", new URL("http://x/y?q=1"))).toEqual([
      "https://a.example/fn/webhooks/twilio?q=1",
      "https://a.example:443/fn/webhooks/twilio?q=1",
    ]);
    expect(twilioSignedUrls("http://a.example:80/fn", new URL("http://x/"))).toEqual([
      "http://a.example:80/fn/webhooks/twilio",
      "http://a.example/fn/webhooks/twilio",
    ]);
  });
});

describe("twilio: normalisation", () => {
  const media = (sid: string) =>
    `https://api.twilio.com/2010-04-01/Accounts/ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX/Messages/${sid}/Media/`;

  it("SMS: sms:<To>:<From> digits, MessageSid as id, Body as text", () => {
    expect(parse(fixture("twilio/sms.form"))).toEqual({
      kind: "messages",
      ignored: 0,
      rejected: [],
      messages: [{
        conversation: "sms:14155552671:966501234567",
        id: "SM1f0e8ae6ade43cb3c0ce4525424e404f",
        provider: "twilio",
        text: "Hello \u0645\u0631\u062d\u0628\u0627 & welcome",
        sender: "966501234567",
        attachments: [],
        meta: {
          channel: "sms",
          to: "14155552671",
          account_sid: "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
          messaging_service_sid: "MG9752274e9e519418a7406176694466fa",
          num_media: 0,
          sender: { phone: "966501234567" },
        },
      }],
    });
  });

  it("WhatsApp via Twilio: whatsapp:<To>:<From>; every MediaUrlN an attachment", () => {
    const base = media("MM0a1b2c3d4e5f60718293a4b5c6d7e8f9");
    expect(parse(fixture("twilio/whatsapp-media.form")).messages).toEqual([{
      conversation: "whatsapp:14155238886:966501234567",
      id: "MM0a1b2c3d4e5f60718293a4b5c6d7e8f9",
      provider: "twilio",
      text: "[image] [document]",
      sender: "966501234567",
      attachments: [
        { kind: "image", url: base + "ME11111111111111111111111111111111", mimeType: "image/jpeg" },
        {
          kind: "document",
          url: base + "ME22222222222222222222222222222222",
          mimeType: "application/pdf",
        },
      ],
      meta: {
        channel: "whatsapp",
        to: "14155238886",
        account_sid: "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        num_media: 2,
        sender: { phone: "966501234567", name: "Sara" },
        wa_id: "966501234567",
      },
    }]);
  });

  it("MMS to a second number: its own conversation; audio, video and a vCard", () => {
    const base = media("MM9a8b7c6d5e4f30211203948576a5b4c3");
    const [m] = parse(fixture("twilio/mms-second-number.form")).messages;
    expect(m!.conversation).toBe("sms:12125550199:966501234567");
    expect(m!.text).toBe("[audio] [video] [contact]");
    expect(m!.attachments).toEqual([
      { kind: "audio", url: base + "ME33333333333333333333333333333333", mimeType: "audio/amr" },
      { kind: "video", url: base + "ME44444444444444444444444444444444", mimeType: "video/mp4" },
      { kind: "contact", url: base + "ME55555555555555555555555555555555", mimeType: "text/vcard" },
    ]);
  });

  it("a WhatsApp location: Latitude/Longitude as a location attachment", () => {
    const [m] = parse(fixture("twilio/whatsapp-location.form")).messages;
    expect(m!.text).toBe("[location] Kingdom Centre King Fahd Rd, Riyadh 24.7113,46.6744");
    expect(m!.attachments).toEqual([{
      kind: "location",
      latitude: 24.7113,
      longitude: 46.6744,
      name: "Kingdom Centre",
      address: "King Fahd Rd, Riyadh",
    }]);
  });

  it("a status callback posted to the same URL is ignored and counted", () => {
    expect(parse(fixture("twilio/status-callback.form"))).toEqual({
      kind: "messages",
      messages: [],
      ignored: 1,
      rejected: [],
    });
  });

  it.each([
    ["no MessageSid", "To=%2B14155552671&From=%2B966501234567&Body=hi", "MessageSid"],
    ["no From", "MessageSid=SM1&To=%2B14155552671&Body=hi", "From"],
    ["no To", "MessageSid=SM1&From=%2B966501234567&Body=hi", "To"],
    ["From not a number", "MessageSid=SM1&To=%2B14155552671&From=hello&Body=hi", "From"],
    ["To not a number", "MessageSid=SM1&To=support&From=%2B966501234567&Body=hi", "To"],
    [
      "unknown channel prefix",
      "MessageSid=SM1&To=%2B14155552671&From=messenger%3A12345&Body=hi",
      "From",
    ],
    [
      "NumMedia not a number",
      "MessageSid=SM1&To=%2B14155552671&From=%2B966501234567&NumMedia=lots",
      "NumMedia",
    ],
    [
      "a MediaUrlN missing for NumMedia",
      "MessageSid=SM1&To=%2B14155552671&From=%2B966501234567&NumMedia=1",
      "MediaUrl0",
    ],
    [
      "Latitude not a coordinate",
      "MessageSid=SM1&To=%2B14155552671&From=%2B966501234567&Latitude=north&Longitude=46.6",
      "Latitude",
    ],
    [
      "Longitude without Latitude",
      "MessageSid=SM1&To=%2B14155552671&From=%2B966501234567&Longitude=46.6",
      "Latitude",
    ],
  ])("rejects %s, naming the field", (_, body, field) => {
    expect(() => parse(body)).toThrow(ValidationError);
    try {
      parse(body);
    } catch (err) {
      expect((err as ValidationError).issues[0]!.path).toEqual([field]);
    }
  });

  it("rejects a body that is not UTF-8", () => {
    const bytes = new Uint8Array([...new TextEncoder().encode("MessageSid=SM1&Body="), 0xff, 0xfe]);
    expect(() => twilio.parse(request(bytes), config)).toThrow(ValidationError);
  });
});
