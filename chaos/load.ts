/**
 * The load: a seeded plan of bursts per conversation, and the senders that play it. Each
 * conversation belongs to one sender, which sends its requests one at a time, retrying a
 * request (same ids, as a provider does after a 503 or a dropped connection) until it gets a
 * 2xx or its retries run out. Only a 2xx acknowledges. Some acknowledged requests are sent
 * again later (a redelivered webhook); some conversations go quiet for longer than the dedup
 * TTL between bursts.
 */
import { createHmac } from "node:crypto";
import type { ChaosPlan } from "./config.ts";
import type { RedeliveryRecord, SentMessage } from "./checker.ts";
import type { IsolatePool } from "./isolates.ts";
import { Prng } from "./prng.ts";

/** Which route a conversation's webhooks take. */
export type Route = "generic" | "telegram" | "whatsapp";

/** One planned request: one or a few messages of one conversation. */
export interface PlannedRequest {
  /** ms after the start of the load. */
  at: number;
  route: Route;
  conversation: string;
  /** Telegram chat id / WhatsApp sender number of the conversation. */
  channelUser: string;
  /** `id` is what lull sees: generic id, wamid, or the Telegram update_id. */
  messages: { id: string; text: string }[];
}

/** A sender's part of the plan, in the order it sends. */
export interface SenderPlan {
  sender: number;
  requests: PlannedRequest[];
}

/** Whether a conversation was planned with idle gaps longer than the dedup TTL. */
export interface LoadPlan {
  senders: SenderPlan[];
  idleConversations: string[];
  messageCount: number;
}

/** Builds the whole plan from the seed. */
export function buildLoadPlan(
  plan: ChaosPlan,
  timings: { dedupTtlMs: number; windowMs: number },
): LoadPlan {
  const rng = new Prng(plan.seed).fork(1);
  const senders: SenderPlan[] = Array.from({ length: plan.senders }, (_, sender) => ({
    sender,
    requests: [],
  }));
  const idleConversations: string[] = [];
  let messageCount = 0;
  const base = Math.floor(plan.messages / plan.conversations);
  const extra = plan.messages - base * plan.conversations;
  let updateId = 1_000_000 * (plan.seed % 1000);
  for (let c = 0; c < plan.conversations; c++) {
    const conversation = `chaos:${plan.seed}:c${c}`;
    const roll = rng.next();
    const route: Route = roll < plan.telegramShare
      ? "telegram"
      : roll < plan.telegramShare + plan.whatsappShare
      ? "whatsapp"
      : "generic";
    const channelUser = route === "telegram" ? String(700_000 + c) : `9665${10_000_000 + c}`;
    const count = base + (c < extra ? 1 : 0);
    const idle = rng.chance(plan.idleShare);
    // Split into bursts.
    const bursts: number[] = [];
    if (idle) {
      idleConversations.push(conversation);
      const n = Math.min(count, rng.int(2, 3));
      for (let i = 0; i < n; i++) bursts.push(Math.floor(count / n) + (i < count % n ? 1 : 0));
    } else {
      for (let left = count; left > 0;) {
        const size = Math.min(left, rng.int(1, 6));
        bursts.push(size);
        left -= size;
      }
    }
    // Start times: idle ones spaced past the dedup TTL, the others spread over the load.
    const starts: number[] = [];
    const span = plan.loadMs * 0.92;
    if (idle) {
      const gaps = bursts.slice(1).map(() => timings.dedupTtlMs + rng.int(2_000, 4_000));
      const needed = gaps.reduce((a, b) => a + b, 0);
      let t = rng.int(0, Math.max(0, Math.floor(span - needed)));
      starts.push(t);
      for (const g of gaps) starts.push(t += g);
    } else {
      for (const _ of bursts) starts.push(rng.int(0, Math.floor(span)));
      starts.sort((a, b) => a - b);
    }
    let k = 0;
    let notBefore = 0;
    const sender = senders[c % plan.senders]!;
    bursts.forEach((size, b) => {
      // Bursts of one conversation never overlap, and are at least two windows apart.
      let t = Math.max(starts[b]!, notBefore);
      for (let i = 0; i < size;) {
        // Telegram and WhatsApp post one message per request here; generic may carry several.
        const multi = route === "generic" && rng.chance(plan.multiShare);
        const n = Math.min(size - i, multi ? rng.int(2, 3) : 1);
        const messages = Array.from({ length: n }, () => {
          const id = route === "telegram"
            ? String(updateId++)
            : route === "whatsapp"
            ? `wamid.chaos${plan.seed}c${c}m${k}`
            : `${conversation}:m${k}`;
          k++;
          return { id, text: `msg ${k} of c${c} ` + "x".repeat(rng.int(0, 120)) };
        });
        sender.requests.push({ at: t, route, conversation, channelUser, messages });
        messageCount += n;
        i += n;
        t += rng.int(20, 150);
      }
      notBefore = t + 2 * timings.windowMs;
    });
  }
  for (const s of senders) s.requests.sort((a, b) => a.at - b.at);
  return { senders, idleConversations, messageCount };
}

