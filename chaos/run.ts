/**
 * `npm run chaos`: the race scenario (test/race/scenario.ts) while things die.
 *
 * - redis-server is SIGKILLed and restarted on the same port, several times. It runs with
 *   `appendfsync always`, the durability a deployment needs for DESIGN.md's "nothing is
 *   answered 2xx unless durably buffered": an append Redis answered survives the kill.
 *   Appends that fail during an outage are retried the way a provider retries a 503.
 * - Flushers crash mid-delivery: while the processor call is in flight, or right after the
 *   processor answered and before the ack. The flusher stops talking to Redis for good and its
 *   in-flight calls are cut. Its lease lapses, a sweep reaps it, and another flusher delivers
 *   the same batchId again (at-least-once; an idempotent processor answers "done").
 * - Flushers stall (store calls held back 1.5 s, longer than the 600 ms lease): their batches
 *   are taken over, and when they wake their extend/ack must find the lock lost and not ack.
 *
 * Bounded (about half a minute), prints the accounting, exits 1 if anything was lost,
 * duplicated, reordered, delivered concurrently or left undrained. Not part of `npm test`.
 *
 * Options (env): CHAOS_SEED, CHAOS_ROUNDS (chaos rounds, default 9).
 */
import process from "node:process";
import { startRedisServer } from "../test/harness/redis-server.ts";
import { formatAccounting, runScenario } from "../test/race/scenario.ts";

async function main(): Promise<number> {
  const seed = Number(process.env.CHAOS_SEED ?? Date.now() % 2 ** 31);
  const rounds = Number(process.env.CHAOS_ROUNDS ?? 9);
  // fsync-always AOF: an append Redis answered survives the SIGKILL, as a deployment needs.
  const redis = await startRedisServer({
    args: ["--appendonly", "yes", "--appendfsync", "always"],
  });
  const stopOnSignal = () => {
    void redis.stop().finally(() => process.exit(130));
  };
  process.once("SIGINT", stopOnSignal);
  process.once("SIGTERM", stopOnSignal);

  const say = (line: string) => console.log(`[chaos +${Date.now() - t0} ms] ${line}`);
  const t0 = Date.now();
  let outages = 0;
  let crashes = 0;
  let freezes = 0;
  try {
    say(`redis-server on ${redis.url} (appendfsync always), seed ${seed}`);
    const books = await runScenario({
      redisUrl: redis.url,
      prefix: `chaos${seed}`,
      seed,
      appenders: 50,
      conversations: 20,
      messagesPerAppender: 120,
      // Slow enough that the appenders are still sending through every kill round.
      appendPauseMs: 100,
      flushers: 4,
      redisTimeoutMs: 500,
      retryFailedAppends: true,
      drainTimeoutMs: 25_000,
      log: say,
      chaos: async (ctl) => {
        for (let round = 0; round < rounds; round++) {
          await ctl.sleep(300 + ctl.random() * 500);
          if (round % 3 === 0) {
            const at = round % 2 === 0 ? "answer" : "call";
            const crashed = await ctl.crashFlusherMidDelivery(at, 2000);
            if (crashed) crashes++;
            else say("no delivery to crash in time");
          } else if (round % 3 === 1) {
            const downMs = 200 + Math.floor(ctl.random() * 600);
            say(`killing redis-server for ${downMs} ms`);
            await redis.kill();
            outages++;
            await ctl.sleep(downMs);
            const restartAt = Date.now();
            await redis.start();
            say(`redis-server is back (restart took ${Date.now() - restartAt} ms)`);
          } else {
            // Longer than the lease (600 ms): its batches are taken over while it is stalled.
            await ctl.freezeFlusher(1500);
            freezes++;
          }
        }
        // One more crash while the backlog drains, so a lease is reaped after the last outage.
        if (await ctl.crashFlusherMidDelivery("answer", 2000)) crashes++;
      },
    });
    console.log(
      `\nchaos accounting (${outages} redis outages, ${crashes} flusher crashes, ` +
        `${freezes} flusher stalls)`,
    );
    console.log(formatAccounting(books));
    const failures = [
      books.lost.length > 0 && `${books.lost.length} messages LOST: ${books.lost.slice(0, 10)}`,
      books.duplicated.length > 0 &&
      `${books.duplicated.length} messages in two batches: ${books.duplicated.slice(0, 10)}`,
      books.duplicatesBuffered > 0 && `${books.duplicatesBuffered} redelivered webhooks buffered`,
      books.orderViolations.length > 0 && `order: ${books.orderViolations.slice(0, 5)}`,
      books.fenceViolations.length > 0 && `fences: ${books.fenceViolations.slice(0, 5)}`,
      books.concurrentDeliveries > 0 && `${books.concurrentDeliveries} concurrent deliveries`,
      books.undrained.length > 0 && `undrained: ${books.undrained.join(", ")}`,
    ].filter((f): f is string => typeof f === "string");
    if (failures.length > 0) {
      console.error(`\nCHAOS FAILED (seed ${seed}):\n  ${failures.join("\n  ")}`);
      return 1;
    }
    console.log(`\nchaos passed: nothing lost, nothing duplicated (seed ${seed})`);
    return 0;
  } finally {
    await redis.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error("chaos run crashed:", error);
    process.exit(2);
  },
);
