/**
 * Compatibility of the local Upstash REST gateway: the REAL `@upstash/redis` client talks to it,
 * and every reply is compared with the same commands sent over TCP (ioredis) to the same
 * redis-server. Each scenario runs twice on fresh keys: once over TCP, once over REST, with and
 * without `Upstash-Encoding: base64`.
 */
import { Redis as UpstashRedis } from "@upstash/redis";
import IORedis from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startUpstashGateway, type UpstashGateway } from "../../src/dev/upstash-gateway.ts";
import { type RedisServer, startRedisServer, testPrefix } from "../harness/redis-server.ts";

const TOKEN = "compat-token";

let server: RedisServer;
let gateway: UpstashGateway;
let tcp: IORedis;

beforeAll(async () => {
  server = await startRedisServer();
  gateway = await startUpstashGateway({ redisUrl: server.url, token: TOKEN });
  tcp = new IORedis(server.url, { maxRetriesPerRequest: 1 });
});

afterAll(async () => {
  tcp?.disconnect();
  await gateway?.close();
  await server?.stop();
});

/** `{p}` in any argument is replaced with the run's key prefix. */
type Cmd = (string | number)[];

const BIG = "x".repeat(750 * 1024) + "é😀".repeat(50 * 1024); // 1.03 MiB of UTF-8
const SCRIPT = "return {1, 'two', {KEYS[1], ARGV[1]}, redis.status_reply('OK'), false, 2.9}";

