/**
 * The CLI's pure helpers (no I/O): durations, masking and formatting of events, stats figures,
 * the batch line printer, Twilio's signature, and the command line's exit codes.
 */
import { afterAll, describe, expect, it } from "vitest";
import { formatDurationMs, parseDurationMs, parseSince } from "../../src/cli/duration.ts";
import { eventTypes, formatEvent, maskEvent } from "../../src/cli/commands/tail.ts";
import {
  decodeDeliveredTexts,
  DELIVERED_TEXT_MAX_BYTES,
  encodeDeliveredTexts,
} from "../../src/core/delivered-texts.ts";
import { deriveStats, sparkline } from "../../src/cli/commands/stats.ts";
import { bufferView } from "../../src/core/views.ts";
import { formatBatch, parseBatchLine } from "../../src/cli/batch-printer.ts";
import { twilioSignature } from "../../src/dev/webhook-requests.ts";
import { twilioSignaturePayload } from "../../src/providers/twilio.ts";
import { createHmac } from "node:crypto";
import type { Palette } from "../../src/cli/terminal.ts";
import type { BufferEvent, CounterName, StatsSnapshot } from "../../src/core/types.ts";
import { runCli } from "./cli-stack.ts";
import { type DevState, writeDevState } from "../../src/dev/dev-state.ts";
import { functionUrl, resolveConnection } from "../../src/cli/connect.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const plain: Palette = {
  bold: (s) => s,
  dim: (s) => s,
  red: (s) => s,
  green: (s) => s,
  yellow: (s) => s,
  blue: (s) => s,
  magenta: (s) => s,
  cyan: (s) => s,
};

describe("durations", () => {
  it("parses units and combinations, rejects anything else", () => {
    expect(parseDurationMs("500ms")).toBe(500);
    expect(parseDurationMs("30s")).toBe(30_000);
    expect(parseDurationMs("5m")).toBe(300_000);
    expect(parseDurationMs("1h30m")).toBe(5_400_000);
    expect(parseDurationMs("2d")).toBe(172_800_000);
    for (const bad of ["", "5", "m", "5 m", "5x", "-5m", "5m!"]) {
      expect(parseDurationMs(bad), bad).toBeNull();
    }
  });

  it("--since takes a duration ago or an ISO time", () => {
    const now = Date.parse("2026-11-23T12:00:00Z");
    expect(parseSince("5m", now)).toBe(now - 300_000);
    expect(parseSince("2026-11-23T11:00:00Z", now)).toBe(now - 3_600_000);
    expect(parseSince("yesterday", now)).toBeNull();
    expect(parseSince("2026-13-45", now)).toBeNull();
  });

  it("formats for humans", () => {
    expect(formatDurationMs(850)).toBe("850ms");
    expect(formatDurationMs(4200)).toBe("4.2s");
    expect(formatDurationMs(185_000)).toBe("3m 05s");
    expect(formatDurationMs(-1500)).toBe("-1.5s");
    expect(formatDurationMs(7_800_000)).toBe("2h 10m");
  });
});

describe("tail output", () => {
  const ev: BufferEvent = {
    id: "1700000000000-0",
    partition: 3,
    type: "appended",
    at: "2026-11-23T12:00:01.234Z",
    conversation: "whatsapp:966501234567",
    fields: { id: "m-1", size: "2", text: "my secret", sender: "966501234567" },
  };

  it("masks the conversation and personal fields unless --show-pii", () => {
    const masked = maskEvent(ev, false);
    expect(masked.conversation).toBe("whatsapp:**********67");
    expect(masked.fields).toEqual({
      id: "m-1",
      size: "2",
      text: "<9 chars>",
      sender: "**********67",
    });
    expect(maskEvent(ev, true)).toEqual(ev);
    // Masking what the source already masked changes nothing.
    expect(maskEvent(masked, false).conversation).toBe(masked.conversation);
  });

  it("masks a delivered event's texts unless --show-pii; texts masked at the source stay as they are", () => {
    const texts = encodeDeliveredTexts([
      { text: "مرحبا", attachments: [] },
      { text: "x".repeat(DELIVERED_TEXT_MAX_BYTES + 1), attachments: [{ kind: "image" }] },
    ], true);
    const delivered: BufferEvent = {
      ...ev,
      type: "delivered",
      fields: { batchId: "b_1", size: "2", texts },
    };
    expect(maskEvent(delivered, true)).toEqual(delivered);
    const masked = maskEvent(delivered, false);
    expect(decodeDeliveredTexts(masked.fields.texts)).toEqual({
      masked: true,
      messages: [{ text: "<5 chars>" }, {
        text: `<${DELIVERED_TEXT_MAX_BYTES}+ chars>`,
        attachments: ["image"],
      }],
      omitted: 0,
    });
    expect(masked.fields.texts).not.toContain("مرحبا");
    const atSource = encodeDeliveredTexts([{ text: "hello", attachments: [] }], false);
    expect(maskEvent({ ...delivered, fields: { texts: atSource } }, false).fields.texts).toBe(
      atSource,
    );
    // Anything else in the field is masked like a text.
    expect(maskEvent({ ...delivered, fields: { texts: "not json" } }, false).fields.texts).toBe(
      "<8 chars>",
    );
  });

  it("prints one line per event: time, type, conversation, partition, fields", () => {
    expect(formatEvent(maskEvent(ev, false), plain)).toBe(
      "12:00:01.234  appended        whatsapp:**********67 p3  id=m-1 size=2 text=<9 chars> " +
        "sender=**********67",
    );
  });

  it("knows every event type of the stream", () => {
    expect(eventTypes).toContain("dead_lettered");
    expect(new Set(eventTypes).size).toBe(13);
  });
});

