/**
 * `lull dashboard --url <function URL>` against a running stack, in real Chromium: a `lull dev`
 * (redis-server, Deno functions) delivering to a scripted test processor plays the deployed
 * function; the dashboard is served by the `lull dashboard` process on its own port and proxies
 * the admin API. Signs in, sees a buffer appear live, opens a dead letter's messages (Arabic,
 * laid out right to left), requeues one and then a selection, sees a batch delivered through the
 * stack among recent batches with its Arabic text (lull dev shows PII) right to left, filters by
 * conversation, reads the live events back from the stream after a reload that cleared the tab's
 * storage, and fits 375 px without sideways scrolling.
 *
 * `LULL_SCREENSHOT=docs/dashboard.png npx vitest run test/admin/dashboard-remote.test.ts`
 * refreshes the README's screenshot; otherwise it goes to the temp dir.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ProcessorServer, startProcessorServer } from "../e2e/processor-server.ts";
import {
  cleanEnv,
  type DevProcess,
  fastEnv,
  lullBin,
  repoRoot,
  startDev,
} from "../cli/cli-stack.ts";

const ARABIC = "مرحبا، أريد استرداد المبلغ";
let dev: DevProcess;
let processor: ProcessorServer;
let dashboard: ChildProcess;
let dashboardUrl: string;
let browser: Browser;
/** Conversations whose batches the processor refuses (422: straight to the DLQ). */
const refused = new Set<string>();

