/**
 * Values written into a statement's text (src/core/inline-sql.ts), on a real PostgreSQL: every
 * text comes back byte for byte, whatever the session's string settings, nothing outside the
 * constructors gets in, and a statement built this way goes in one round trip.
 */
import { type AddressInfo, connect, createServer } from "node:net";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  inlineSql,
  int,
  type SqlLiteral,
  text,
  textArray,
  timestampMs,
} from "../../src/core/inline-sql.ts";
import { type PostgresServer, startPostgresServer } from "../harness/postgres-server.ts";

let pg: PostgresServer;
let sql: postgres.Sql;

beforeAll(async () => {
  pg = await startPostgresServer();
  sql = postgres(pg.url, { prepare: false, max: 1, onnotice: () => {} });
});

afterAll(async () => {
  await sql?.end({ timeout: 1 });
  await pg?.stop();
});

const awkward = [
  "",
  "plain",
  "it's",
  "'; drop table lull.outbox; --",
  "back\\slash \\' \\\\",
  "$$ $tag$ dollar $",
  "ünïcødé 会話 🍕",
  "tab\tnew\nline\r",
  "E'x'",
  "a".repeat(5000),
];

describe("inline SQL", () => {
  it("a text comes back as it went in, with standard_conforming_strings on or off", async () => {
    for (const conforming of ["on", "off"]) {
      const rows = await sql.begin(async (tx) => {
        await tx.unsafe(`set local standard_conforming_strings = ${conforming}`);
        await tx.unsafe("set local escape_string_warning = off");
        return await tx.unsafe(
          inlineSql`select unnest(${textArray(awkward)}) as v, ${text(awkward[3]!)} as one`,
        );
      });
      expect(rows.map((r) => r.v)).toEqual(awkward);
      expect(rows[0]!.one).toBe(awkward[3]);
    }
  });

  it("integers and times round-trip exactly; null times are null", async () => {
    const at = Date.UTC(2026, 11, 4, 21, 7, 9, 123);
    const [row] = await sql.unsafe(
      inlineSql`select ${int(7)}::int as p, ${int("9007199254740993")}::bigint as e, ${
        int(-3)
      }::int as n, extract(epoch from ${timestampMs(at)}) * 1000 as t, ${
        timestampMs(null)
      } as none`,
    );
    expect(row).toMatchObject({ p: 7, e: "9007199254740993", n: -3, none: null });
    expect(Number(row!.t)).toBe(at);
    const [empty] = await sql.unsafe(
      inlineSql`select cardinality(${textArray([])}) as n, 'x' = any(${textArray([])}) as hit`,
    );
    expect(empty).toMatchObject({ n: 0, hit: false });
  });

  it("refuses anything not built by its constructors", () => {
    const raw = "1); drop table x; --" as unknown as SqlLiteral;
    expect(() => inlineSql`select ${raw}`).toThrow(TypeError);
    expect(() => inlineSql`select ${{ sql: "1" } as unknown as SqlLiteral}`).toThrow(TypeError);
    for (const bad of [1.5, Number.NaN, 2 ** 60, "1; select 2", "12a", ""]) {
      expect(() => int(bad)).toThrow(TypeError);
    }
    expect(() => timestampMs(Number.POSITIVE_INFINITY)).toThrow();
    expect(() => text(5 as unknown as string)).toThrow(TypeError);
  });

  it("a text holds nothing of the value but hex digits", () => {
    const built = inlineSql`select ${text("it's $$ \\ 🍕")}`;
    expect(built).toBe(
      "select convert_from(decode('69742773202424205c20f09f8d95', 'hex'), 'UTF8')",
    );
  });

  it("a statement with its values inlined goes in one round trip, one with parameters in two", async () => {
    // A proxy counts the client's turns: data from the client after the server last spoke.
    let turns = 0;
    let serverSpoke = true;
    const proxy = createServer((client) => {
      const server = connect(pg.port, "127.0.0.1");
      client.on("data", (chunk) => {
        if (serverSpoke) turns++;
        serverSpoke = false;
        server.write(chunk);
      });
      server.on("data", (chunk) => {
        serverSpoke = true;
        client.write(chunk);
      });
      client.on("close", () => server.destroy());
      server.on("close", () => client.destroy());
      client.on("error", () => {});
      server.on("error", () => {});
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    const { port } = proxy.address() as AddressInfo;
    const url = new URL(pg.url);
    url.port = String(port);
    const viaProxy = postgres(url.toString(), { prepare: false, max: 1, onnotice: () => {} });
    try {
      await viaProxy`select 1`; // connected
      const count = async (run: () => Promise<unknown>) => {
        const before = turns;
        await run();
        return turns - before;
      };
      const conversation = "whatsapp:15550001111";
      expect(await count(() => viaProxy`select ${conversation}::text as v`)).toBe(2);
      expect(await count(() => viaProxy.unsafe(inlineSql`select ${text(conversation)} as v`)))
        .toBe(1);
    } finally {
      await viaProxy.end({ timeout: 1 });
      await new Promise((r) => proxy.close(r));
    }
  });
});