describe("stats figures", () => {
  const zero = (): Record<CounterName, number> => ({
    ingested: 0,
    duplicates: 0,
    batches: 0,
    batch_messages: 0,
    retries: 0,
    dead: 0,
    superseded: 0,
    reaped: 0,
    fallbacks: 0,
  });

  it("duplicate ratio over ~24 h from today plus the matching share of yesterday", () => {
    const day = 86_400_000;
    const snapshot: StatsSnapshot = {
      totals: { ...zero(), batches: 4, batch_messages: 10 },
      days: [
        { day: "2026-11-22", counters: { ...zero(), ingested: 100, duplicates: 20 } },
        { day: "2026-11-23", counters: { ...zero(), ingested: 30, duplicates: 10 } },
      ],
      openBuffers: 0,
      inFlight: 0,
      dlqSize: 0,
      // A quarter of the way into 2026-11-23: three quarters of yesterday count.
      nowMs: Date.parse("2026-11-23T00:00:00Z") + day / 4,
    };
    const d = deriveStats(snapshot);
    expect(d.ingested24h).toBe(105);
    expect(d.duplicates24h).toBe(25);
    expect(d.dupRatio24h).toBeCloseTo(25 / 130);
    expect(d.meanBatchSize).toBe(2.5);
    expect(deriveStats({ ...snapshot, days: [], totals: zero() }).dupRatio24h).toBeNull();
  });

  it("draws a sparkline scaled to the largest day", () => {
    expect(sparkline([0, 1, 2, 4, 8])).toBe("▁▁▂▄█");
    expect(sparkline([0, 0])).toBe("▁▁");
  });
});

describe("buffer rows", () => {
  it("computes age and due-in from the store's clock", () => {
    const row = bufferView({
      conversation: "support:42",
      partition: 5,
      buffer: {
        size: 3,
        bytes: 120,
        firstAt: new Date(1_000_000).toISOString(),
        lastAt: new Date(1_004_000).toISOString(),
        flushAtMs: 1_014_000,
        messages: [],
      },
      batch: null,
      dueAtMs: 1_014_000,
      nowMs: 1_010_000,
    }, "support:**42");
    expect(row).toMatchObject({
      label: "support:**42",
      size: 3,
      bytes: 120,
      ageMs: 10_000,
      dueInMs: 4000,
      dueAt: new Date(1_014_000).toISOString(),
      batch: null,
    });
  });
});

describe("batch printer", () => {
  it("reads the example processor's line and prints conversation, reason, messages, wait", () => {
    const line = JSON.stringify({
      msg: "batch",
      at: "2026-11-23T12:00:10.000Z",
      batchId: "b1",
      conversation: "support:42",
      reason: "quiet",
      attempt: 1,
      fence: 1,
      degraded: false,
      size: 2,
      waitMs: 10_500,
      firstAt: "2026-11-23T11:59:59.500Z",
      lastAt: "2026-11-23T12:00:00.000Z",
      text: "hi\npizza",
      messages: [{ id: "m-1", text: "hi" }, { id: "m-2", text: "pizza" }],
    });
    const batch = parseBatchLine(line)!;
    expect(batch).toMatchObject({ conversation: "support:42", texts: ["hi", "pizza"] });
    expect(formatBatch(batch, plain)).toBe(
      "▶ batch  support:42  2 messages  reason quiet  waited 10.5s from first message\n" +
        "     1  hi\n     2  pizza",
    );
    expect(parseBatchLine('{"level":"info","msg":"delivered"}')).toBeNull();
    expect(parseBatchLine("listening http://127.0.0.1:1/functions/v1")).toBeNull();
  });
});

describe("Twilio signature", () => {
  it("matches the function's own payload construction", () => {
    const url = "https://example.com/functions/v1/lull/webhooks/twilio";
    const params = { To: "+15550001111", From: "+15557654321", Body: "a&b=c", MessageSid: "SM1" };
    const payload = twilioSignaturePayload(
      url,
      new Map(Object.entries(params).map(([k, v]) => [k, [v]])),
    );
    const expected = createHmac("sha1", "token").update(payload, "utf8").digest("base64");
    expect(twilioSignature("token", url, params)).toBe(expected);
  });
});

