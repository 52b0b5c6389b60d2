/**
 * Terminal helpers: colour only on a TTY without NO_COLOR (so piped output stays plain text),
 * a progress spinner on stderr for anything slower than a second, and a yes/no prompt.
 */
import { createInterface } from "node:readline/promises";

/** Whether `stream` should get ANSI colours (TTY, and NO_COLOR unset or empty). */
export function colourEnabled(stream: NodeJS.WriteStream = process.stdout): boolean {
  const noColor = process.env.NO_COLOR;
  if (noColor !== undefined && noColor !== "") return false;
  return stream.isTTY === true;
}

/** ANSI styles; each is the identity function when colour is off. */
export interface Palette {
  bold(s: string): string;
  dim(s: string): string;
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  blue(s: string): string;
  magenta(s: string): string;
  cyan(s: string): string;
}

/** A palette for `stream` (plain when colour is off). */
export function palette(stream: NodeJS.WriteStream = process.stdout): Palette {
  const on = colourEnabled(stream);
  const wrap = (open: number, close: number) => (s: string) =>
    on ? `\u001b[${open}m${s}\u001b[${close}m` : s;
  return {
    bold: wrap(1, 22),
    dim: wrap(2, 22),
    red: wrap(31, 39),
    green: wrap(32, 39),
    yellow: wrap(33, 39),
    blue: wrap(34, 39),
    magenta: wrap(35, 39),
    cyan: wrap(36, 39),
  };
}

/** Delay before a spinner appears: fast commands print nothing extra. */
export const progressDelayMs = 1000;

/**
 * Runs `work`, showing `label` with a spinner on stderr if it takes longer than a second.
 * On a non-TTY stderr it prints the label once followed by dots, so logs still show progress.
 */
export async function withProgress<T>(label: string, work: () => Promise<T>): Promise<T> {
  const stderr = process.stderr;
  const frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
  let frame = 0;
  let shown = false;
  let ticker: ReturnType<typeof setInterval> | undefined;
  const start = setTimeout(() => {
    shown = true;
    if (stderr.isTTY) {
      ticker = setInterval(() => {
        stderr.write(`\r${frames[frame++ % frames.length]} ${label}`);
      }, 80);
    } else {
      stderr.write(label);
      ticker = setInterval(() => stderr.write("."), 1000);
    }
  }, progressDelayMs);
  try {
    return await work();
  } finally {
    clearTimeout(start);
    if (ticker) clearInterval(ticker);
    if (shown) stderr.write(stderr.isTTY ? "\r\u001b[2K" : "\n");
  }
}

/** Asks a yes/no question on the terminal; anything but y/yes is no. */
export async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

/** Pads or truncates to a column width (by code points, good enough for ids and numbers). */
export function column(value: string, width: number): string {
  const chars = [...value];
  if (chars.length > width) return chars.slice(0, width - 1).join("") + "…";
  return value + " ".repeat(width - chars.length);
}

/** Prints rows as aligned columns with a header. */
export function table(headers: string[], rows: string[][], p: Palette): string {
  const widths = headers.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => [...(r[i] ?? "")].length))
  );
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : column(c, widths[i] ?? 0))).join("  ");
  return [p.bold(line(headers)), ...rows.map(line)].join("\n");
}
