/**
 * Admin routes and the metrics scrape against a real RedisStore on a private redis-server, with
 * a real Flusher and a scripted fake processor. Each test has its own key prefix.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { partitionOf } from "../../src/core/keys.ts";
import { type AdminContext, handleMetrics } from "../../src/http/admin.ts";
import type { ServiceContext } from "../../src/http/context.ts";
import { maskConversation } from "../../src/core/mask.ts";
import { RedisStore } from "../../src/store/redis-store.ts";
import { type RedisServer, startRedisServer } from "../harness/redis-server.ts";
import { adminHarness, type Harness, ORIGIN } from "./harness.ts";

const TOKEN = "admin-token-for-tests";

let redis: RedisServer;
const opened: RedisStore[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});

afterAll(async () => {
  await redis.stop();
});

/** Compile-time check: the full route context the edge function builds fits the admin routes. */
export const serviceContextFits = (c: ServiceContext): AdminContext => c;

const setup = (name: string, env: Record<string, string> = {}): Harness =>
  adminHarness({ redisUrl: redis.url, name, token: TOKEN, env, opened });

async function body<T = any>(res: Response): Promise<T> {
  return await res.json() as T;
}

describe("auth", () => {
  it("answers 404 everywhere when LULL_ADMIN_TOKEN is unset", async () => {
    const h = setup("auth-unset", { LULL_ADMIN_TOKEN: "" });
    for (const path of ["/lull/admin/buffers", "/lull/admin", "/lull/admin/dashboard"]) {
      const res = await h.admin("GET", path, { token: "anything" });
      expect(res.status, path).toBe(404);
      expect((await body(res)).error.code).toBe("not_found");
    }
    expect((await h.admin("GET", "/lull/metrics", { token: "anything" })).status).toBe(404);
  });

  it("answers 401 to a wrong or missing token and 200 to the right one", async () => {
    const h = setup("auth-set");
    const wrong = await h.admin("GET", "/lull/admin/stats", { token: TOKEN + "x" });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect((await body(wrong)).error.code).toBe("unauthorized");
    expect((await h.admin("GET", "/lull/admin/stats", { token: null })).status).toBe(401);
    expect((await h.admin("GET", "/lull/metrics", { token: "nope" })).status).toBe(401);
    expect((await h.admin("GET", "/lull/admin/stats")).status).toBe(200);
  });

  it("serves the dashboard page without a token, with a nonce CSP", async () => {
    const h = setup("auth-dash");
    const res = await h.admin("GET", "/lull/admin", { token: null });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    const csp = res.headers.get("content-security-policy") ?? "";
    const nonce = /script-src 'nonce-([0-9a-f]+)'/.exec(csp)?.[1];
    expect(nonce).toBeTruthy();
    const html = await res.text();
    expect(html).toContain(`<script type="module" nonce="${nonce}">`);
    expect(html).toContain(`<style nonce="${nonce}">`);
    expect(html).not.toContain("__LULL_CSP_NONCE__");
  });
});

