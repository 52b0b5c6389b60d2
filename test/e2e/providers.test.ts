/**
 * Provider webhooks end to end on real processes: the `lull` function served by Deno, a real
 * redis-server and a real HTTP processor. Each case posts a signed payload written from the
 * provider's documentation (test/fixtures/providers) and checks the HTTP answer, the
 * conversation key, and the delivered batch's sender, text and attachments. Fixture clocks are
 * moved to "now" before signing, because a signed message older than LULL_DEDUP_TTL_MS is
 * refused as a possible replay (that case is tested here too, with the fixtures' own clocks).
 */
import { createHmac } from "node:crypto";
import { request as httpRequest } from "node:http";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import twilioLib from "twilio";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConversationState } from "../../src/core/types.ts";
import { type FunctionsServer, startFunctions } from "../harness/functions.ts";
import {
  freePort,
  type RedisServer,
  startRedisServer,
  testPrefix,
} from "../harness/redis-server.ts";
import { fastEnv } from "./env.ts";
import { eventually, type ProcessorServer, startProcessorServer } from "./processor-server.ts";

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "providers");
const read = (path: string) => readFileSync(join(fixtures, path), "utf8");

const ADMIN = "admin-token-providers";
const INGEST = "ingest-token-providers";
const WA_SECRET = "wa-app-secret-providers";
const TG_SALES = "tg-sales-Secret_1";
const TG_SUPPORT = "tg-support-Secret_2";
const TWILIO_TOKEN = "twilio-auth-token-providers";
const BODY_TIMEOUT_MS = 1500;

let redis: RedisServer;
let processor: ProcessorServer;
let fns: FunctionsServer;
const prefix = testPrefix("e2eprov");

beforeAll(async () => {
  [redis, processor] = await Promise.all([startRedisServer(), startProcessorServer()]);
  const port = await freePort();
  fns = await startFunctions({
    port,
    env: {
      ...fastEnv,
      LULL_REDIS_URL: redis.url,
      LULL_KEY_PREFIX: prefix,
      LULL_PARTITIONS: "4",
      LULL_ADMIN_TOKEN: ADMIN,
      LULL_INGEST_TOKEN: INGEST,
      LULL_PROCESSOR_URL: processor.url,
      WHATSAPP_APP_SECRET: WA_SECRET,
      TELEGRAM_WEBHOOK_SECRET: `sales=${TG_SALES},support=${TG_SUPPORT}`,
      TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
      LULL_PUBLIC_URL: `http://127.0.0.1:${port}/functions/v1/lull`,
      LULL_BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS),
    },
  });
});

afterAll(async () => {
  await fns?.stop();
  await processor?.close();
  await redis?.stop();
});

/** Unique per test, so conversations of different tests never meet in the processor's log. */
let serial = 0;
const unique = () => `${Date.now() % 1_000_000}${++serial}`;

/**
 * Moves every unix-seconds clock field of a fixture (WhatsApp `timestamp`, Telegram `date` and
 * `edit_date`) to just before now, keeping their order and spacing.
 */
function freshen(json: string): string {
  const nowS = Math.floor(Date.now() / 1000);
  return json.replace(
    /("(?:timestamp|date|edit_date)":\s*"?)(17[0-9]{8})/g,
    (_, head: string, s: string) => head + String(nowS - 300 + (Number(s) - 1763805600)),
  );
}

async function whatsapp(body: string, secret = WA_SECRET): Promise<Response> {
  const signature = "sha256=" + createHmac("sha256", secret).update(body).digest("hex");
  return await fetch(`${fns.lullUrl}/webhooks/whatsapp`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-hub-signature-256": signature },
    body,
  });
}