async function post(conversation: string, id: string, text: string): Promise<void> {
  const res = await fetch(`${dev.ready.lullUrl}/messages`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${dev.ready.secrets.ingestToken}`,
      "content-type": "application/json",
    },
    body: JSON.stringify({ conversation, id, text }),
  });
  expect(res.status).toBe(202);
  await res.body?.cancel();
}

async function admin(method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${dev.ready.lullUrl}/admin${path}`, {
    method,
    headers: {
      authorization: `Bearer ${dev.ready.secrets.adminToken}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return await res.json();
}

/** Sends one message and flushes it now into the refusing processor: one dead letter. */
async function deadLetter(conversation: string, text: string): Promise<string> {
  refused.add(conversation);
  await post(conversation, `${conversation}-1`, text);
  const r = await admin("POST", "/flush", { conversation });
  expect(r.outcome.status).toBe("dead");
  return r.outcome.batchId as string;
}

beforeAll(async () => {
  processor = await startProcessorServer();
  processor.respond((d) =>
    refused.has(d.batch.conversation)
      ? { status: 422, body: '{"error":"cannot handle"}' }
      : { status: 200 }
  );
  // A quiet window long enough for the 2 s poll to see an open buffer; dead letters are made
  // by forced flushes and requeued batches are due at once, so nothing waits for it.
  dev = await startDev({
    ...fastEnv,
    LULL_WINDOW_MS: "20000",
    LULL_MAX_WAIT_MS: "40000",
    LULL_PROCESSOR_URL: processor.url,
  });
  dashboard = spawn(process.execPath, [
    lullBin,
    "dashboard",
    "--url",
    dev.ready.lullUrl,
    "--no-open",
    "--json",
  ], { cwd: repoRoot, env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
  dashboardUrl = await new Promise<string>((resolve, reject) => {
    let buf = "";
    let errors = "";
    dashboard.stderr!.on("data", (c) => (errors += c));
    dashboard.stdout!.on("data", (c) => {
      buf += c;
      const line = buf.split("\n").find((l) => l.includes('"ready"'));
      if (line) resolve(JSON.parse(line).url);
    });
    dashboard.once("exit", (code) => reject(new Error(`lull dashboard exited ${code}: ${errors}`)));
  });
  browser = await chromium.launch({
    // Debian's Chromium, found on PATH (never a downloaded browser).
    executablePath: execFileSync("sh", ["-c", "command -v chromium"], { encoding: "utf8" }).trim(),
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  if (dashboard && dashboard.exitCode === null) {
    const exited = new Promise((r) => dashboard.once("exit", r));
    dashboard.kill("SIGINT");
    await exited;
  }
  await dev?.stop();
  await processor?.close();
});

async function signIn(page: Page): Promise<void> {
  await page.goto(dashboardUrl);
  await page.getByLabel("Admin token").fill(dev.ready.secrets.adminToken!);
  await page.getByRole("button", { name: "Open dashboard" }).click();
  await page.locator("#status", { hasText: "Updated" }).waitFor();
}

describe("lull dashboard --url", () => {
  it("serves the page locally and proxies the admin API (the token never leaves the tab)", async () => {
    const page = await fetch(dashboardUrl);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(page.headers.get("content-security-policy")).toContain("connect-src 'self'");
    expect(await page.text()).toContain("lull admin");
    const denied = await fetch(new URL("/lull/admin/stats", dashboardUrl));
    expect(denied.status).toBe(401);
    await denied.body?.cancel();
    // A page on another origin that rebinds a name onto the proxy gets nothing.
    const u = new URL(dashboardUrl);
    const rebound = await new Promise<number>((resolve, reject) => {
      const req = request({
        host: u.hostname,
        port: u.port,
        path: "/lull/admin/stats",
        headers: { host: "evil.example" },
      }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.once("error", reject);
      req.end();
    });
    expect(rebound).toBe(403);
  });

  it("signs in, updates live, shows a dead letter's Arabic text right to left, requeues", {
    timeout: 120_000,
  }, async () => {
    const arabicBatch = await deadLetter("dead:ar", ARABIC);
    const otherBatch = await deadLetter("dead:other", "second dead one");
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    page.on("pageerror", (e) => problems.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(m.text());
    });
    page.on("dialog", (d) => void d.accept());
    await signIn(page);

    // Live: a message posted after sign-in shows up as a buffer and as an event.
    await post("support:live", "live-1", "hello there");
    await page.locator("#buffers tbody tr", { hasText: "support:live" }).waitFor();
    await page.locator("#events li", { hasText: "appended" }).first().waitFor();

    // DLQ detail: the message text (lull dev shows PII), laid out right to left.
    await page.getByRole("button", { name: `Details of batch ${arabicBatch}` }).first().click();
    const text = page.locator("#detail-messages p.text").first();
    await text.waitFor();
    expect(await text.textContent()).toBe(ARABIC);
    expect(await text.getAttribute("dir")).toBe("auto");
    expect(await text.evaluate((n) => getComputedStyle(n).direction)).toBe("rtl");
    await page.locator("#detail-meta", { hasText: "processor answered 422" }).waitFor();

    // Requeue one (the processor now accepts it): the row goes, the result is shown.
    refused.delete("dead:ar");
    await page.getByRole("button", { name: `Requeue batch ${arabicBatch}` }).click();
    await page.locator(`#dlq tbody tr[data-batch-id="${arabicBatch}"]`).waitFor({
      state: "detached",
    });
    await page.locator("#result", { hasText: `Requeued ${arabicBatch}` }).waitFor();

    // Bulk: select the other and requeue the selection (confirmed in a dialog).
    refused.delete("dead:other");
    await page.getByLabel(`Select batch ${otherBatch}`).check();
    await page.getByRole("button", { name: "Requeue selected (1)" }).click();
    await page.locator("#result", { hasText: "Requeued 1 of 1" }).waitFor();
    await page.locator("#dlq tbody td.empty").waitFor();
    // Both requeued batches reach the processor, and show up among recent batches.
    await expect.poll(() => processor.of("dead:ar").length, { timeout: 15_000 }).toBe(2);
    await expect.poll(() => processor.of("dead:other").length, { timeout: 15_000 }).toBe(2);
    await page.locator('#batches tbody tr[data-batch-event="delivered"]', {
      hasText: "dead:ar",
    }).first().waitFor();

    // Filter by conversation: only matching rows stay.
    await page.getByLabel("Filter by conversation").fill("dead:other");
    await expect.poll(() => page.locator("#events li", { hasText: "support:live" }).count())
      .toBe(0);
    expect(await page.locator("#events li", { hasText: "dead:other" }).count()).toBeGreaterThan(0);
    await page.getByLabel("Filter by conversation").fill("");

    // A batch delivered through the stack: its texts among recent batches, Arabic right to left.
    await post("support:ar-live", "ar-1", ARABIC);
    await post("support:ar-live", "ar-2", "and in English");
    const flushed = await admin("POST", "/flush", { conversation: "support:ar-live" });
    expect(flushed.outcome.status).toBe("delivered");
    const row = page.locator(`#batches tbody tr[data-batch-id="${flushed.outcome.batchId}"]`);
    await row.waitFor();
    const texts = row.locator("p.text");
    expect(await texts.allTextContents()).toEqual([ARABIC, "and in English"]);
    expect(await texts.first().getAttribute("dir")).toBe("auto");
    expect(await texts.first().evaluate((n) => getComputedStyle(n).direction)).toBe("rtl");
    expect(await texts.nth(1).evaluate((n) => getComputedStyle(n).direction)).toBe("ltr");
    expect(processor.of("support:ar-live").at(-1)!.batch.messages.map((m) => m.text)).toEqual([
      ARABIC,
      "and in English",
    ]);

    // Live events after a reload come from the stream: the tab keeps nothing (its storage is
    // cleared, the token with it), yet the events from before the reload are listed again.
    const eventIds = () =>
      page.locator("#events li[data-event-id]").evaluateAll((items) =>
        items.map((li) => li.getAttribute("data-event-id")!)
      );
    const before = await eventIds();
    expect(before.length).toBeGreaterThan(3);
    await page.evaluate(() => sessionStorage.clear());
    await signIn(page);
    await page.locator('#events li[data-event-type="requeued"]').first().waitFor();
    const after = await eventIds();
    // The newest 50 are read back; anything that happened meanwhile comes on top of them.
    expect(after.length).toBeGreaterThanOrEqual(Math.min(before.length, 50));
    expect(after).toEqual(expect.arrayContaining(before.slice(0, 20)));
    expect(await page.evaluate(() => Object.keys(sessionStorage))).toEqual(["lull.adminToken"]);

    const shot = process.env.LULL_SCREENSHOT
      ? resolve(repoRoot, process.env.LULL_SCREENSHOT)
      : join(tmpdir(), "lull-dashboard-remote.png");
    const shotBatch = await deadLetter("dead:screenshot", "شكرا لكم، الطلب لم يصل");
    await page.locator("#dlq tbody tr", { hasText: "dead:screenshot" }).waitFor();
    await page.getByRole("button", { name: `Details of batch ${shotBatch}` }).first().click();
    await page.locator("#detail-title", { hasText: shotBatch }).waitFor();
    await page.screenshot({ path: shot, fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  });

  it("fits a 375 px screen without sideways scrolling", { timeout: 60_000 }, async () => {
    await deadLetter("dead:narrow-" + "x".repeat(40), "a long line ".repeat(20));
    await post("whatsapp:966501234567:very-long-identifier-for-overflow", "n-1", "hi");
    // A delivered batch whose text is one long word and whose key is long.
    const wide = "support:narrow-delivered-" + "z".repeat(40);
    await post(wide, "w-1", "y".repeat(400));
    expect((await admin("POST", "/flush", { conversation: wide })).outcome.status).toBe(
      "delivered",
    );
    const page = await browser.newPage({ viewport: { width: 375, height: 800 } });
    await signIn(page);
    await page.locator("#dlq tbody tr", { hasText: "dead:narrow" }).waitFor();
    await page.locator("#buffers tbody tr", { hasText: "very-long-identifier" }).waitFor();
    await page.locator("#batches tbody tr[data-batch-id]", { hasText: ARABIC }).first().waitFor();
    await page.locator("#batches tbody tr[data-batch-id]", { hasText: "narrow-delivered" })
      .waitFor();
    await page.getByRole("button", { name: /^Details of batch/ }).first().click();
    await page.locator("#detail-messages li").first().waitFor();
    const widths = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      client: document.documentElement.clientWidth,
    }));
    expect(widths.scroll).toBeLessThanOrEqual(widths.client);
    await page.close();
  });
});