/** Scenarios: each is a sequence of raw commands whose replies are compared one by one. */
const scenarios: Record<string, Cmd[]> = {
  "strings": [
    ["SET", "{p}s", "hello"],
    ["GET", "{p}s"],
    ["SET", "{p}s", "v2", "NX"],
    ["SET", "{p}s", "v3", "XX", "GET"],
    ["APPEND", "{p}s", "-tail"],
    ["STRLEN", "{p}s"],
    ["GETRANGE", "{p}s", 0, 3],
    ["SETRANGE", "{p}s", 1, "ZZ"],
    ["MSET", "{p}a", "1", "{p}b", "2"],
    ["MGET", "{p}a", "{p}b", "{p}missing"],
    ["INCR", "{p}a"],
    ["INCRBY", "{p}a", 10],
    ["DECR", "{p}a"],
    ["INCRBYFLOAT", "{p}b", "1.5"],
    ["GETDEL", "{p}b"],
    ["SET", "{p}n", '{"looks":"like json"}'],
    ["GET", "{p}n"],
    ["SET", "{p}num", "007"],
    ["GET", "{p}num"],
    ["EXISTS", "{p}a", "{p}b", "{p}s"],
    ["TYPE", "{p}a"],
    ["EXPIRE", "{p}a", 1000],
    ["PERSIST", "{p}a"],
    ["TTL", "{p}a"],
    ["RENAME", "{p}a", "{p}a2"],
    ["DEL", "{p}a2", "{p}s", "{p}nothing"],
    ["PING"],
    ["ECHO", "echo me"],
  ],
  "hashes": [
    ["HSET", "{p}h", "f1", "v1", "f2", "2"],
    ["HGET", "{p}h", "f1"],
    ["HMGET", "{p}h", "f1", "nope", "f2"],
    ["HGETALL", "{p}h"],
    ["HINCRBY", "{p}h", "f2", 5],
    ["HINCRBYFLOAT", "{p}h", "f2", "0.25"],
    ["HSETNX", "{p}h", "f1", "other"],
    ["HEXISTS", "{p}h", "f1"],
    ["HLEN", "{p}h"],
    ["HKEYS", "{p}h"],
    ["HVALS", "{p}h"],
    ["HDEL", "{p}h", "f1", "nope"],
    ["HGETALL", "{p}h-missing"],
  ],
  "lists": [
    ["RPUSH", "{p}l", "a", "b", "c", "d"],
    ["LPUSH", "{p}l", "z"],
    ["LRANGE", "{p}l", 0, -1],
    ["LLEN", "{p}l"],
    ["LINDEX", "{p}l", 2],
    ["LSET", "{p}l", 0, "y"],
    ["LPOS", "{p}l", "c"],
    ["LREM", "{p}l", 1, "b"],
    ["LPOP", "{p}l"],
    ["RPOP", "{p}l", 2],
    ["LMOVE", "{p}l", "{p}l2", "LEFT", "RIGHT"],
    ["LTRIM", "{p}l2", 0, 0],
    ["LRANGE", "{p}l2", 0, -1],
    ["LPOP", "{p}empty"],
  ],
  "sets": [
    ["SADD", "{p}s1", "a", "b", "c"],
    ["SADD", "{p}s2", "b", "c", "d"],
    ["SISMEMBER", "{p}s1", "a"],
    ["SMISMEMBER", "{p}s1", "a", "d"],
    ["SCARD", "{p}s1"],
    ["SINTER", "{p}s1", "{p}s2"],
    ["SDIFF", "{p}s1", "{p}s2"],
    ["SUNIONSTORE", "{p}s3", "{p}s1", "{p}s2"],
    ["SREM", "{p}s1", "a", "zz"],
    ["SMEMBERS", "{p}s1"],
  ],
  "sorted sets": [
    ["ZADD", "{p}z", 1, "one", 2.5, "two", 3, "three"],
    ["ZSCORE", "{p}z", "two"],
    ["ZINCRBY", "{p}z", "0.25", "one"],
    ["ZRANGE", "{p}z", 0, -1, "WITHSCORES"],
    ["ZRANGE", "{p}z", "(1", "+inf", "BYSCORE", "LIMIT", 0, 1],
    ["ZRANGEBYSCORE", "{p}z", "-inf", 2.6],
    ["ZREVRANGE", "{p}z", 0, 1],
    ["ZRANK", "{p}z", "three"],
    ["ZCARD", "{p}z"],
    ["ZCOUNT", "{p}z", 1, 3],
    ["ZMSCORE", "{p}z", "one", "nope"],
    ["ZPOPMIN", "{p}z"],
    ["ZREM", "{p}z", "three"],
    ["ZSCORE", "{p}z", "nope"],
  ],
  "streams": [
    ["XADD", "{p}x", "1-1", "f", "v1"],
    ["XADD", "{p}x", "2-1", "f", "v2", "g", "w"],
    ["XADD", "{p}x", "MAXLEN", "~", 100, "3-0", "f", "v3"],
    ["XLEN", "{p}x"],
    ["XRANGE", "{p}x", "-", "+"],
    ["XREVRANGE", "{p}x", "+", "-", "COUNT", 1],
    ["XREAD", "COUNT", 2, "STREAMS", "{p}x", "0-0"],
    ["XGROUP", "CREATE", "{p}x", "grp", "0"],
    ["XREADGROUP", "GROUP", "grp", "c1", "COUNT", 2, "STREAMS", "{p}x", ">"],
    ["XACK", "{p}x", "grp", "1-1"],
    ["XPENDING", "{p}x", "grp"],
    ["XDEL", "{p}x", "2-1"],
    ["XTRIM", "{p}x", "MAXLEN", 1],
    ["XRANGE", "{p}x", "-", "+"],
  ],
  "scripts": [
    ["EVAL", SCRIPT, 1, "{p}k", '{"a":1}'],
    ["SCRIPT", "LOAD", SCRIPT],
    ["EVALSHA", "e9fb6e0d9a1f8b6b4bbd1fd6a4b5c1a4b1a2c3d4", 0],
    ["EVAL", "return redis.call('INCRBY', KEYS[1], ARGV[1])", 1, "{p}c", 41],
    ["EVAL", "return redis.error_reply('LULL custom failure')", 0],
    ["EVAL", "return redis.call('GET', KEYS[1])", 1, "{p}nil"],
    ["EVAL", "return {}", 0],
    ["EVAL", "return 'é😀'", 0],
    ["EVAL", "this is not lua", 0],
  ],
  "unicode": [
    ["SET", "{p}ключ-🔑", "مرحبا 你好 😀 \u0000 nul"],
    ["GET", "{p}ключ-🔑"],
    ["HSET", "{p}uh", "名前", "値 ✓"],
    ["HGETALL", "{p}uh"],
    ["RPUSH", "{p}ul", "ä", "👍🏽"],
    ["LRANGE", "{p}ul", 0, -1],
    ["STRLEN", "{p}ключ-🔑"],
  ],
  "1 MB values": [
    ["SET", "{p}big", BIG],
    ["STRLEN", "{p}big"],
    ["GET", "{p}big"],
    ["HSET", "{p}bigh", "f", BIG],
    ["HGET", "{p}bigh", "f"],
  ],
  "errors": [
    ["SET", "{p}str", "x"],
    ["LPUSH", "{p}str", "a"],
    ["INCR", "{p}str"],
    ["HGET", "{p}str", "f"],
    ["NOTACOMMAND", "{p}str"],
    ["GET"],
    ["SET", "{p}str", "x", "EX", "not-a-number"],
  ],
};