async function telegram(bot: string | null, secret: string, body: string): Promise<Response> {
  return await fetch(`${fns.lullUrl}/webhooks/telegram${bot === null ? "" : `/${bot}`}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": secret },
    body,
  });
}

/** Signs with Twilio's own helper library, over the URL Twilio would post to. */
async function twilio(body: string): Promise<Response> {
  const url = `${fns.lullUrl}/webhooks/twilio`;
  const params = Object.fromEntries(new URLSearchParams(body));
  const signature = twilioLib.getExpectedTwilioSignature(TWILIO_TOKEN, url, params);
  return await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "x-twilio-signature": signature,
    },
    body,
  });
}

async function inspect(conversation: string): Promise<ConversationState> {
  const res = await fetch(`${fns.lullUrl}/conversations/${encodeURIComponent(conversation)}`, {
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  expect(res.status).toBe(200);
  return await res.json() as ConversationState;
}

/** The one batch delivered for `conversation` (waits for it; fails on a second one). */
async function batchOf(conversation: string) {
  await eventually(() => processor.of(conversation).length > 0, `a batch for ${conversation}`);
  await eventually(async () => {
    const s = await inspect(conversation);
    return s.buffer === null && s.batch === null;
  }, `${conversation} to settle`);
  const batches = processor.of(conversation);
  expect(batches).toHaveLength(1);
  return batches[0]!.batch;
}

/** Gives any wrongly buffered message time to flush, then says nothing reached `conversation`. */
async function nothingFor(conversation: string) {
  const s = await inspect(conversation);
  expect(s.buffer).toBeNull();
  expect(s.batch).toBeNull();
  expect(processor.of(conversation)).toEqual([]);
}

describe("e2e providers: WhatsApp users with and without a phone number, several numbers", () => {
  it("a BSUID-only user (username, no phone) is buffered and delivered under their BSUID", async () => {
    const numberId = `1065${unique()}`;
    const body = freshen(read("whatsapp/bsuid-only.json")).replaceAll("106540352242922", numberId);
    const res = await whatsapp(body);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, accepted: 2, duplicates: 0 });
    const batch = await batchOf(`whatsapp:${numberId}:US.13491208655302749999`);
    expect(batch.text).toBe("hola, do you deliver to Brooklyn?\n[voice]");
    expect(batch.messages.map((m) => m.sender)).toEqual([
      "US.13491208655302749999",
      "US.13491208655302749999",
    ]);
    expect(batch.messages[0]!.meta.sender).toEqual({
      userId: "US.13491208655302749999",
      username: "@maria.lopez",
      name: "Maria Lopez",
    });
    expect(batch.messages.map((m) => m.attachments)).toEqual([
      [],
      [{
        kind: "audio",
        id: "1812300009",
        mimeType: "audio/ogg; codecs=opus",
        sha256: "8yEj0hDqg1H3m7b8mQ0fYcWmB6u8gGQk2n0S0yH0c2Q=",
        voice: true,
      }],
    ]);
  });

  it("mixed payload: the usable messages are buffered (200), the unusable one named and counted", async () => {
    const numberId = `1065${unique()}`;
    const body = freshen(read("whatsapp/mixed.json")).replaceAll("106540352242922", numberId);
    const res = await whatsapp(body);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      accepted: 3,
      rejected: 1,
      issues: [{
        path: ["entry", 0, "changes", 0, "value", "messages", 3, "from"],
        message: "from or from_user_id is required",
      }],
    });
    const phoneAndBsuid = await batchOf(`whatsapp:${numberId}:IN.1410018717833190`);
    expect(phoneAndBsuid.messages[0]).toMatchObject({
      sender: "IN.1410018717833190",
      text: "Hey",
      attachments: [],
      meta: { sender: { phone: "919810218674", userId: "IN.1410018717833190" } },
    });
    const bsuidOnly = await batchOf(`whatsapp:${numberId}:US.13491208655302749999`);
    expect(bsuidOnly.messages[0]!.attachments).toEqual([{
      kind: "location",
      latitude: 40.6782,
      longitude: -73.9442,
      name: "Brooklyn Museum",
      address: "200 Eastern Pkwy, Brooklyn, NY",
    }]);
    const phoneOnly = await batchOf(`whatsapp:${numberId}:447700900123`);
    expect(phoneOnly.messages.map((m) => [m.sender, m.text])).toEqual([
      ["447700900123", "still there?"],
    ]);
    // Meta redelivers the same payload: the buffered ones are duplicates, nothing new appears.
    const again = await whatsapp(body);
    expect(await again.json()).toMatchObject({ accepted: 0, duplicates: 3, rejected: 1 });
    const metrics = await fetch(`${fns.lullUrl}/metrics`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(await metrics.text()).toMatch(
      /^lull_messages_refused_total\{[^}]*provider="whatsapp"[^}]*reason="invalid"[^}]*\} [1-9]/m,
    );
  });

  it("one customer writing to two business numbers is two conversations", async () => {
    const a = `1065${unique()}`;
    const b = `1066${unique()}`;
    const body = freshen(read("whatsapp/two-numbers.json"))
      .replaceAll("106540352242922", a).replaceAll("106540352249999", b);
    expect((await whatsapp(body)).status).toBe(200);
    const support = await batchOf(`whatsapp:${a}:SA.2098312003948571`);
    const sales = await batchOf(`whatsapp:${b}:SA.2098312003948571`);
    expect(support.text).toBe("support: my order is late");
    expect(sales.text).toBe("sales: do you cater for 40 people?");
  });

  it("every media kind, location and contact card arrives as an attachment", async () => {
    const numberId = `1065${unique()}`;
    const body = freshen(read("whatsapp/message-types.json"))
      .replaceAll("106540352242922", numberId);
    expect((await whatsapp(body)).status).toBe(200);
    const batch = await batchOf(`whatsapp:${numberId}:966501234567`);
    const kinds = batch.messages.map((m) => m.attachments.map((a) => a.kind).join(","));
    expect(kinds).toEqual([
      "document",
      "audio",
      "sticker",
      "video",
      "",
      "",
      "",
      "",
      "contact",
      "",
    ]);
    expect(batch.messages[0]!.attachments[0]).toEqual({
      kind: "document",
      id: "1212300001",
      mimeType: "application/pdf",
      filename: "invoice-1042.pdf",
      sha256: "f5AfbS6Qy3Jb7Xh0aZ5yH0hQ0bPkG0xF2g6yZ3cQx8k=",
    });
    expect(batch.text.split("\n")[0]).toBe("[document] invoice-1042.pdf");
  });

  it("user_changed_user_id: delivered in the old BSUID's conversation with the new id", async () => {
    const numberId = `1065${unique()}`;
    const body = freshen(read("whatsapp/user-changed-user-id.json"))
      .replaceAll("106540352242922", numberId);
    expect((await whatsapp(body)).status).toBe(200);
    const batch = await batchOf(`whatsapp:${numberId}:US.13491208655302749999`);
    expect(batch.messages[0]!.meta.system).toEqual({
      type: "user_changed_user_id",
      newUserId: "US.20771029384756102938",
    });
  });

  it("a payload with no usable message: 400 naming the field, nothing buffered", async () => {
    const numberId = `1065${unique()}`;
    const body = freshen(JSON.stringify({
      object: "whatsapp_business_account",
      entry: [{
        id: "102290129340398",
        changes: [{
          field: "messages",
          value: {
            metadata: { phone_number_id: numberId },
            messages: [{
              from_user_id: "US:not-a-bsuid",
              id: "wamid.bad1",
              timestamp: "1763805600",
              type: "text",
              text: { body: "x" },
            }],
          },
        }],
      }],
    }));
    const res = await whatsapp(body);
    expect(res.status).toBe(400);
    const err = (await res.json() as { error: { issues: { path: unknown[] }[] } }).error;
    expect(err.issues[0]!.path).toEqual([
      "entry",
      0,
      "changes",
      0,
      "value",
      "messages",
      0,
      "from_user_id",
    ]);
    await nothingFor(`whatsapp:${numberId}:US:not-a-bsuid`);
  });

  it("a replay older than LULL_DEDUP_TTL_MS: answered 200 so Meta stops, nothing buffered", async () => {
    const numberId = `1065${unique()}`;
    // The fixture's own clock (2025-11-22) is long past the one-day dedup window.
    const body = read("whatsapp/bsuid-only.json").replaceAll("106540352242922", numberId);
    const res = await whatsapp(body);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ accepted: 0, duplicates: 0, stale: 2 });
    await nothingFor(`whatsapp:${numberId}:US.13491208655302749999`);
  });
});

describe("e2e providers: Telegram bots, forum topics, albums", () => {
  const chatOf = (json: string, chatId: string) => json.replaceAll("5012345678", chatId);

  it("two bots, each with its own secret: the same chat is two conversations", async () => {
    const chat = `77${unique()}`;
    const body = chatOf(freshen(read("telegram/message-text.json")), chat);
    expect((await telegram("sales", TG_SALES, body)).status).toBe(200);
    const support = body.replace("871502337", "871502990");
    expect((await telegram("support", TG_SUPPORT, support)).status).toBe(200);
    const sales = await batchOf(`telegram:sales:${chat}`);
    const help = await batchOf(`telegram:support:${chat}`);
    expect([sales.messages[0]!.sender, sales.text]).toEqual([chat, "hi there"]);
    expect(help.messages[0]!.meta).toMatchObject({ bot: "support", sender: { userId: chat } });
  });

  it("another bot's secret is 401; an unknown bot and the bare route (no default bot) are 404", async () => {
    const body = freshen(read("telegram/message-text.json"));
    expect((await telegram("sales", TG_SUPPORT, body)).status).toBe(401);
    expect((await telegram("nobody", TG_SALES, body)).status).toBe(404);
    expect((await telegram(null, TG_SALES, body)).status).toBe(404);
  });

  it("a forum topic is its own conversation", async () => {
    const chat = `-100${unique()}`;
    const body = freshen(read("telegram/forum-topic.json")).replaceAll("-1001987654321", chat);
    expect((await telegram("support", TG_SUPPORT, body)).status).toBe(200);
    const batch = await batchOf(`telegram:support:${chat}:1187`);
    expect(batch.text).toBe("the Riyadh branch forgot my drinks");
  });

  it("an album is one burst: one message per photo, each with its largest size", async () => {
    const chat = `88${unique()}`;
    for (const f of ["media-group-1.json", "media-group-2.json"]) {
      const res = await telegram("sales", TG_SALES, chatOf(freshen(read(`telegram/${f}`)), chat));
      expect(res.status).toBe(200);
    }
    const batch = await batchOf(`telegram:sales:${chat}`);
    expect(batch.text).toBe("both pizzas arrived cold\n[photo]");
    expect(batch.messages.map((m) => m.attachments)).toEqual([
      [{
        kind: "image",
        id: "AgACAgQAAxkBAAIFMWmg-x",
        caption: "both pizzas arrived cold",
        size: 97231,
        width: 1080,
        height: 1080,
      }],
      [{ kind: "image", id: "AgACAgQAAxkBAAIFMmmg-x", size: 88410, width: 1280, height: 960 }],
    ]);
  });

  it("a photo without sizes: 400 naming the field, nothing buffered", async () => {
    const chat = `99${unique()}`;
    const body = JSON.stringify({
      update_id: 9001,
      message: {
        message_id: 1,
        date: Math.floor(Date.now() / 1000),
        chat: { id: Number(chat), type: "private" },
        photo: [],
      },
    });
    const res = await telegram("sales", TG_SALES, body);
    expect(res.status).toBe(400);
    const err = (await res.json() as { error: { issues: { path: unknown[] }[] } }).error;
    expect(err.issues[0]!.path).toEqual(["message", "photo"]);
    await nothingFor(`telegram:sales:${chat}`);
  });
});

describe("e2e providers: Twilio numbers and media (signed with the twilio package)", () => {
  const from = (form: string, phone: string) => form.replaceAll("%2B966501234567", `%2B${phone}`);
  const phone = () => `9665${unique().padStart(8, "0").slice(-8)}`;

  it("SMS to two of the account's numbers: two conversations; MMS media as attachments", async () => {
    const who = phone();
    expect((await twilio(from(read("twilio/sms.form").trim(), who))).status).toBe(200);
    expect((await twilio(from(read("twilio/mms-second-number.form"), who))).status).toBe(200);
    const first = await batchOf(`sms:14155552671:${who}`);
    const second = await batchOf(`sms:12125550199:${who}`);
    expect(first.messages[0]).toMatchObject({ sender: who, attachments: [] });
    expect(second.text).toBe("[audio] [video] [contact]");
    expect(second.messages[0]!.attachments.map((a) => [a.kind, a.mimeType])).toEqual([
      ["audio", "audio/amr"],
      ["video", "video/mp4"],
      ["contact", "text/vcard"],
    ]);
  });

  it("a WhatsApp location via Twilio arrives as a location attachment", async () => {
    const who = phone();
    expect((await twilio(from(read("twilio/whatsapp-location.form"), who))).status).toBe(200);
    const batch = await batchOf(`whatsapp:14155238886:${who}`);
    expect(batch.messages[0]!.attachments).toEqual([{
      kind: "location",
      latitude: 24.7113,
      longitude: 46.6744,
      name: "Kingdom Centre",
      address: "King Fahd Rd, Riyadh",
    }]);
  });

  it("no To: 400 naming it, nothing buffered", async () => {
    const who = phone();
    const body = from(read("twilio/sms.form").trim(), who).replace("To=%2B14155552671&", "");
    const res = await twilio(body);
    expect(res.status).toBe(400);
    const err = (await res.json() as { error: { issues: { path: unknown[] }[] } }).error;
    expect(err.issues[0]!.path).toEqual(["To"]);
    await nothingFor(`sms:14155552671:${who}`);
  });
});

describe("e2e providers: generic ingest", () => {
  it("attachments sent in the normalised shape are delivered; a bad one is 400", async () => {
    const conversation = `support:${unique()}`;
    const post = (body: unknown) =>
      fetch(`${fns.lullUrl}/messages`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${INGEST}` },
        body: JSON.stringify(body),
      });
    const photo = { kind: "image", url: "https://files.example/p.jpg", mimeType: "image/jpeg" };
    const bad = await post({ conversation, id: "g0", attachments: [{ kind: "gif" }] });
    expect(bad.status).toBe(400);
    expect((await bad.json() as { error: { issues: { path: unknown[] }[] } }).error.issues[0]!.path)
      .toEqual(["attachments", 0, "kind"]);
    expect((await post({ conversation, id: "g1", text: "see", attachments: [photo] })).status)
      .toBe(202);
    const batch = await batchOf(conversation);
    expect(batch.messages.map((m) => [m.id, m.attachments])).toEqual([["g1", [photo]]]);
  });
});

