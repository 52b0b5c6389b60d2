/**
 * End to end on real processes: the `lull` function served by Deno (src/dev/serve-functions.ts),
 * a real redis-server, and a real HTTP processor (a Node server that records and scripts its
 * answers). Flushes are triggered by the function's own in-isolate timers, and by
 * POST /lull/flush (the durable sweep) where retries need it.
 */
import { createHmac } from "node:crypto";
import { request as httpRequest } from "node:http";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/core/config.ts";
import type { BufferStore, ConversationState } from "../../src/core/types.ts";
import { verifyDelivery } from "../../src/delivery/signature.ts";
import { createStore } from "../../src/store/create-store.ts";
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

const INGEST = "ingest-token-e2e";
const CRON = "cron-secret-e2e";
const ADMIN = "admin-token-e2e";
const PROC_SECRET = "proc-secret-e2e";
const WA_SECRET = "wa-app-secret";
const WA_VERIFY = "wa-verify-token";
const TG_SECRET = "tg-secret-token";
const TWILIO_TOKEN = "twilio-auth-token";

let redis: RedisServer;
let processor: ProcessorServer;
let fns: FunctionsServer;
let store: BufferStore;
const prefix = testPrefix("e2eflow");

beforeAll(async () => {
  [redis, processor] = await Promise.all([startRedisServer(), startProcessorServer()]);
  const port = await freePort();
  const lullUrl = `http://127.0.0.1:${port}/functions/v1/lull`;
  const env = {
    ...fastEnv,
    LULL_REDIS_URL: redis.url,
    LULL_KEY_PREFIX: prefix,
    LULL_PARTITIONS: "4",
    LULL_INGEST_TOKEN: `old-token,${INGEST}`,
    LULL_CRON_SECRET: CRON,
    LULL_ADMIN_TOKEN: ADMIN,
    LULL_PROCESSOR_URL: processor.url,
    LULL_PROCESSOR_SECRET: PROC_SECRET,
    WHATSAPP_APP_SECRET: WA_SECRET,
    WHATSAPP_VERIFY_TOKEN: WA_VERIFY,
    TELEGRAM_WEBHOOK_SECRET: TG_SECRET,
    TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
    LULL_PUBLIC_URL: lullUrl,
  };
  fns = await startFunctions({ env, port });
  store = createStore(parseConfig(env)).store;
});

afterAll(async () => {
  await fns?.stop();
  await store?.close();
  await processor?.close();
  await redis?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function send(conversation: string, id: string, text: string): Promise<Response> {
  return await fetch(`${fns.lullUrl}/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${INGEST}` },
    body: JSON.stringify({ conversation, id, text, sender: "u1" }),
  });
}

async function sendOk(conversation: string, id: string, text: string) {
  const res = await send(conversation, id, text);
  expect(res.status).toBe(202);
  return await res.json() as {
    accepted: number;
    duplicates: number;
    buffers: { conversation: string; size: number; flushAt: string | null }[];
  };
}

async function sweep(): Promise<Record<string, number>> {
  const res = await fetch(`${fns.lullUrl}/flush`, {
    method: "POST",
    headers: { authorization: `Bearer ${CRON}` },
  });
  expect(res.status).toBe(200);
  return await res.json() as Record<string, number>;
}

