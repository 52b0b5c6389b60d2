/**
 * Durations for humans: `--since 5m` in, `1m 05s` out. Milliseconds inside.
 */

const unitMs: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Parses `500ms`, `30s`, `5m`, `2h`, `1d` (or a combination like `1h30m`); null if invalid. */
export function parseDurationMs(text: string): number | null {
  const trimmed = text.trim();
  if (trimmed === "") return null;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (const match of trimmed.matchAll(re)) {
    total += Number(match[1]) * (unitMs[match[2] ?? ""] ?? 0);
    consumed += match[0].length;
  }
  return consumed === trimmed.length ? Math.round(total) : null;
}

/**
 * Resolves `--since`: a duration ago (`5m`) or an ISO timestamp. Returns epoch ms, null if it is
 * neither.
 */
export function parseSince(text: string, nowMs: number): number | null {
  const duration = parseDurationMs(text);
  if (duration !== null) return nowMs - duration;
  if (!/^\d{4}-\d{2}-\d{2}/.test(text)) return null;
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : at;
}

/** Short human form: `850ms`, `4.2s`, `3m 05s`, `2h 10m`, `3d 4h`. Negative values get a `-`. */
export function formatDurationMs(ms: number): string {
  const sign = ms < 0 ? "-" : "";
  const a = Math.abs(Math.round(ms));
  if (a < 1000) return `${sign}${a}ms`;
  if (a < 60_000) return `${sign}${(a / 1000).toFixed(1)}s`;
  const pad = (n: number) => String(n).padStart(2, "0");
  if (a < 3_600_000) {
    return `${sign}${Math.floor(a / 60_000)}m ${pad(Math.floor((a % 60_000) / 1000))}s`;
  }
  if (a < 86_400_000) {
    return `${sign}${Math.floor(a / 3_600_000)}h ${pad(Math.floor((a % 3_600_000) / 60_000))}m`;
  }
  return `${sign}${Math.floor(a / 86_400_000)}d ${Math.floor((a % 86_400_000) / 3_600_000)}h`;
}