describe("e2e providers: slow bodies", () => {
  it("a body trickling one byte every 500 ms gets 408 at the deadline", async () => {
    const url = new URL(`${fns.lullUrl}/webhooks/whatsapp`);
    const { status, bytesSent } = await new Promise<{ status: number; bytesSent: number }>(
      (resolve, reject) => {
        let bytesSent = 0;
        const writer: { timer?: ReturnType<typeof setInterval> } = {};
        const client = httpRequest({
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: "POST",
          headers: {
            "content-type": "application/json",
            "x-hub-signature-256": "sha256=00",
            "transfer-encoding": "chunked",
          },
        }, (res) => {
          clearInterval(writer.timer);
          res.resume();
          client.destroy();
          resolve({ status: res.statusCode ?? 0, bytesSent });
        });
        client.on("error", (err) => {
          clearInterval(writer.timer);
          reject(err);
        });
        writer.timer = setInterval(() => {
          client.write("{");
          bytesSent++;
          if (bytesSent > 40) {
            clearInterval(writer.timer);
            client.destroy();
            reject(new Error("no answer after 20 s of trickling"));
          }
        }, 500);
      },
    );
    expect(status).toBe(408);
    // Answered while the client was still sending: well before it would have given up.
    expect(bytesSent).toBeLessThan(40);
  });
});