describe("routes", () => {
  it("lists open buffers across partitions, masked, with sizes and due-in", async () => {
    const h = setup("buffers");
    await h.append("support:4242", "m-1", "hi");
    await h.append("support:4242", "m-2", "I want");
    await h.append("whatsapp:966501234567", "w-1", "pizza");

    const res = await h.admin("GET", "/lull/admin/buffers");
    expect(res.status).toBe(200);
    const data = await body(res);
    expect(data.count).toBe(2);
    const byConv = Object.fromEntries(data.buffers.map((b: any) => [b.conversation, b]));
    const support = byConv["support:4242"];
    expect(support).toMatchObject({ size: 2, attempts: 0, batch: null });
    expect(support.partition).toBe(partitionOf("support:4242", h.config.partitions));
    expect(support.bytes).toBeGreaterThan(0);
    // Due after the window + grace, counted from the last message (store time).
    expect(support.dueInMs).toBeGreaterThan(0);
    expect(support.dueInMs).toBeLessThanOrEqual(h.config.windowMs + h.config.graceMs);
    const wa = byConv["whatsapp:966501234567"];
    expect(wa.size).toBe(1);
    expect(wa.label).toBe("whatsapp:**********67");
    expect(JSON.stringify(data.buffers.map((b: any) => b.label))).not.toContain("9665012345");

    const limited = await body(await h.admin("GET", "/lull/admin/buffers?limit=1"));
    expect(limited.count).toBe(1);
    expect(limited.truncated).toBe(true);
    const bad = await h.admin("GET", "/lull/admin/buffers?limit=abc");
    expect(bad.status).toBe(400);
    expect((await body(bad)).error.code).toBe("invalid_request");

    const one = await body(
      await h.admin("GET", `/lull/admin/conversations/${encodeURIComponent("support:4242")}`),
    );
    expect(one.buffer.messages.map((m: any) => m.text)).toEqual(["hi", "I want"]);
    expect((await h.admin("POST", "/lull/admin/buffers")).status).toBe(405);
  });

  it("force-flushes one conversation and runs the sweep", async () => {
    const h = setup("flush");
    await h.append("support:1", "a", "one");
    await h.append("support:1", "b", "two");
    await h.append("support:2", "c", "three");

    const forced = await h.admin("POST", "/lull/admin/flush", {
      body: { conversation: "support:1" },
    });
    expect(forced.status).toBe(200);
    const out = await body(forced);
    expect(out.outcome).toMatchObject({ status: "delivered", size: 2 });
    expect(h.proc.delivered.map((b) => [b.conversation, b.reason, b.text])).toEqual([
      ["support:1", "manual", "one\ntwo"],
    ]);

    // support:2 is not due yet (8 s window): the sweep claims nothing.
    const sweep = await body(await h.admin("POST", "/lull/admin/flush"));
    expect(sweep.sweep).toMatchObject({ claimed: 0, delivered: 0 });
    expect(h.proc.delivered).toHaveLength(1);

    const buffers = await body(await h.admin("GET", "/lull/admin/buffers"));
    expect(buffers.buffers.map((b: any) => b.conversation)).toEqual(["support:2"]);

    expect((await h.admin("POST", "/lull/admin/flush", { body: "{nope" })).status).toBe(400);
    const wrongType = await h.admin("POST", "/lull/admin/flush", { body: { conversation: 5 } });
    expect(wrongType.status).toBe(400);
    expect((await body(wrongType)).error.issues[0].path).toEqual(["conversation"]);
    const wrongMethod = await h.admin("GET", "/lull/admin/flush");
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toBe("POST");
  });

  it("lists, shows, requeues (then delivers) and deletes dead letters", async () => {
    const h = setup("dlq");
    const conv = "support:77";
    await h.append(conv, "m-1", "first");
    await h.append(conv, "m-2", "second");
    h.proc.next = { kind: "permanent", error: "processor said 422" };
    const dead = await body(
      await h.admin("POST", "/lull/admin/flush", { body: { conversation: conv } }),
    );
    expect(dead.outcome.status).toBe("dead");
    const batchId: string = dead.outcome.batchId;

    const list = await body(await h.admin("GET", "/lull/admin/dlq"));
    expect(list.count).toBe(1);
    expect(list.deadLetters[0]).toMatchObject({
      batchId,
      conversation: conv,
      size: 2,
      attempts: 1,
    });
    expect(list.deadLetters[0].lastError).toContain("422");
    expect(list.deadLetters[0].messages).toBeUndefined();

    const show = await body(await h.admin("GET", `/lull/admin/dlq/${batchId}`));
    expect(show.messages.map((m: any) => m.text)).toEqual(["first", "second"]);
    const unknown = await h.admin("GET", "/lull/admin/dlq/no-such-batch");
    expect(unknown.status).toBe(404);
    expect((await body(unknown)).error.code).toBe("dlq_not_found");
    expect((await h.admin("POST", "/lull/admin/dlq/no-such-batch/requeue")).status).toBe(404);

    // A newer batch awaiting retry blocks the requeue (order within the conversation).
    await h.append(conv, "m-3", "third");
    h.proc.next = { kind: "retry", error: "503 from processor" };
    const retry = await body(
      await h.admin("POST", "/lull/admin/flush", { body: { conversation: conv } }),
    );
    expect(retry.outcome.status).toBe("retry");
    const busy = await h.admin("POST", `/lull/admin/dlq/${batchId}/requeue`);
    expect(busy.status).toBe(409);
    expect((await body(busy)).error.code).toBe("conversation_busy");

    // Clear the retry, then the requeue goes through and the next sweep delivers it.
    h.proc.next = { kind: "delivered" };
    const cleared = await body(
      await h.admin("POST", "/lull/admin/flush", { body: { conversation: conv } }),
    );
    expect(cleared.outcome.status).toBe("delivered");
    const requeued = await h.admin("POST", `/lull/admin/dlq/${batchId}/requeue`);
    expect(requeued.status).toBe(200);
    expect(await body(requeued)).toMatchObject({ requeued: true, batchId, conversation: conv });
    expect((await body(await h.admin("GET", "/lull/admin/dlq"))).count).toBe(0);

    const sweep = await body(await h.admin("POST", "/lull/admin/flush"));
    expect(sweep.sweep).toMatchObject({ claimed: 1, delivered: 1 });
    const last = h.proc.delivered.at(-1)!;
    expect(last).toMatchObject({ batchId, reason: "requeue", conversation: conv });
    expect(last.messages.map((m) => m.text)).toEqual(["first", "second"]);

    // Delete: a fresh dead letter disappears, and a second delete is a 404.
    await h.append(conv, "m-4", "fourth");
    h.proc.next = { kind: "permanent", error: "gone" };
    const dead2 = await body(
      await h.admin("POST", "/lull/admin/flush", { body: { conversation: conv } }),
    );
    const id2: string = dead2.outcome.batchId;
    const del = await h.admin("DELETE", `/lull/admin/dlq/${id2}`);
    expect(del.status).toBe(200);
    expect(await body(del)).toEqual({ deleted: true, batchId: id2 });
    expect((await h.admin("DELETE", `/lull/admin/dlq/${id2}`)).status).toBe(404);
    expect((await body(await h.admin("GET", "/lull/admin/dlq"))).count).toBe(0);
    const put = await h.admin("PUT", `/lull/admin/dlq/${id2}`);
    expect(put.status).toBe(405);
    expect(put.headers.get("allow")).toContain("DELETE");
  });

  it("reports stats and streams events from a cursor", async () => {
    const h = setup("events");
    const start = await body(await h.admin("GET", "/lull/admin/events"));
    expect(start.events).toEqual([]);
    expect(typeof start.cursor).toBe("string");

    await h.append("support:alice-secret-42", "e-1", "hello");
    await h.append("support:alice-secret-42", "e-1", "hello"); // redelivered webhook
    await h.admin("POST", "/lull/admin/flush", {
      body: { conversation: "support:alice-secret-42" },
    });

    const read = await body(
      await h.admin("GET", `/lull/admin/events?cursor=${encodeURIComponent(start.cursor)}`),
    );
    const types = read.events.map((e: any) => e.type);
    expect(types).toEqual(
      expect.arrayContaining(["appended", "duplicate", "claimed", "delivered"]),
    );
    // Masked at the source: the raw id never appears.
    for (const e of read.events) {
      expect(e.conversation).toBe(maskConversation("support:alice-secret-42", false));
    }
    expect(JSON.stringify(read.events)).not.toContain("alice-secret");

    const again = await body(
      await h.admin("GET", `/lull/admin/events?cursor=${encodeURIComponent(read.cursor)}`),
    );
    expect(again.events).toEqual([]);
    const bad = await h.admin("GET", "/lull/admin/events?cursor=not-a-cursor");
    expect(bad.status).toBe(400);

    const stats = await body(await h.admin("GET", "/lull/admin/stats"));
    expect(stats.totals).toMatchObject({ ingested: 1, duplicates: 1, batches: 1 });
    expect(stats.openBuffers).toBe(0);
    expect(stats.days).toHaveLength(7);
  });
});