async function inspect(conversation: string): Promise<ConversationState> {
  const res = await fetch(`${fns.lullUrl}/conversations/${encodeURIComponent(conversation)}`, {
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  expect(res.status).toBe(200);
  return await res.json() as ConversationState;
}

/** Waits until nothing is buffered or outstanding for the conversation. */
async function settled(conversation: string, tick?: () => Promise<unknown>) {
  await eventually(
    async () => {
      const s = await inspect(conversation);
      return s.buffer === null && s.batch === null;
    },
    `${conversation} to settle`,
    tick ? { tick } : {},
  );
}

const texts = (conversation: string) => processor.of(conversation).map((d) => d.batch.text);

describe("e2e: the lull function on Deno with Redis and an HTTP processor", () => {
  it("a burst of 5 inside the window is delivered as exactly one batch, in order, signed", async () => {
    const conv = `burst:${prefix}`;
    for (let i = 1; i <= 5; i++) {
      const body = await sendOk(conv, `m${i}`, `part ${i}`);
      expect(body.accepted).toBe(1);
      expect(body.buffers[0]).toMatchObject({ conversation: conv, size: i });
      await sleep(30);
    }
    // Only the function's own timer flushes this one (no sweep poked).
    await eventually(() => processor.of(conv).length === 1, "the burst's batch");
    await settled(conv);
    expect(processor.of(conv)).toHaveLength(1);
    const d = processor.of(conv)[0]!;
    expect(d.batch.messages.map((m) => m.id)).toEqual(["m1", "m2", "m3", "m4", "m5"]);
    expect(d.batch.text).toBe("part 1\npart 2\npart 3\npart 4\npart 5");
    expect(d.batch).toMatchObject({ attempt: 1, reason: "quiet", degraded: false, fence: 1 });
    expect(d.headers["idempotency-key"]).toBe(d.batch.batchId);
    expect(d.headers["x-lull-fence"]).toBe("1");
    expect(d.headers["content-type"]).toBe("application/json");
    const check = await verifyDelivery({
      signature: d.headers["x-lull-signature"],
      rawBody: d.rawBody,
      secrets: PROC_SECRET,
    });
    expect(check.ok).toBe(true);
  });

  it("two interleaved conversations become two batches, each in its own order", async () => {
    const a = `inter-a:${prefix}`;
    const b = `inter-b:${prefix}`;
    for (let i = 1; i <= 3; i++) {
      await sendOk(a, `a${i}`, `a${i}`);
      await sendOk(b, `b${i}`, `b${i}`);
    }
    await eventually(
      () => processor.of(a).length === 1 && processor.of(b).length === 1,
      "both batches",
    );
    await settled(a);
    await settled(b);
    expect(texts(a)).toEqual(["a1\na2\na3"]);
    expect(texts(b)).toEqual(["b1\nb2\nb3"]);
  });

  it("a redelivered webhook is answered 2xx and buffered once", async () => {
    const conv = `dup:${prefix}`;
    await sendOk(conv, "d1", "once");
    const again = await sendOk(conv, "d1", "once");
    expect(again).toMatchObject({ accepted: 0, duplicates: 1 });
    expect(again.buffers[0]?.size).toBe(1);
    await sendOk(conv, "d2", "twice");
    await eventually(() => processor.of(conv).length === 1, "the batch");
    await settled(conv);
    expect(texts(conv)).toEqual(["once\ntwice"]);
  });

  it("a message arriving while its conversation is in flight lands in the next batch", async () => {
    const conv = `flight:${prefix}`;
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let inFlight!: () => void;
    const started = new Promise<void>((r) => (inFlight = r));
    processor.respond(async (d) => {
      if (d.batch.conversation === conv && d.batch.fence === 1) {
        inFlight();
        await released;
      }
      return { status: 200 };
    });
    try {
      await sendOk(conv, "f1", "first");
      await started;
      const during = await sendOk(conv, "f2", "during the flight");
      expect(during.accepted).toBe(1);
      release();
      await eventually(() => processor.of(conv).length === 2, "the second batch", {
        tick: sweep,
      });
      await settled(conv);
    } finally {
      release();
      processor.respond(() => ({ status: 200 }));
    }
    expect(texts(conv)).toEqual(["first", "during the flight"]);
    expect(processor.of(conv).map((d) => d.batch.fence)).toEqual([1, 2]);
  });

  it("processor 500 then 200: delivered once more with attempt 2 and the same batchId", async () => {
    const conv = `retry:${prefix}`;
    processor.respond((d) =>
      d.batch.conversation === conv && d.batch.attempt === 1
        ? { status: 500, headers: { "retry-after": "0" } }
        : { status: 200 }
    );
    try {
      await sendOk(conv, "r1", "try me");
      await eventually(() => processor.of(conv).length === 2, "the retry", { tick: sweep });
      await settled(conv, sweep);
    } finally {
      processor.respond(() => ({ status: 200 }));
    }
    const [first, second] = processor.of(conv);
    expect(first!.batch.attempt).toBe(1);
    expect(second!.batch.attempt).toBe(2);
    expect(second!.batch.batchId).toBe(first!.batch.batchId);
    expect(second!.headers["idempotency-key"]).toBe(first!.batch.batchId);
    expect(processor.of(conv)).toHaveLength(2);
  });

  it("processor 400: the batch goes to the dead-letter queue whole", async () => {
    const conv = `dead:${prefix}`;
    processor.respond((d) => (d.batch.conversation === conv ? { status: 400 } : { status: 200 }));
    try {
      await sendOk(conv, "x1", "bad");
      await sendOk(conv, "x2", "worse");
      await eventually(() => processor.of(conv).length === 1, "the delivery");
      await settled(conv, sweep);
    } finally {
      processor.respond(() => ({ status: 200 }));
    }
    const dead = (await store.dlqList()).filter((d) => d.conversation === conv);
    expect(dead).toHaveLength(1);
    expect(dead[0]!.messages.map((m) => m.id)).toEqual(["x1", "x2"]);
    expect(dead[0]!.batchId).toBe(processor.of(conv)[0]!.batch.batchId);
    expect(dead[0]!.lastError).toContain("400");
    expect(processor.of(conv)).toHaveLength(1);
  });

  it("processor 425: the batch is put back ahead of newer messages and they flush together", async () => {
    const conv = `supersede:${prefix}`;
    let answered = false;
    processor.respond(async (d) => {
      if (d.batch.conversation === conv && !answered) {
        answered = true;
        // Newer messages arrive while the processor holds the batch; it sees them and says 425.
        await sendOk(conv, "s2", "newer");
        const pending = await inspect(conv);
        expect(pending.buffer?.size).toBe(1);
        return { status: 425 };
      }
      return { status: 200 };
    });
    try {
      await sendOk(conv, "s1", "older");
      await eventually(() => processor.of(conv).length === 2, "the merged batch", {
        tick: sweep,
      });
      await settled(conv, sweep);
    } finally {
      processor.respond(() => ({ status: 200 }));
    }
    const [first, merged] = processor.of(conv);
    expect(first!.batch.messages.map((m) => m.id)).toEqual(["s1"]);
    expect(merged!.batch.messages.map((m) => m.id)).toEqual(["s1", "s2"]);
    expect(merged!.batch.attempt).toBe(1);
    expect(processor.of(conv)).toHaveLength(2);
  });
});

describe("e2e: provider signatures on the real function", () => {
  // Fixture clocks moved to now: a signed message older than LULL_DEDUP_TTL_MS is refused
  // (test/e2e/providers.test.ts covers that and the payload shapes themselves).
  const nowS = Math.floor(Date.now() / 1000);
  const fresh = (path: string) =>
    readFileSync(join(fixtures, path), "utf8").replace(
      /("(?:timestamp|date)":\s*"?)(17[0-9]{8})/g,
      (_, head: string, t: string) => head + String(nowS - 300 + (Number(t) - 1763805600)),
    );
  const whatsappBody = fresh("whatsapp/messages-multi.json");
  const telegramBody = fresh("telegram/message-text.json");
  const twilioBody = readFileSync(join(fixtures, "twilio", "sms.form"), "utf8").trim();

  const waSign = (secret: string) =>
    "sha256=" + createHmac("sha256", secret).update(whatsappBody).digest("hex");
  const twilioSign = (token: string) => {
    const params = [...new URLSearchParams(twilioBody)].sort(([a], [b]) => (a < b ? -1 : 1));
    const payload = `${fns.lullUrl}/webhooks/twilio` + params.map(([k, v]) => k + v).join("");
    return createHmac("sha1", token).update(payload).digest("base64");
  };

  it("WhatsApp: X-Hub-Signature-256 right -> 200, wrong -> 401; handshake echoes the challenge", async () => {
    const post = (sig: string) =>
      fetch(`${fns.lullUrl}/webhooks/whatsapp`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-hub-signature-256": sig },
        body: whatsappBody,
      });
    const bad = await post(waSign("not-the-secret"));
    expect(bad.status).toBe(401);
    const good = await post(waSign(WA_SECRET));
    expect(good.status).toBe(200);
    expect((await good.json() as { accepted: number }).accepted).toBeGreaterThan(0);
    const hs = await fetch(
      `${fns.lullUrl}/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=${WA_VERIFY}&hub.challenge=1158201444`,
    );
    expect(hs.status).toBe(200);
    expect(await hs.text()).toBe("1158201444");
  });

  it("Telegram: secret header right -> 200, wrong -> 401", async () => {
    const post = (secret: string) =>
      fetch(`${fns.lullUrl}/webhooks/telegram`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": secret },
        body: telegramBody,
      });
    expect((await post("wrong")).status).toBe(401);
    const good = await post(TG_SECRET);
    expect(good.status).toBe(200);
    expect(await good.json()).toMatchObject({ accepted: 1 });
  });

  it("Twilio: X-Twilio-Signature over the public URL right -> 200 empty TwiML, wrong -> 401", async () => {
    const post = (sig: string) =>
      fetch(`${fns.lullUrl}/webhooks/twilio`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": sig },
        body: twilioBody,
      });
    expect((await post(twilioSign("wrong-token"))).status).toBe(401);
    const good = await post(twilioSign(TWILIO_TOKEN));
    expect(good.status).toBe(200);
    expect(good.headers.get("content-type")).toContain("text/xml");
    expect(await good.text()).toContain("<Response/>");
  });

  it("generic: either rotated ingest token -> 202, a wrong one -> 401", async () => {
    const post = (token: string, id: string) =>
      fetch(`${fns.lullUrl}/messages`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ conversation: `gen:${prefix}`, id, text: "hi" }),
      });
    expect((await post("nope", "g0")).status).toBe(401);
    expect((await post(INGEST, "g1")).status).toBe(202);
    expect((await post("old-token", "g2")).status).toBe(202);
  });
});

