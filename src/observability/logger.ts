/**
 * Structured logs as JSON lines: `{ "level", "msg", "at", ...fields }`, one object per line, so
 * `lull tail`, Supabase's log explorer and `jq` all read them. The logger does not mask:
 * callers pass conversations and texts through src/core/mask.ts first, because only
 * they know which field is PII.
 */
import type { Clock } from "../core/clock.ts";
import type { Logger } from "../core/ports.ts";

/** Log levels, least to most severe. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const SEVERITY: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Where finished lines go. */
export type LogSink = (line: string, level: LogLevel) => void;

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Lines below this level are dropped (LULL_LOG_LEVEL). @default "info" */
  level?: LogLevel;
  /**
   * Receives each finished line. @default console.log for debug/info, console.error for
   * warn/error (Supabase shows stderr lines as errors)
   */
  sink?: LogSink;
  /** Source of the `at` timestamp. @default Date.now */
  clock?: Pick<Clock, "now">;
  /** Fields added to every line (e.g. `{ fn: "lull" }`). */
  base?: Record<string, unknown>;
}

/** A {@link Logger} that can also derive children carrying extra fields. */
export interface StructuredLogger extends Logger {
  /** A logger whose lines also carry `fields` (the child's fields win over the parent's). */
  child(fields: Record<string, unknown>): StructuredLogger;
  /** Whether a line at `level` would be written (skip building costly fields otherwise). */
  enabled(level: LogLevel): boolean;
}

const RESERVED = new Set(["level", "msg", "at"]);

const defaultSink: LogSink = (line, level) => {
  if (level === "warn" || level === "error") console.error(line);
  else console.log(line);
};

/** Creates a JSON-lines logger. */
export function createLogger(options: LoggerOptions = {}): StructuredLogger {
  const min = SEVERITY[options.level ?? "info"] ?? SEVERITY.info;
  const sink = options.sink ?? defaultSink;
  const now = options.clock ? () => options.clock!.now() : () => Date.now();
  return build(min, sink, now, options.base ?? {});
}

function build(
  min: number,
  sink: LogSink,
  now: () => number,
  base: Record<string, unknown>,
): StructuredLogger {
  const write = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (SEVERITY[level] < min) return;
    const record: Record<string, unknown> = { level, msg, at: new Date(now()).toISOString() };
    for (const source of [base, fields ?? {}]) {
      for (const [key, value] of Object.entries(source)) {
        // The envelope keys are the log's contract with its readers; a field cannot forge them.
        record[RESERVED.has(key) ? `field_${key}` : key] = value;
      }
    }
    let line: string;
    try {
      line = JSON.stringify(record, replacer);
    } catch (error) {
      // Circular structures and throwing getters: still say *something* rather than nothing.
      line = JSON.stringify({
        level,
        msg,
        at: record.at,
        logError: `fields could not be serialised: ${String(error)}`,
      });
    }
    try {
      sink(line, level);
    } catch {
      // Logging must never take the request down with it.
    }
  };
  return {
    debug: (msg, fields) => write("debug", msg, fields),
    info: (msg, fields) => write("info", msg, fields),
    warn: (msg, fields) => write("warn", msg, fields),
    error: (msg, fields) => write("error", msg, fields),
    child: (fields) => build(min, sink, now, { ...base, ...fields }),
    enabled: (level) => SEVERITY[level] >= min,
  };
}

/** Errors serialise to their useful parts; bigints to strings (JSON has no bigint). */
function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const out: Record<string, unknown> = { name: value.name, message: value.message };
    const code = (value as { code?: unknown }).code;
    if (code !== undefined) out.code = code;
    if (value.cause !== undefined) out.cause = String(value.cause);
    return out;
  }
  if (typeof value === "bigint") return value.toString();
  return value;
}

/** A logger that drops everything (default for library code with no logger wired). */
export const silentLogger: StructuredLogger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
  enabled: () => false,
};