/** The EVALSHA of SCRIPT must use its real sha: fill it in from a TCP SCRIPT LOAD. */
async function scenario(name: string): Promise<Cmd[]> {
  const commands = scenarios[name]!;
  if (name !== "scripts") return commands;
  const sha = String(await tcp.call("SCRIPT", "LOAD", SCRIPT));
  return [
    ...commands,
    ["EVALSHA", sha, 1, "{p}k", "via sha"],
  ];
}

const withPrefix = (cmd: Cmd, prefix: string) =>
  cmd.map((a) => (typeof a === "string" ? a.replaceAll("{p}", prefix) : a));

/** Replaces the run's prefix in replies so TCP and REST runs are comparable. */
function normalise(value: unknown, prefix: string): unknown {
  if (typeof value === "string") return value.replaceAll(prefix, "<p>");
  if (Array.isArray(value)) return value.map((v) => normalise(v, prefix));
  return value;
}

/** The Upstash client appends the command to HTTP errors; the server's text is what we compare. */
const errorText = (err: unknown) => {
  const message = (err as Error).message;
  const cut = message.indexOf(", command was: ");
  return cut === -1 ? message : message.slice(0, cut);
};

async function overTcp(commands: Cmd[], prefix: string): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const cmd of commands) {
    const [name, ...args] = withPrefix(cmd, prefix);
    try {
      // Upper-case name: ioredis reshapes some lower-case replies (HGETALL -> object).
      out.push(normalise(await tcp.call(String(name).toUpperCase(), ...args), prefix));
    } catch (err) {
      out.push({ error: normalise(errorText(err), prefix) });
    }
  }
  return out;
}

async function overRest(client: UpstashRedis, commands: Cmd[], prefix: string) {
  const out: unknown[] = [];
  for (const cmd of commands) {
    const [name, ...args] = withPrefix(cmd, prefix);
    try {
      out.push(normalise(await client.exec([String(name), ...args]), prefix));
    } catch (err) {
      out.push({ error: normalise(errorText(err), prefix) });
    }
  }
  return out;
}

const encodings = [
  { label: "base64 response encoding", responseEncoding: "base64" as const },
  { label: "plain JSON responses", responseEncoding: false as const },
];

