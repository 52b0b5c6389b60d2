/**
 * Statements with their values written into the text, for the few that run on every request or
 * burst. Why: behind a transaction-mode pooler the client cannot prepare statements, and
 * porsager's `postgres` then sends a statement with parameters in two round trips (it describes
 * the statement first to learn the parameter types, and does not pipeline it); a statement
 * without parameters goes in one. Measured on loopback: 165–215 µs against 281–378 µs.
 *
 * Safe by construction, whatever the server's settings: only values built by this module's
 * constructors can go in, a text is written as the hex of its UTF-8 bytes (the statement holds
 * nothing of it but `0-9a-f`), and numbers must be finite integers. Any other value in
 * {@link inlineSql}'s template throws.
 */

/** A value written into a statement's text; build one with {@link text}, {@link int}... */
export class SqlLiteral {
  /** The SQL expression. Private to this module's constructors. */
  readonly sql: string;
  private constructor(sql: string) {
    this.sql = sql;
  }
  /** @internal */
  static of(sql: string): SqlLiteral {
    return new SqlLiteral(sql);
  }
}

function hex(value: string): string {
  let out = "";
  for (const byte of new TextEncoder().encode(value)) out += byte.toString(16).padStart(2, "0");
  return out;
}

/** A text value (any string; a NUL fails in the server, as it would as a parameter). */
export function text(value: string): SqlLiteral {
  if (typeof value !== "string") throw new TypeError("text: not a string");
  return SqlLiteral.of(`convert_from(decode('${hex(value)}', 'hex'), 'UTF8')`);
}

/** A text[] value. */
export function textArray(values: readonly string[]): SqlLiteral {
  if (values.length === 0) return SqlLiteral.of("array[]::text[]");
  return SqlLiteral.of(`array[${values.map((v) => text(v).sql).join(", ")}]`);
}

/**
 * An integer: a number, or a string of digits (a bigint's text). Written bare: cast it in the
 * template (`${int(p)}::int`).
 */
export function int(value: number | string): SqlLiteral {
  const digits = typeof value === "number"
    ? (Number.isSafeInteger(value) ? String(value) : null)
    : (/^-?\d{1,19}$/.test(value) ? value : null);
  if (digits === null) throw new TypeError(`int: ${String(value)} is not an integer`);
  return SqlLiteral.of(`(${digits})`);
}

/** A timestamptz from epoch milliseconds (rounded), or null. */
export function timestampMs(ms: number | null): SqlLiteral {
  if (ms === null) return SqlLiteral.of("null::timestamptz");
  const iso = new Date(Math.round(ms)).toISOString(); // throws on a non-finite time
  return SqlLiteral.of(`'${iso}'::timestamptz`);
}

/** The statement text of a template whose every value is a {@link SqlLiteral}. */
export function inlineSql(strings: TemplateStringsArray, ...values: SqlLiteral[]): string {
  let out = strings[0]!;
  values.forEach((value, i) => {
    if (!(value instanceof SqlLiteral)) {
      throw new TypeError("inlineSql: every value must be built by text(), int()...");
    }
    out += value.sql + strings[i + 1]!;
  });
  return out;
}
