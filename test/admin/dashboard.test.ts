/**
 * The dashboard in a real browser: an in-process Node HTTP server adapts node:http to the
 * Web-standard handleAdmin over a RedisStore on a private redis-server, and Debian's Chromium
 * (driven by playwright-core) signs in, sees a buffered conversation (masked), requeues a dead
 * letter by clicking, flushes a buffer and sees the batch among recent batches (texts masked:
 * LULL_LOG_PII is off here), and after a reload finds the live events read back from the stream.
 * A screenshot is saved to /tmp/lull-dashboard.png for a human look.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemClock } from "../../src/core/clock.ts";
import { parseConfig } from "../../src/core/config.ts";
import { Flusher } from "../../src/core/flusher.ts";
import type { Batch, DeliveryOutcome } from "../../src/core/types.ts";
import { type AdminContext, handleAdmin } from "../../src/http/admin.ts";
import type { Logger } from "../../src/core/ports.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import { createTcpClient } from "../../src/redis/tcp-client.ts";
import { RedisStore } from "../../src/store/redis-store.ts";
import { type RedisServer, startRedisServer, testPrefix } from "../harness/redis-server.ts";

const TOKEN = "dashboard-test-token";
const WA = "whatsapp:966501234567";
const DEAD = "support:dead-letter-7";
/** A second dead letter that stays in the DLQ, so the screenshot shows the table filled. */
const DEAD2 = "telegram:123456789";

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

let server: Server;
let browser: Browser | undefined;
let baseUrl: string;
let redis: RedisServer;
let store: RedisStore;
let deadBatchId: string;
let outcome: DeliveryOutcome = {
  kind: "permanent",
  error: "processor answered 422",
  responseBody: '{"error":"unknown intent"}',
};
const delivered: Batch[] = [];

/** node:http -> Request -> handleAdmin -> Response -> node:http, under /functions/v1 like Supabase. */
function adapt(ctx: AdminContext) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      try {
        const url = new URL(req.url ?? "/", baseUrl);
        const headers = new Headers();
        for (const [k, v] of Object.entries(req.headers)) {
          if (typeof v === "string") headers.set(k, v);
        }
        const method = req.method ?? "GET";
        const request = new Request(url, {
          method,
          headers,
          body: method === "GET" || method === "HEAD" ? undefined : Buffer.concat(chunks),
        });
        const path = url.pathname.replace(/^\/functions\/v1/, "");
        const response = await handleAdmin(request, path, ctx);
        res.writeHead(response.status, Object.fromEntries(response.headers));
        res.end(Buffer.from(await response.arrayBuffer()));
      } catch (err) {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end(String(err));
      }
    });
  };
}

