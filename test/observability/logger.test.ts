/** The structured logger (src/observability/logger.ts): the JSON-line contract every log follows. */
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/observability/logger.ts";

describe("createLogger (the flusher's log lines)", () => {
  const at = Date.UTC(2026, 10, 22, 10, 0, 0);
  const clock = { now: () => at };

  it("writes one JSON object per line: level, msg, at first, then the fields", () => {
    const lines: [string, string][] = [];
    const log = createLogger({ level: "info", clock, sink: (l, level) => lines.push([l, level]) });
    log.info("batch delivered", { batchId: "b1", attempt: 2 });
    expect(lines).toEqual([[
      '{"level":"info","msg":"batch delivered","at":"2026-11-22T10:00:00.000Z","batchId":"b1",' +
      '"attempt":2}',
      "info",
    ]]);
  });

  it("drops lines below the level", () => {
    const lines: string[] = [];
    const log = createLogger({ level: "warn", clock, sink: (l) => lines.push(l) });
    log.debug("d");
    log.info("i");
    log.warn("w");
    log.error("e");
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(["w", "e"]);
    expect(log.enabled("info")).toBe(false);
    expect(log.enabled("error")).toBe(true);
  });

  it("fields cannot forge the envelope; errors and bigints serialise usefully", () => {
    const lines: string[] = [];
    const log = createLogger({ clock, sink: (l) => lines.push(l) });
    const err = Object.assign(new Error("nope", { cause: "socket" }), { code: "redis_timeout" });
    log.error("x", { level: "debug", msg: "forged", at: "never", err, big: 10n });
    const rec = JSON.parse(lines[0]!);
    expect(rec).toMatchObject({ level: "error", msg: "x", at: "2026-11-22T10:00:00.000Z" });
    expect(rec).toMatchObject({ field_level: "debug", field_msg: "forged", field_at: "never" });
    expect(rec.err).toEqual({
      name: "Error",
      message: "nope",
      code: "redis_timeout",
      cause: "socket",
    });
    expect(rec.big).toBe("10");
  });

  it("children carry their fields; a circular field or a broken sink never throws", () => {
    const lines: string[] = [];
    const log = createLogger({ clock, base: { fn: "lull" }, sink: (l) => lines.push(l) });
    log.child({ route: "flush" }).info("sweep done", { claimed: 3 });
    expect(JSON.parse(lines[0]!)).toMatchObject({ fn: "lull", route: "flush", claimed: 3 });

    const circular: Record<string, unknown> = {};
    circular.self = circular;
    log.warn("loop", { circular });
    expect(JSON.parse(lines[1]!)).toMatchObject({ level: "warn", msg: "loop" });
    expect(JSON.parse(lines[1]!).logError).toContain("could not be serialised");

    const broken = createLogger({
      sink: () => {
        throw new Error("stdout closed");
      },
    });
    expect(() => broken.error("still fine")).not.toThrow();
  });
});