describe.each(encodings)("raw commands, $label", ({ responseEncoding }) => {
  const raw = () =>
    new UpstashRedis({
      url: gateway.url,
      token: TOKEN,
      responseEncoding,
      automaticDeserialization: false,
      enableTelemetry: false,
      enableAutoPipelining: false,
    });

  for (const name of Object.keys(scenarios)) {
    it(`${name}: same replies as TCP`, async () => {
      const commands = await scenario(name);
      const viaTcp = await overTcp(commands, testPrefix(`tcp-${name}`));
      const viaRest = await overRest(raw(), commands, testPrefix(`rest-${name}`));
      expect(viaRest).toEqual(viaTcp);
      // Guard against a vacuous pass: every scenario yields real replies.
      expect(viaTcp.some((r) => r !== null && !(typeof r === "object" && "error" in r!))).toBe(
        true,
      );
    });
  }

  it("errors come back as the server's text, NOSCRIPT first", async () => {
    const replies = await overRest(raw(), [
      ["EVALSHA", "0".repeat(40), 0],
      ["SET", "{p}w", "x"],
      ["LPUSH", "{p}w", "a"],
      ["NOTACOMMAND"],
    ], testPrefix("errors"));
    expect((replies[0] as { error: string }).error).toMatch(/^NOSCRIPT /);
    expect((replies[2] as { error: string }).error).toMatch(/^WRONGTYPE /);
    expect((replies[3] as { error: string }).error).toMatch(/^ERR unknown command/);
  });

  it("typed client methods (auto-pipelined, the default): JSON, hashes, zsets, streams", async () => {
    const p = testPrefix("typed");
    const client = new UpstashRedis({
      url: gateway.url,
      token: TOKEN,
      responseEncoding,
      enableTelemetry: false,
    });
    await client.set(`${p}:obj`, { name: "Łukasz", n: 3 });
    expect(await client.get(`${p}:obj`)).toEqual({ name: "Łukasz", n: 3 });
    expect(await tcp.get(`${p}:obj`)).toBe('{"name":"Łukasz","n":3}');

    await client.hset(`${p}:h`, { a: "x", b: 2 });
    expect(await client.hgetall(`${p}:h`)).toEqual({ a: "x", b: 2 });

    await client.zadd(`${p}:z`, { score: 1, member: "m1" }, { score: 2, member: "m2" });
    expect(await client.zrange(`${p}:z`, 0, -1, { withScores: true })).toEqual(["m1", 1, "m2", 2]);

    const id = await client.xadd(`${p}:x`, "*", { field: "value 😀" });
    const viaTcp = await tcp.xrange(`${p}:x`, "-", "+");
    expect(viaTcp).toEqual([[id, ["field", "value 😀"]]]);
    expect(await client.xrange(`${p}:x`, "-", "+")).toEqual({ [id]: { field: "value 😀" } });

    expect(await client.incr(`${p}:count`)).toBe(1);
    expect(await client.ttl(`${p}:count`)).toBe(-1);
  });

  it("scripts: SCRIPT LOAD, EVALSHA, EVAL and the NOSCRIPT fallback", async () => {
    const p = testPrefix("scripts");
    const client = new UpstashRedis({
      url: gateway.url,
      token: TOKEN,
      responseEncoding,
      enableTelemetry: false,
      automaticDeserialization: false,
      enableAutoPipelining: false,
    });
    const source = "return redis.call('INCRBY', KEYS[1], ARGV[1])";
    // Auto-pipelining (the default) would prefix errors with "Command failed: ".
    await client.scriptFlush();
    await expect(client.evalsha(await sha1(source), [`${p}:c`], [2])).rejects.toThrow(
      /^NOSCRIPT/,
    );
    const sha = await client.scriptLoad(source);
    expect(sha).toBe(await sha1(source));
    expect(await client.scriptExists(sha)).toEqual([1]);
    expect(await client.evalsha(sha, [`${p}:c`], [2])).toBe(2);
    expect(await client.eval(source, [`${p}:c`], [3])).toBe(5);
    expect(await tcp.get(`${p}:c`)).toBe("5");
  });

  it("pipelines: in order, per-entry results and errors, not atomic", async () => {
    const p = testPrefix("pipe");
    const client = new UpstashRedis({
      url: gateway.url,
      token: TOKEN,
      responseEncoding,
      enableTelemetry: false,
      automaticDeserialization: false,
    });
    const results = await client.pipeline()
      .set(`${p}:a`, "1")
      .incr(`${p}:a`)
      .lpush(`${p}:a`, "oops")
      .get(`${p}:a`)
      .hset(`${p}:h`, { f: "é" })
      .hgetall(`${p}:h`)
      .exec({ keepErrors: true });

    const tcpResults = await tcp.pipeline()
      .set(`${p}:a2`, "1")
      .incr(`${p}:a2`)
      .lpush(`${p}:a2`, "oops")
      .get(`${p}:a2`)
      .hset(`${p}:h2`, { f: "é" })
      .call("HGETALL", `${p}:h2`)
      .exec();

    expect(results.map((r) => r.result ?? null)).toEqual(tcpResults!.map(([, v]) => v ?? null));
    expect(results.map((r) => r.error ?? null)).toEqual(
      tcpResults!.map(([e]) => (e ? e.message : null)),
    );
    expect(results[2]!.error).toMatch(/^WRONGTYPE/);
    // Not atomic: the commands around the failing one ran.
    expect(await tcp.get(`${p}:a`)).toBe("2");
  });

  it("transactions: MULTI/EXEC results, runtime errors per entry, EXECABORT", async () => {
    const p = testPrefix("multi");
    const client = new UpstashRedis({
      url: gateway.url,
      token: TOKEN,
      responseEncoding,
      enableTelemetry: false,
      automaticDeserialization: false,
    });
    const results = await client.multi()
      .set(`${p}:a`, "5")
      .incrby(`${p}:a`, 10)
      .lpush(`${p}:a`, "x")
      .get(`${p}:a`)
      .exec({ keepErrors: true });
    const tcpResults = await tcp.multi()
      .set(`${p}:b`, "5")
      .incrby(`${p}:b`, 10)
      .lpush(`${p}:b`, "x")
      .get(`${p}:b`)
      .exec();
    expect(results.map((r) => r.result ?? null)).toEqual(tcpResults!.map(([, v]) => v ?? null));
    expect(results[2]!.error).toMatch(/^WRONGTYPE/);

    // A command that cannot be queued aborts the whole transaction: nothing runs.
    const aborted = await fetch(`${gateway.url}/multi-exec`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify([["SET", `${p}:c`, "1"], ["NOTACOMMAND"]]),
    });
    expect(aborted.status).toBe(400);
    expect((await aborted.json()).error).toMatch(/^EXECABORT/);
    expect(await tcp.exists(`${p}:c`)).toBe(0);

    // The dedicated connection is clean afterwards (no transaction left open).
    const again = await client.multi().set(`${p}:d`, "1").get(`${p}:d`).exec();
    expect(again).toEqual(["OK", "1"]);
  });

  it("a transaction is isolated from concurrent commands on the shared connection", async () => {
    const p = testPrefix("iso");
    const client = new UpstashRedis({
      url: gateway.url,
      token: TOKEN,
      responseEncoding,
      enableTelemetry: false,
      automaticDeserialization: false,
    });
    await tcp.set(`${p}:n`, "0");
    const work: Promise<unknown>[] = [];
    for (let i = 0; i < 20; i++) {
      work.push(client.multi().incr(`${p}:n`).incr(`${p}:n`).exec());
      work.push(client.incr(`${p}:n`));
    }
    const results = await Promise.all(work);
    // Each transaction's two INCRs are adjacent: the second is the first + 1.
    for (let i = 0; i < results.length; i += 2) {
      const [first, second] = results[i] as [number, number];
      expect(second).toBe(first + 1);
    }
    expect(await tcp.get(`${p}:n`)).toBe("60");
  });
});