beforeAll(async () => {
  redis = await startRedisServer();
  const config = parseConfig({
    LULL_REDIS_URL: redis.url,
    LULL_KEY_PREFIX: testPrefix("dashboard"),
    LULL_ADMIN_TOKEN: TOKEN,
    LULL_PARTITIONS: "4",
    // Per-message events too, as `lull dev` writes them (off by default when deployed).
    LULL_MESSAGE_EVENTS: "true",
  });
  store = new RedisStore({ client: createTcpClient({ url: redis.url }), settings: config });
  const processor = (batch: Batch) => {
    delivered.push(batch);
    return Promise.resolve(outcome);
  };
  const flusher = new Flusher({ store, processor, config, logger: silent });
  const ctx: AdminContext = {
    config,
    store,
    processor,
    clock: systemClock,
    logger: silent,
    waitUntil: () => {},
    metrics: createMetrics(),
    flusher,
  };

  // One dead letter to requeue, and one open buffer to see.
  await store.append({ conversation: DEAD, id: "d-1", provider: "generic", text: "refund?" });
  await store.append({ conversation: DEAD, id: "d-2", provider: "generic", text: "order 42" });
  const dead = await flusher.flushConversation(DEAD, { force: true });
  if (dead.status !== "dead") throw new Error(`expected a dead letter, got ${dead.status}`);
  deadBatchId = dead.batchId;
  await store.append({ conversation: DEAD2, id: "t-1", provider: "telegram", text: "hello?" });
  await flusher.flushConversation(DEAD2, { force: true });
  outcome = { kind: "delivered" };
  await store.append({ conversation: WA, id: "w-1", provider: "whatsapp", text: "hi" });
  await store.append({ conversation: WA, id: "w-2", provider: "whatsapp", text: "pizza" });

  server = createServer(adapt(ctx));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-quic",
      "--no-first-run",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

afterAll(async () => {
  await browser?.close();
  if (server) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  await store?.close();
  await redis?.stop();
});

async function signIn(page: Page): Promise<void> {
  await page.goto(`${baseUrl}/functions/v1/lull/admin/dashboard`);
  await page.getByLabel("Admin token").fill(TOKEN);
  await page.getByRole("button", { name: "Open dashboard" }).click();
  await page.locator("#status", { hasText: "Updated" }).waitFor();
}

describe("admin dashboard", () => {
  it("signs in, shows a masked buffer, and requeues a dead letter by clicking", async () => {
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(m.text());
    });
    page.on("pageerror", (e) => problems.push(e.message));

    await page.goto(`${baseUrl}/functions/v1/lull/admin/dashboard`);
    await page.getByLabel("Admin token").fill(TOKEN);
    await page.getByRole("button", { name: "Open dashboard" }).click();

    // The buffered conversation appears, masked; its raw number is nowhere on the page.
    const waRow = page.locator("#buffers tbody tr", { hasText: "whatsapp:**********67" });
    await waRow.waitFor();
    await expect(waRow.locator("td").nth(1).textContent()).resolves.toBe("2");
    expect(await page.content()).not.toContain("966501234567");

    // The dead letter is listed; requeue it with its button.
    const deadRow = page.locator(`#dlq tbody tr[data-batch-id="${deadBatchId}"]`);
    await deadRow.waitFor();
    await page.getByRole("button", { name: `Requeue batch ${deadBatchId}` }).click();
    await deadRow.waitFor({ state: "detached" });
    await page.locator("#dlq tbody tr", { hasText: "telegram:*******89" }).waitFor();
    await page.locator("#result", { hasText: `Requeued ${deadBatchId}` }).waitFor();

    // The store agrees: the batch is the conversation's next batch again, reason requeue.
    expect((await store.dlqList()).map((d) => d.conversation)).toEqual([DEAD2]);
    const state = await store.inspect(DEAD);
    expect(state.batch).toMatchObject({ batchId: deadBatchId, reason: "requeue", size: 2 });

    // Live events picked the requeue up (events are read from when the page opened).
    await page.locator("#events li", { hasText: "requeued" }).waitFor();
    // The DLQ detail shows the processor's response body, masked like text (PII is off here).
    const second = (await store.dlqList())[0]!.batchId;
    await page.getByRole("button", { name: `Details of batch ${second}` }).click();
    await page.locator("#detail-meta dt", { hasText: "processor response" }).waitFor();
    expect(await page.locator("#detail-meta").textContent()).toContain("<26 chars>");
    // The audit view shows who requeued it: the token's fingerprint, never the token.
    const auditRow = page.locator('#audit tbody tr[data-audit-action="dlq_requeue"]', {
      hasText: deadBatchId,
    });
    await auditRow.waitFor();
    expect(await auditRow.textContent()).toMatch(/token:[0-9a-f]{8}/);
    expect(await page.locator("#audit").textContent()).not.toContain(TOKEN);
    // The stats cards show the store's totals (ingested: the three messages batched so far).
    await page.locator('#counters .card:has(.name:text-is("ingested")) .value:text-is("3")')
      .waitFor();

    // Neither raw conversation key made it onto the page (tables and events show labels).
    const html = await page.content();
    expect(html).not.toContain("966501234567");
    expect(html).not.toContain("dead-letter-7");
    expect(html).not.toContain("123456789");

    await page.screenshot({ path: "/tmp/lull-dashboard.png", fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  });

  it("flushes a buffer by clicking and lists the delivered batch with its texts, masked", async () => {
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    await signIn(page);
    const before = delivered.length;
    await page.getByRole("button", { name: "Flush whatsapp:**********67 now" }).click();
    await page.locator("#result", { hasText: "Flushed whatsapp:**********67" }).waitFor();
    // The processor got the batch; the view shows it from its delivered event.
    expect(delivered.length).toBe(before + 1);
    const batchId = delivered.at(-1)!.batchId;
    const row = page.locator(`#batches tbody tr[data-batch-id="${batchId}"]`);
    await row.waitFor();
    const texts = row.locator("p.text");
    // "hi" and "pizza", masked at the source (LULL_LOG_PII is off): lengths only.
    expect(await texts.allTextContents()).toEqual(["<2 chars>", "<5 chars>"]);
    expect(await texts.first().getAttribute("dir")).toBe("auto");
    expect(await row.textContent()).toContain("whatsapp:**********67");
    expect(await page.content()).not.toContain("pizza");
    // Filter by conversation: the row goes for another conversation, comes back for its own.
    await page.getByLabel("Filter by conversation").fill("telegram:");
    await row.waitFor({ state: "detached" });
    await page.getByLabel("Filter by conversation").fill("whatsapp:");
    await row.waitFor();
    await page.close();
  });

  it("after a reload the live events are read back from the stream, not from the tab", async () => {
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    await signIn(page);
    // Events from before the page opened are there at once (the newest from the stream).
    await page.locator('#events li[data-event-type="dead_lettered"]').first().waitFor();
    await store.append({
      conversation: "support:reload",
      id: "r-1",
      provider: "generic",
      text: "x",
    });
    await page.locator("#events li", { hasText: "support:****ad" }).waitFor();
    const ids = () =>
      page.locator("#events li[data-event-id]").evaluateAll((items) =>
        items.map((li) => li.getAttribute("data-event-id"))
      );
    const before = await ids();
    expect(before.length).toBeGreaterThan(5);
    // Nothing of the events is kept in the tab: clear it all (the token too) and reload.
    expect(await page.evaluate(() => Object.keys(sessionStorage))).toEqual(["lull.adminToken"]);
    await page.evaluate(() => sessionStorage.clear());
    await page.reload();
    await page.getByLabel("Admin token").fill(TOKEN);
    await page.getByRole("button", { name: "Open dashboard" }).click();
    await page.locator("#status", { hasText: "Updated" }).waitFor();
    expect(await ids()).toEqual(before);
    await page.close();
  });

  it("fits a 375 px screen without sideways scrolling, recent batches included", async () => {
    const page = await browser!.newPage({ viewport: { width: 375, height: 800 } });
    await signIn(page);
    await page.locator("#batches tbody tr[data-batch-id]").first().waitFor();
    await page.locator("#events li[data-event-id]").first().waitFor();
    const widths = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      client: document.documentElement.clientWidth,
    }));
    expect(widths.scroll).toBeLessThanOrEqual(widths.client);
    await page.screenshot({ path: "/tmp/lull-dashboard-375.png", fullPage: true });
    await page.close();
  });

  it("asks for the token again when the API rejects it", async () => {
    const page = await browser!.newPage();
    await page.goto(`${baseUrl}/functions/v1/lull/admin`);
    await page.getByLabel("Admin token").fill("wrong-token");
    await page.getByRole("button", { name: "Open dashboard" }).click();
    await page.locator("#status", { hasText: "rejected" }).waitFor();
    expect(await page.getByLabel("Admin token").isVisible()).toBe(true);
    expect(await page.evaluate(() => sessionStorage.getItem("lull.adminToken"))).toBeNull();
    await page.close();
  });
});