describe("recent batches and the latest events", () => {
  /** Force-flushes one conversation through the real Flusher; returns the outcome. */
  async function flush(h: Harness, conversation: string): Promise<any> {
    const r = await body(
      await h.admin("POST", "/lull/admin/flush", { body: { conversation } }),
    );
    return r.outcome;
  }

  it("GET batches: delivered batches newest first with their texts, masked; limit; auth", async () => {
    const h = setup("batches");
    const wa = "whatsapp:966501234567";
    await h.append(wa, "m-1", "hello");
    await h.append(wa, "m-2", "pizza please");
    const first = await flush(h, wa);
    expect(first.status).toBe("delivered");
    await h.append("support:7", "s-1", "second batch");
    const second = await flush(h, "support:7");
    expect(second.status).toBe("delivered");
    // A dead batch is not a delivered one.
    h.proc.next = { kind: "permanent", error: "processor answered 422" };
    await h.append("support:8", "d-1", "never delivered");
    expect((await flush(h, "support:8")).status).toBe("dead");

    const res = await h.admin("GET", "/lull/admin/batches");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const data = await body(res);
    expect(data.count).toBe(2);
    expect(data.batches.map((b: any) => b.batchId)).toEqual([second.batchId, first.batchId]);
    expect(data.batches[1]).toEqual({
      batchId: first.batchId,
      partition: partitionOf(wa, h.config.partitions),
      at: expect.any(String),
      label: "whatsapp:**********67",
      size: 2,
      messages: [{ text: "<5 chars>" }, { text: "<12 chars>" }],
      omitted: 0,
      masked: true,
    });
    const text = JSON.stringify(data);
    expect(text).not.toContain("pizza");
    expect(text).not.toContain("9665012345");

    const limited = await body(await h.admin("GET", "/lull/admin/batches?limit=1"));
    expect(limited.batches.map((b: any) => b.batchId)).toEqual([second.batchId]);
    expect((await h.admin("GET", "/lull/admin/batches", { token: null })).status).toBe(401);
    expect((await h.admin("GET", "/lull/admin/events/latest", { token: "nope" })).status)
      .toBe(401);
    const post = await h.admin("POST", "/lull/admin/batches");
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    const off = setup("batches-off", { LULL_ADMIN_TOKEN: "" });
    expect((await off.admin("GET", "/lull/admin/batches", { token: "x" })).status).toBe(404);
  });

  it("with LULL_LOG_PII the texts are shown; what was written in clear is masked once it is off", async () => {
    const pii = setup("batches-pii", { LULL_LOG_PII: "true" });
    const conv = "telegram:123456789";
    await pii.append(conv, "t-1", "مرحبا، أريد استرداد المبلغ");
    expect((await flush(pii, conv)).status).toBe("delivered");
    const shown = await body(await pii.admin("GET", "/lull/admin/batches"));
    expect(shown.batches[0]).toMatchObject({
      label: conv,
      masked: false,
      messages: [{ text: "مرحبا، أريد استرداد المبلغ" }],
    });
    const latest = await body(await pii.admin("GET", "/lull/admin/events/latest"));
    expect(latest.events[0].fields.texts).toContain("مرحبا");

    // The same keys read by a deployment with LULL_LOG_PII off again: nothing in clear.
    const masked = setup("batches-pii-off", { LULL_KEY_PREFIX: pii.config.keyPrefix });
    const hidden = await body(await masked.admin("GET", "/lull/admin/batches"));
    expect(hidden.batches[0]).toMatchObject({
      label: maskConversation(conv, false),
      masked: true,
      messages: [{ text: "<26 chars>" }],
    });
    const events = await body(await masked.admin("GET", "/lull/admin/events/latest"));
    expect(JSON.stringify(events)).not.toContain("مرحبا");
    expect(JSON.stringify(events)).not.toContain("123456789");
    expect(JSON.stringify(hidden)).not.toContain("123456789");
  });

  it("GET events/latest: the newest events first and a cursor the live read follows on from", async () => {
    const h = setup("latest");
    await h.append("support:1", "a-1", "one");
    await h.append("support:2", "b-1", "two");
    await h.append("support:2", "b-1", "two"); // redelivered webhook
    const all = await body(await h.admin("GET", "/lull/admin/events/latest"));
    expect(all.events.map((e: any) => e.type)).toEqual(["duplicate", "appended", "appended"]);
    expect(all.events[0].conversation).toBe(maskConversation("support:2", false));
    const two = await body(await h.admin("GET", "/lull/admin/events/latest?limit=2"));
    expect(two.events.map((e: any) => e.id)).toEqual(all.events.slice(0, 2).map((e: any) => e.id));
    const follow = `/lull/admin/events?cursor=${encodeURIComponent(all.cursor)}`;
    expect((await body(await h.admin("GET", follow))).events).toEqual([]);
    await h.append("support:3", "c-1", "three");
    const next = await body(await h.admin("GET", follow));
    expect(next.events.map((e: any) => [e.type, e.fields.id])).toEqual([["appended", "c-1"]]);
  });

  it("bad input is a clear JSON 400 and changes nothing", async () => {
    const h = setup("batches-bad");
    await h.append("support:9", "m-1", "hello");
    expect((await flush(h, "support:9")).status).toBe("delivered");
    const before = await h.store.latestEvents({ limit: 1000 });
    const stats = await h.store.stats();
    for (const path of ["/lull/admin/batches", "/lull/admin/events/latest"]) {
      for (const limit of ["0", "-1", "abc", "1.5", "1e2", "100000"]) {
        const res = await h.admin("GET", `${path}?limit=${limit}`);
        expect(res.status, `${path}?limit=${limit}`).toBe(400);
        expect(res.headers.get("content-type")).toMatch(/^application\/json/);
        const err = (await body(res)).error;
        expect(err.code).toBe("invalid_request");
        expect(err.message).toMatch(/^limit must be a whole number from 1 to \d+$/);
        expect(err.issues[0].path).toEqual(["limit"]);
      }
    }
    // Past the batches ceiling (each carries up to 4 KiB of texts), but fine for events.
    expect((await h.admin("GET", "/lull/admin/batches?limit=201")).status).toBe(400);
    expect((await h.admin("GET", "/lull/admin/events/latest?limit=201")).status).toBe(200);
    expect(await h.store.latestEvents({ limit: 1000 })).toEqual(before);
    expect((await h.store.stats()).totals).toEqual(stats.totals);
  });
});