/** HTTP outcomes the senders saw (each attempt counted once). */
export interface LoadStats {
  /** status code (or `network`, `timeout`, `no_isolate`) -> attempts */
  attempts: Record<string, number>;
  /** 503 error codes -> count */
  unavailableCodes: Record<string, number>;
  requestsAcked: number;
  requestsGivenUp: number;
  /** 2xx answers that said some message was delivered directly (degraded). */
  degradedAnswers: number;
  /** Messages a 2xx said wait in the durable outbox (Redis down or ambiguous). */
  outboxedMessages: number;
  redeliveriesSent: number;
  redeliveriesAbandoned: number;
  /** Requests answered a permanent 4xx (not retried), with a few examples. */
  requestsRejected: number;
  rejectedExamples: string[];
}

/** Options of {@link runLoad}. */
export interface LoadOptions {
  plan: ChaosPlan;
  load: LoadPlan;
  pool: IsolatePool;
  ingestToken: string;
  telegramSecret: string;
  whatsappSecret: string;
  dedupTtlMs: number;
  now: () => number;
  /** Open ingest requests per isolate name (read by the killer). */
  openRequests: Map<string, number>;
}

/** What a load run recorded. */
export interface LoadResult {
  messages: SentMessage[];
  redeliveries: RedeliveryRecord[];
  stats: LoadStats;
  /** Conversations whose acknowledged messages had a gap longer than the dedup TTL. */
  idlePastDedupTtl: string[];
}