describe("e2e: request bodies on the real runtime", () => {
  it("a chunked body that never ends gets 413 while it is still being sent", async () => {
    const url = new URL(`${fns.lullUrl}/messages`);
    const { status, chunksSent } = await new Promise<{ status: number; chunksSent: number }>(
      (resolve, reject) => {
        let chunksSent = 0;
        const writer: { timer?: ReturnType<typeof setInterval> } = {};
        const client = httpRequest({
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: "POST",
          headers: {
            "content-type": "application/json",
            authorization: `Bearer ${INGEST}`,
            "transfer-encoding": "chunked",
          },
        }, (res) => {
          clearInterval(writer.timer);
          res.resume();
          client.destroy();
          resolve({ status: res.statusCode ?? 0, chunksSent });
        });
        client.on("error", (err) => {
          clearInterval(writer.timer);
          reject(err);
        });
        client.write('{"conversation":"endless","id":"1","text":"');
        // 64 KiB every 5 ms, forever: only an answer while reading stops it.
        writer.timer = setInterval(() => {
          client.write("x".repeat(65536));
          chunksSent++;
          if (chunksSent > 2000) {
            clearInterval(writer.timer);
            client.destroy();
            reject(new Error("no answer after 128 MiB"));
          }
        }, 5);
      },
    );
    expect(status).toBe(413);
    // The default cap is 256 KiB: answered long before the sender gave up.
    expect(chunksSent).toBeLessThan(2000);
  });
});