// ---------------------------------------------------------------------------------------------
// A small checker for the Prometheus text exposition format (0.0.4).

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

function parseLabels(s: string, line: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < s.length) {
    const m = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(s.slice(i));
    if (!m) throw new Error(`bad label name in: ${line}`);
    i += m[0].length;
    if (s.slice(i, i + 2) !== '="') throw new Error(`expected =" in: ${line}`);
    i += 2;
    let value = "";
    for (;;) {
      const c = s[i];
      if (c === undefined) throw new Error(`unterminated label value in: ${line}`);
      if (c === '"') break;
      if (c === "\n") throw new Error(`raw newline in: ${line}`);
      if (c === "\\") {
        const e = s[i + 1];
        if (e === "\\") value += "\\";
        else if (e === '"') value += '"';
        else if (e === "n") value += "\n";
        else throw new Error(`bad escape \\${e} in: ${line}`);
        i += 2;
      } else {
        value += c;
        i += 1;
      }
    }
    i += 1; // closing quote
    if (m[0] in out) throw new Error(`duplicate label ${m[0]} in: ${line}`);
    out[m[0]] = value;
    if (s[i] === ",") i += 1;
    else if (i !== s.length) throw new Error(`expected , or } in: ${line}`);
  }
  return out;
}

/** Parses exposition text, throwing on anything a Prometheus scraper would reject. */
function parseExposition(text: string): { types: Map<string, string>; samples: Sample[] } {
  if (!text.endsWith("\n")) throw new Error("exposition must end with a newline");
  const types = new Map<string, string>();
  const helped = new Set<string>();
  const samples: Sample[] = [];
  const seenSeries = new Set<string>();
  for (const line of text.slice(0, -1).split("\n")) {
    if (line.startsWith("# HELP ")) {
      const m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
      if (!m || helped.has(m[1]!)) throw new Error(`bad or repeated HELP: ${line}`);
      helped.add(m[1]!);
      continue;
    }
    if (line.startsWith("# TYPE ")) {
      const m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/
        .exec(line);
      if (!m || types.has(m[1]!)) throw new Error(`bad or repeated TYPE: ${line}`);
      types.set(m[1]!, m[2]!);
      continue;
    }
    if (line.startsWith("#")) continue;
    const name = NAME.exec(line)?.[0];
    if (!name) throw new Error(`bad sample line: ${JSON.stringify(line)}`);
    let rest = line.slice(name.length);
    let labels: Record<string, string> = {};
    if (rest.startsWith("{")) {
      // Find the closing brace outside quoted values.
      let j = 1;
      let quoted = false;
      for (; j < rest.length; j++) {
        if (quoted && rest[j] === "\\") j++;
        else if (rest[j] === '"') quoted = !quoted;
        else if (!quoted && rest[j] === "}") break;
      }
      labels = parseLabels(rest.slice(1, j), line);
      rest = rest.slice(j + 1);
    }
    const vm = /^ (\S+)( -?\d+)?$/.exec(rest);
    if (!vm) throw new Error(`bad value in: ${line}`);
    const raw = vm[1]!;
    const value = raw === "+Inf" ? Infinity : raw === "-Inf" ? -Infinity : Number(raw);
    if (raw !== "NaN" && Number.isNaN(value)) throw new Error(`bad number in: ${line}`);
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, "");
    const type = types.get(family);
    if (!type) throw new Error(`sample before its TYPE: ${line}`);
    if (family !== name && type !== "histogram" && type !== "summary") {
      throw new Error(`suffix on a ${type}: ${line}`);
    }
    if (type === "counter" && !name.endsWith("_total")) throw new Error(`counter name: ${name}`);
    const id = name + JSON.stringify(Object.entries(labels).sort());
    if (seenSeries.has(id)) throw new Error(`duplicate series: ${line}`);
    seenSeries.add(id);
    samples.push({ name, labels, value });
  }
  // Histograms: cumulative buckets ending in +Inf that equals _count.
  for (const [family, type] of types) {
    if (type !== "histogram") continue;
    const groups = new Map<string, Sample[]>();
    for (const s of samples.filter((s) => s.name === `${family}_bucket`)) {
      const { le: _le, ...rest } = s.labels;
      const key = JSON.stringify(Object.entries(rest).sort());
      groups.set(key, [...(groups.get(key) ?? []), s]);
    }
    for (const [key, buckets] of groups) {
      let prevLe = -Infinity;
      let prev = 0;
      for (const b of buckets) {
        const le = b.labels.le === "+Inf" ? Infinity : Number(b.labels.le);
        if (!(le > prevLe) || b.value < prev) throw new Error(`${family}: buckets not cumulative`);
        prevLe = le;
        prev = b.value;
      }
      if (prevLe !== Infinity) throw new Error(`${family}: no +Inf bucket`);
      const count = samples.find((s) =>
        s.name === `${family}_count` &&
        JSON.stringify(Object.entries(s.labels).sort()) === key
      );
      if (count?.value !== prev) throw new Error(`${family}: +Inf bucket != _count`);
    }
  }
  return { types, samples };
}

