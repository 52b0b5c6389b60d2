/**
 * The concurrency race on a real redis-server: 50 appenders over 20 conversations, 4 flushers
 * sweeping in loops and following timers, a processor that fails, throws, stalls past the
 * delivery timeout and supersedes at random. The books must balance exactly: see
 * test/race/scenario.ts for what is counted and how.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RedisServer, startRedisServer, testPrefix } from "../harness/redis-server.ts";
import { formatAccounting, runScenario } from "./scenario.ts";

let server: RedisServer;

beforeAll(async () => {
  server = await startRedisServer();
});

afterAll(async () => {
  await server?.stop();
});

describe("race: concurrent appenders and flushers on real Redis", () => {
  it("loses nothing, duplicates nothing, keeps order and per-conversation exclusivity", async () => {
    const seed = Date.now() % 2 ** 31;
    const books = await runScenario({
      redisUrl: server.url,
      prefix: testPrefix("race"),
      seed,
      appenders: 50,
      conversations: 20,
      messagesPerAppender: 60,
      appendPauseMs: 30,
      flushers: 4,
      drainTimeoutMs: 10_000,
    });
    console.log(`race accounting\n${formatAccounting(books)}`);

    // The scenario really exercised what it claims to.
    expect(books.accepted).toBeGreaterThanOrEqual(50 * 60 * 0.9);
    expect(books.failedCalls).toBeGreaterThan(0);
    expect(books.batches).toBeGreaterThan(20);
    expect(books.duplicatesAnswered).toBeGreaterThan(0);

    expect(books.undrained).toEqual([]);
    expect(books.appendErrors).toBe(0);
    expect(books.lost).toEqual([]);
    expect(books.duplicated).toEqual([]);
    expect(books.unexpected).toEqual([]);
    expect(books.duplicatesBuffered).toBe(0);
    expect(books.orderViolations).toEqual([]);
    expect(books.fenceViolations).toEqual([]);
    expect(books.concurrentDeliveries).toBe(0);
    expect(books.deadMessages).toBe(0);
    expect(books.deliveredMessages).toBe(books.accepted);
  });
});