describe("command line", () => {
  // A directory of our own: no .lull/dev.json from anyone's running `lull dev`.
  const cwd = mkdtempSync(join(tmpdir(), "lull-cli-units-"));
  afterAll(() => rmSync(cwd, { recursive: true, force: true }));

  it("exit codes: help 0, no command or unknown command or bad flag 2", async () => {
    const [help, none, unknown, badFlag, devHelp] = await Promise.all([
      runCli(["--help"], { cwd }),
      runCli([], { cwd }),
      runCli(["frobnicate"], { cwd }),
      runCli(["stats", "--nope"], { cwd }),
      runCli(["dev", "--help"], { cwd }),
    ]);
    expect(help.code).toBe(0);
    for (const c of ["dev", "tail", "buffers", "stats", "dlq", "flush", "send"]) {
      expect(help.stdout).toContain(`  ${c} `);
    }
    expect(none.code).toBe(2);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toContain("--nope");
    expect(devHelp.code).toBe(0);
    expect(devHelp.stdout).toContain("--no-demo");
  });

  it("every command answers --help with its usage and exit code 0", async () => {
    const names = ["dev", "tail", "buffers", "stats", "dlq", "flush", "send", "env"];
    const results = await Promise.all(names.map((n) => runCli([n, "--help"], { cwd })));
    for (const [i, r] of results.entries()) {
      expect(r.code, names[i]).toBe(0);
      expect(r.stdout, names[i]).toContain(`lull ${names[i]}`);
      expect(r.stdout, names[i]).toContain("Exit codes:");
      expect(r.stdout, names[i]).toContain("--json");
    }
  });

  it("a read command with nothing to connect to fails with exit 1 and says what to set", async () => {
    const r = await runCli(["buffers"], { cwd });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("LULL_REDIS_URL");
  });
});

describe("where the CLI connects", () => {
  const cwd = mkdtempSync(join(tmpdir(), "lull-cli-conn-"));
  afterAll(() => rmSync(cwd, { recursive: true, force: true }));
  const state: DevState = {
    version: 1,
    external: false,
    readOnly: false,
    pid: process.pid,
    startedAt: new Date().toISOString(),
    store: "redis-server",
    functionsUrl: "http://127.0.0.1:54321/functions/v1",
    lullUrl: "http://127.0.0.1:54321/functions/v1/lull",
    processorUrl: "http://127.0.0.1:54321/functions/v1/lull-processor",
    redisUrl: "redis://127.0.0.1:7001",
    gatewayUrl: "http://127.0.0.1:7002",
    secrets: {
      ingestToken: "i",
      cronSecret: "c",
      adminToken: "a",
      processorSecret: "p",
      whatsappAppSecret: "w",
      whatsappVerifyToken: "v",
      telegramWebhookSecret: "t",
      twilioAuthToken: "tw",
    },
    env: {
      UPSTASH_REDIS_REST_URL: "http://127.0.0.1:7002",
      UPSTASH_REDIS_REST_TOKEN: "g",
      LULL_ADMIN_TOKEN: "a",
      LULL_KEY_PREFIX: "devprefix",
    },
    tempDir: null,
    children: [],
  };

  it("uses the running lull dev unless the environment names another Redis", () => {
    writeDevState(state, cwd);
    const fromDev = resolveConnection({}, cwd);
    expect(fromDev.source).toBe("dev");
    // Direct TCP to the stack's redis-server, with the stack's prefix and tokens.
    expect(fromDev.config.redis).toEqual({ kind: "tcp", url: "redis://127.0.0.1:7001" });
    expect(fromDev.config.keyPrefix).toBe("devprefix");
    expect(fromDev.config.adminToken).toBe("a");
    expect(resolveConnection({ LULL_REDIS_URL: "redis://127.0.0.1:7001" }, cwd).source)
      .toBe("dev");
    const other = resolveConnection({ LULL_REDIS_URL: "redis://10.0.0.1:6379" }, cwd);
    expect(other.source).toBe("env");
    expect(other.stack).toBeNull();
    expect(other.config.redis).toEqual({ kind: "tcp", url: "redis://10.0.0.1:6379" });
    expect(functionUrl(fromDev, undefined)).toBe(state.lullUrl);
    expect(functionUrl(fromDev, "https://x.supabase.co/functions/v1/lull/")).toBe(
      "https://x.supabase.co/functions/v1/lull",
    );
  });

  it("ignores a state file whose lull dev is gone", () => {
    writeDevState({ ...state, pid: 2 ** 22 + 12345 }, cwd);
    expect(resolveConnection({}, cwd).stack).toBeNull();
  });
});