const MAX_ATTEMPTS = 14;
const REQUEST_TIMEOUT_MS = 5_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Plays the plan; resolves when every sender is done and every redelivery settled. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { plan, load, pool } = options;
  const t0 = options.now();
  const stats: LoadStats = {
    attempts: {},
    unavailableCodes: {},
    requestsAcked: 0,
    requestsGivenUp: 0,
    degradedAnswers: 0,
    outboxedMessages: 0,
    redeliveriesSent: 0,
    redeliveriesAbandoned: 0,
    requestsRejected: 0,
    rejectedExamples: [],
  };
  const count = (key: string) => (stats.attempts[key] = (stats.attempts[key] ?? 0) + 1);
  const messages = new Map<string, SentMessage>();
  const ackSeq = new Map<string, number>();
  const ackTimes = new Map<string, number[]>();
  const redeliveries: RedeliveryRecord[] = [];
  const pending = new Set<Promise<void>>();

  /** One attempt; null on anything but a 2xx. */
  const attempt = async (
    rng: Prng,
    request: { path: string; body: string; headers: Record<string, string> },
  ): Promise<
    { accepted: number; duplicates: number; degraded: number; outboxed: number } | null | "rejected"
  > => {
    const live = pool.live();
    if (live.length === 0) {
      count("no_isolate");
      return null;
    }
    const slot = rng.pick(live);
    const name = slot.name;
    options.openRequests.set(name, (options.openRequests.get(name) ?? 0) + 1);
    try {
      const res = await fetch(`${slot.lullUrl}${request.path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...request.headers },
        body: request.body,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const text = await res.text();
      count(String(res.status));
      if (res.status === 503) {
        let code = "unparsed";
        try {
          code = String(JSON.parse(text).error?.code ?? "none");
        } catch { /* not JSON */ }
        stats.unavailableCodes[code] = (stats.unavailableCodes[code] ?? 0) + 1;
      }
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
        // Refused for good (a provider would not retry it either).
        if (stats.rejectedExamples.length < 5) {
          stats.rejectedExamples.push(`${res.status} ${request.path}: ${text.slice(0, 200)}`);
        }
        return "rejected";
      }
      if (res.status < 200 || res.status >= 300) return null;
      const json = JSON.parse(text) as {
        accepted?: number;
        duplicates?: number;
        degraded?: number;
        outboxed?: number;
      };
      return {
        accepted: Number(json.accepted ?? 0),
        duplicates: Number(json.duplicates ?? 0),
        degraded: Number(json.degraded ?? 0),
        outboxed: Number(json.outboxed ?? 0),
      };
    } catch (err) {
      count((err as Error).name === "TimeoutError" ? "timeout" : "network");
      return null;
    } finally {
      options.openRequests.set(name, (options.openRequests.get(name) ?? 1) - 1);
    }
  };

  /** Path and body of a request; a provider's retry resends the same body. */
  const requestOf = (
    r: PlannedRequest,
  ): { path: string; body: string; headers: Record<string, string> } => {
    const m = r.messages[0]!;
    const nowS = Math.floor(Date.now() / 1000);
    if (r.route === "telegram") {
      const chat = { id: Number(r.channelUser), first_name: "Chaos", type: "private" };
      const body = JSON.stringify({
        update_id: Number(m.id),
        message: {
          message_id: Number(m.id) % 1_000_000,
          from: { id: chat.id, is_bot: false, first_name: "Chaos" },
          chat,
          date: nowS,
          text: m.text,
        },
      });
      return {
        path: "/webhooks/telegram",
        body,
        headers: { "x-telegram-bot-api-secret-token": options.telegramSecret },
      };
    }
    if (r.route === "whatsapp") {
      const body = JSON.stringify({
        object: "whatsapp_business_account",
        entry: [{
          id: "102290129340398",
          changes: [{
            field: "messages",
            value: {
              messaging_product: "whatsapp",
              metadata: { display_phone_number: "15550783881", phone_number_id: "106540352242922" },
              contacts: [{ profile: { name: "Chaos" }, wa_id: r.channelUser }],
              messages: [{
                from: r.channelUser,
                id: m.id,
                timestamp: String(nowS),
                type: "text",
                text: { body: m.text },
              }],
            },
          }],
        }],
      });
      const sig = createHmac("sha256", options.whatsappSecret).update(body).digest("hex");
      return {
        path: "/webhooks/whatsapp",
        body,
        headers: { "x-hub-signature-256": `sha256=${sig}` },
      };
    }
    const body = JSON.stringify(
      r.messages.length === 1
        ? { conversation: r.conversation, ...m }
        : { messages: r.messages.map((x) => ({ conversation: r.conversation, ...x })) },
    );
    return {
      path: "/messages",
      body,
      headers: { authorization: `Bearer ${options.ingestToken}` },
    };
  };

  const redeliver = async (
    rng: Prng,
    r: PlannedRequest,
    body: ReturnType<typeof requestOf>,
    firstSentAt: number,
    delayMs: number,
  ) => {
    await sleep(delayMs);
    // Only within the dedup TTL of the first send (the earliest the append can have committed):
    // past it, the id is forgotten by design.
    const until = firstSentAt + options.dedupTtlMs - REQUEST_TIMEOUT_MS - 1_000;
    for (let a = 0; a < 6 && options.now() < until; a++) {
      const out = await attempt(rng, body);
      if (out === "rejected") break;
      if (out) {
        stats.redeliveriesSent++;
        redeliveries.push({
          ids: r.messages.map((m) => m.id),
          conversation: r.conversation,
          status: 202,
          accepted: out.accepted,
          duplicates: out.duplicates,
          outboxed: out.outboxed,
        });
        return;
      }
      await sleep(100 + rng.int(0, 200));
    }
    stats.redeliveriesAbandoned++;
  };

  const runSender = async (sp: SenderPlan) => {
    const rng = new Prng(plan.seed).fork(1000 + sp.sender);
    for (const r of sp.requests) {
      const wait = t0 + r.at - options.now();
      if (wait > 0) await sleep(wait);
      for (const m of r.messages) {
        if (!messages.has(m.id)) {
          messages.set(m.id, { id: m.id, conversation: r.conversation, acked: false });
        }
      }
      const body = requestOf(r);
      let acked = false;
      let rejected = false;
      // Retries stop inside the dedup TTL: a retry after it would be a new message by design
      // (the id is forgotten), and the checker would call the copy a second batchId.
      const firstAt = options.now();
      const giveUpAt = firstAt + options.dedupTtlMs - REQUEST_TIMEOUT_MS - 1_000;
      for (let a = 0; a < MAX_ATTEMPTS && !acked && options.now() < giveUpAt; a++) {
        const out = await attempt(rng, body);
        if (out === "rejected") {
          stats.requestsRejected++;
          rejected = true;
          break;
        }
        if (out) {
          acked = true;
          const at = options.now();
          if (out.degraded > 0) stats.degradedAnswers++;
          stats.outboxedMessages += out.outboxed;
          for (const m of r.messages) {
            const rec = messages.get(m.id)!;
            const seq = ackSeq.get(r.conversation) ?? 0;
            ackSeq.set(r.conversation, seq + 1);
            rec.acked = true;
            rec.ackSeq = seq;
            rec.ackAt = at;
            rec.degradedAck = out.degraded > 0;
            let times = ackTimes.get(r.conversation);
            if (!times) ackTimes.set(r.conversation, times = []);
            times.push(at);
          }
          if (rng.chance(plan.redeliverShare)) {
            const p = redeliver(rng.fork(a), r, body, firstAt, rng.int(50, 1_500));
            pending.add(p);
            void p.finally(() => pending.delete(p));
          }
        } else {
          await sleep(Math.min(2_000, 100 * 2 ** a) * (0.5 + rng.next() / 2));
        }
      }
      if (acked) stats.requestsAcked++;
      else if (!rejected) stats.requestsGivenUp++;
    }
  };

  await Promise.all(load.senders.map(runSender));
  while (pending.size > 0) await Promise.all([...pending]);

  const idlePastDedupTtl: string[] = [];
  for (const [conversation, times] of ackTimes) {
    for (let i = 1; i < times.length; i++) {
      if (times[i]! - times[i - 1]! > options.dedupTtlMs) {
        idlePastDedupTtl.push(conversation);
        break;
      }
    }
  }
  return { messages: [...messages.values()], redeliveries, stats, idlePastDedupTtl };
}