function sample(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const hit = samples.find((s) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  );
  if (!hit) throw new Error(`no sample ${name} ${JSON.stringify(labels)}`);
  return hit.value;
}

describe("GET /lull/metrics", () => {
  it("is valid Prometheus text and reflects the store and this isolate", async () => {
    const h = setup("metrics");
    await h.append("support:1", "a", "one");
    await h.append("support:1", "b", "two");
    await h.append("support:2", "c", "open buffer stays");
    await h.admin("POST", "/lull/admin/flush", { body: { conversation: "support:1" } });
    await h.append("support:3", "d", "doomed");
    h.proc.next = { kind: "permanent", error: "nope" };
    await h.admin("POST", "/lull/admin/flush", { body: { conversation: "support:3" } });
    // A label value that needs every escape the format has.
    h.ctx.metrics.inc("lull_http_requests_total", { route: 'a"b\\c\nd', status: "200" });

    const res = await h.admin("GET", "/lull/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const { types, samples } = parseExposition(await res.text());

    expect(types.get("lull_delivery_duration_ms")).toBe("histogram");
    expect(sample(samples, "lull_delivery_duration_ms_count")).toBe(2);
    expect(sample(samples, "lull_deliveries_total", { outcome: "delivered" })).toBe(1);
    expect(sample(samples, "lull_deliveries_total", { outcome: "dead" })).toBe(1);
    expect(sample(samples, "lull_http_requests_total", { status: "200" })).toBe(1);
    expect(samples.find((s) => s.name === "lull_http_requests_total")!.labels.route).toBe(
      'a"b\\c\nd',
    );

    expect(sample(samples, "lull_store_up")).toBe(1);
    expect(sample(samples, "lull_open_buffers")).toBe(1);
    expect(sample(samples, "lull_in_flight_batches")).toBe(0);
    expect(sample(samples, "lull_dlq_size")).toBe(1);
    // Ingested counts a burst's messages once it is a batch: support:2's open buffer not yet.
    expect(sample(samples, "lull_store_counter_total", { counter: "ingested" })).toBe(3);
    expect(sample(samples, "lull_store_counter_total", { counter: "batches" })).toBe(1);
    expect(sample(samples, "lull_store_counter_total", { counter: "dead" })).toBe(1);
    expect(sample(samples, "lull_circuit_breaker_state", { breaker: "processor", state: "open" }))
      .toBe(1);
    expect(sample(samples, "lull_circuit_breaker_state", { breaker: "redis", state: "open" }))
      .toBe(0);
  });

  it("still answers with lull_store_up 0 when the store cannot be read", async () => {
    const h = setup("metrics-down");
    const broken: AdminContext = {
      ...h.ctx,
      store: Object.assign(Object.create(h.store), {
        stats: () => Promise.reject(new Error("connection refused")),
      }),
    };
    const req = new Request(ORIGIN + "/lull/metrics", {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const res = await handleMetrics(req, broken);
    expect(res.status).toBe(200);
    const { samples } = parseExposition(await res.text());
    expect(sample(samples, "lull_store_up")).toBe(0);
    expect(samples.some((s) => s.name === "lull_dlq_size")).toBe(false);
  });
});