async function sha1(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

describe("protocol details", () => {
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${gateway.url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });

  it("without a valid bearer token: 401 with a JSON error, nothing runs", async () => {
    const p = testPrefix("auth");
    const none = await fetch(gateway.url, {
      method: "POST",
      body: JSON.stringify(["SET", `${p}:k`, "1"]),
    });
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ error: expect.any(String) });

    const wrong = await post("/", ["SET", `${p}:k`, "1"], { authorization: "Bearer nope" });
    expect(wrong.status).toBe(401);
    expect(await tcp.exists(`${p}:k`)).toBe(0);

    const client = new UpstashRedis({ url: gateway.url, token: "nope", enableTelemetry: false });
    await expect(client.set(`${p}:k`, "1")).rejects.toThrow(/Unauthorized/);
    expect(await tcp.exists(`${p}:k`)).toBe(0);
  });

  it("accepts the token as ?_token= too", async () => {
    const res = await fetch(`${gateway.url}/?_token=${TOKEN}`, {
      method: "POST",
      body: JSON.stringify(["ECHO", "q"]),
    });
    expect(await res.json()).toEqual({ result: "q" });
  });

  it("base64 encoding: bulk and status strings encoded, numbers and null untouched", async () => {
    const p = testPrefix("b64");
    const b64 = { "upstash-encoding": "base64" };
    expect(await (await post("/", ["SET", `${p}:k`, "héllo"], b64)).json()).toEqual({
      result: Buffer.from("OK").toString("base64"),
    });
    expect(await (await post("/", ["GET", `${p}:k`], b64)).json()).toEqual({
      result: Buffer.from("héllo").toString("base64"),
    });
    expect(await (await post("/", ["STRLEN", `${p}:k`], b64)).json()).toEqual({ result: 6 });
    expect(await (await post("/", ["GET", `${p}:none`], b64)).json()).toEqual({ result: null });
    expect(
      await (await post("/", ["EVAL", "return {1, 'a', {false, 'b'}}", "0"], b64)).json(),
    ).toEqual({ result: [1, "YQ==", [null, "Yg=="]] });
    const err = await post("/", ["LPUSH", `${p}:k`, "x"], b64);
    expect(err.status).toBe(400);
    expect(await err.json()).toEqual({
      error: "WRONGTYPE Operation against a key holding the wrong kind of value",
    });
    const pipe = await post("/pipeline", [["PING"], ["INCR", `${p}:k`]], b64);
    expect(pipe.status).toBe(200);
    expect(await pipe.json()).toEqual([
      { result: "UE9ORw==" },
      { error: "ERR value is not an integer or out of range" },
    ]);
  });

  it("binary-safe: non-UTF-8 bytes round-trip exactly through base64", async () => {
    const p = testPrefix("bin");
    const bytes = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x41, 0xc3, 0x28, 0x0a]);
    await tcp.set(`${p}:bin`, bytes);
    const res = await post("/", ["GET", `${p}:bin`], { "upstash-encoding": "base64" });
    const { result } = await res.json();
    expect(Buffer.from(result, "base64").equals(bytes)).toBe(true);
  });

  it("path-style commands: GET and POST with the body as last argument", async () => {
    const p = testPrefix("path");
    const set = await post(`/set/${encodeURIComponent(`${p}:k`)}`, "value with / and ü");
    expect(await set.json()).toEqual({ result: "OK" });
    const get = await fetch(`${gateway.url}/get/${encodeURIComponent(`${p}:k`)}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(await get.json()).toEqual({ result: "value with / and ü" });
  });

  it("bad requests: invalid JSON, empty command, refused commands", async () => {
    const bad = await post("/", "not json");
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toMatch(/^ERR /);
    const empty = await post("/", []);
    expect(empty.status).toBe(400);
    const nested = await post("/", ["SET", { a: 1 }, "x"]);
    expect(nested.status).toBe(400);
    const subscribe = await post("/", ["SUBSCRIBE", "ch"]);
    expect(subscribe.status).toBe(400);
    expect((await subscribe.json()).error).toMatch(/not supported/);
    // The shared connection is still usable afterwards.
    expect(await (await post("/", ["PING"])).json()).toEqual({ result: "PONG" });
  });

  it("listens on 127.0.0.1 only", () => {
    expect(new URL(gateway.url).hostname).toBe("127.0.0.1");
  });
});

it("covers at least 40 distinct commands, and the 1 MB value is over 1 MiB", () => {
  expect(new TextEncoder().encode(BIG).length).toBeGreaterThan(1024 * 1024);
  const names = new Set(
    Object.values(scenarios).flat().map((cmd) => String(cmd[0]).toUpperCase()),
  );
  expect(names.size).toBeGreaterThanOrEqual(40);
});
