/**
 * The same model-based test against RedisStore on a real redis-server (TCP): fewer runs, real
 * (short) times, claims forced by the commands, drained by force. The model accepts either
 * outcome only where a deadline falls between its before/after clock readings.
 */
import fc from "fast-check";
import { afterAll, beforeAll, it } from "vitest";
import type { BufferSettings } from "../../src/core/config.ts";
import { createTcpClient, type TcpRedisClient } from "../../src/redis/tcp-client.ts";
import { RedisStore } from "../../src/store/redis-store.ts";
import { type RedisServer, startRedisServer, testPrefix } from "../harness/redis-server.ts";
import { drainAndCheck, modelCommands, type ModelOptions, StoreModel } from "./store-model.ts";

const sweepIntervalMs = 30;
const baseSettings: Omit<BufferSettings, "keyPrefix"> = {
  partitions: 2,
  windowMs: 40,
  graceMs: 20,
  maxWaitMs: 150,
  maxMessages: 4,
  maxBytes: 600,
  // Real time is not under the model's control here, so TTL expiry is left to the MemoryStore
  // run (which sits exactly on the config bound); this one checks the scripts' logic.
  timerTtlMs: 200,
  processedTtlMs: 200,
  lockTtlMs: 100,
  dedupTtlMs: 400,
  retryMaxAttempts: 3,
  retryMaxAgeMs: 60_000,
  logPii: false,
};

let server: RedisServer;
let client: TcpRedisClient;

beforeAll(async () => {
  server = await startRedisServer();
  client = createTcpClient({ url: server.url });
});

afterAll(async () => {
  await client?.close();
  await server?.stop();
});

it("RedisStore follows the buffer state machine model (30 runs, real redis-server)", async () => {
  const optionsFor = (keyPrefix: string): ModelOptions => ({
    settings: { ...baseSettings, keyPrefix },
    sweepIntervalMs,
    conversations: ["support:1", "{a}:b c", "ü:🙂"],
    forceOnly: true,
    maxAdvanceSteps: 1,
    quietGapMs: 450,
    partitionChange: true,
    maxDelayMs: 80,
    drain: "force",
  });
  await fc.assert(
    fc.asyncProperty(
      modelCommands(optionsFor("unused"), 30),
      fc.boolean(),
      async (commands, requeueDead) => {
        // A fresh key prefix per run: runs (and shrinking replays) never see each other's keys.
        const options = optionsFor(testPrefix("model"));
        const store = new RedisStore({ client, settings: options.settings });
        const model = new StoreModel(options);
        const real = {
          store,
          advance: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
          otherPartitions: () =>
            new RedisStore({
              client: createTcpClient({ url: server.url }),
              settings: { ...options.settings, partitions: options.settings.partitions + 1 },
            }),
        };
        await fc.asyncModelRun(() => ({ model, real }), commands);
        await drainAndCheck(model, real, requeueDead);
      },
    ),
    { numRuns: 30 },
  );
});
