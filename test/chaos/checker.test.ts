/**
 * The chaos checker (chaos/checker.ts) on hand-made records: a clean run passes, and each
 * violation class is caught on its own. (The chaos run itself, `npm run chaos`, is not part of
 * `npm test`.)
 */
import { describe, expect, it } from "vitest";
import {
  check,
  type CheckInput,
  type DeliveryRecord,
  type SentMessage,
  violationClasses,
} from "../../chaos/checker.ts";

const conv = "chaos:1:c0";

function acked(ids: string[], conversation = conv): SentMessage[] {
  return ids.map((id, i) => ({ id, conversation, acked: true, ackSeq: i, ackAt: i }));
}

function delivery(
  batchId: string,
  fence: number,
  ids: string[],
  at: number,
  extra: Partial<DeliveryRecord> = {},
): DeliveryRecord {
  return {
    at,
    endAt: at + 1,
    isolate: "0.1",
    batchId,
    conversation: conv,
    fence,
    attempt: 1,
    degraded: false,
    reason: "quiet",
    ids,
    answer: 200,
    ...extra,
  };
}

function clean(): CheckInput {
  return {
    messages: acked(["m0", "m1", "m2", "m3"]),
    deliveries: [
      delivery("b1", 1, ["m0"], 10, { answer: 503 }),
      delivery("b1", 1, ["m0"], 20),
      delivery("b2", 2, ["m1", "m2"], 30),
    ],
    deadLetters: [{
      batchId: "b3",
      conversation: conv,
      fence: 3,
      attempts: 5,
      ids: ["m3"],
      lastError: "500",
    }],
    redeliveries: [{ ids: ["m0"], conversation: conv, status: 202, accepted: 0, duplicates: 1 }],
    maxMessages: 8,
  };
}

function only(input: CheckInput) {
  const r = check(input);
  return violationClasses.filter((c) => r.violations[c] > 0);
}

describe("chaos checker", () => {
  it("passes a run where every acknowledged message is delivered or dead, in order", () => {
    const r = check(clean());
    expect(r.ok).toBe(true);
    expect(r.counts.ackedDelivered).toBe(3);
    expect(r.counts.ackedDeadLettered).toBe(1);
    expect(r.counts.batchesDelivered).toBe(2);
  });

  it("finds an acknowledged message that is neither delivered nor dead", () => {
    const input = clean();
    input.messages.push({ id: "m4", conversation: conv, acked: true, ackSeq: 4, ackAt: 4 });
    input.deliveries.push(delivery("b4", 4, ["m4"], 40, { answer: 500 }));
    const r = check(input);
    expect(only(input)).toEqual(["lost"]);
    expect(r.counts.lostAfterFailedAttempts).toBe(1);
    // Not acknowledged and never delivered: not a loss.
    const unacked = clean();
    unacked.messages.push({ id: "m4", conversation: conv, acked: false });
    expect(check(unacked).ok).toBe(true);
  });

  it("finds a message in two batchIds (also degraded + buffered, and delivered + dead)", () => {
    const input = clean();
    input.deliveries.push(delivery("fb_1", 0, ["m1"], 25, { degraded: true }));
    const r = check(input);
    expect(only(input)).toEqual(["degradedAlsoBatched"]);
    expect(r.counts.twoBatchIdsInvolvingDegraded).toBe(1);
    const two = clean();
    two.deliveries.push(delivery("b7", 7, ["m1"], 70));
    expect(only(two)).toEqual(["twoBatchIds"]);
    const dead = clean();
    dead.deadLetters[0]!.ids.push("m2");
    expect(only(dead)).toEqual(["twoBatchIds"]);
  });

  it("finds a fence that goes back, ignoring degraded batches' fence 0", () => {
    const input = clean();
    input.deliveries.push(delivery("b5", 1, ["x"], 50));
    input.messages.push({ id: "x", conversation: conv, acked: false });
    expect(only(input)).toEqual(["fence"]);
    const degraded = clean();
    degraded.messages.push({ id: "y", conversation: conv, acked: true, ackSeq: 9, ackAt: 9 });
    degraded.deliveries.push(delivery("fb_y", 0, ["y"], 50, { degraded: true }));
    expect(check(degraded).ok).toBe(true);
  });

  it("finds messages delivered out of acknowledgement order", () => {
    const input = clean();
    input.deliveries[2] = delivery("b2", 2, ["m2", "m1"], 30);
    expect(only(input)).toEqual(["order"]);
  });

  it("finds a batch whose content or fence changed between attempts", () => {
    const input = clean();
    input.deliveries[0] = delivery("b1", 1, ["m0", "m1"], 10, { answer: 503 });
    expect(only(input)).toContain("batchChanged");
  });

  it("finds an id twice in one batch and a batch over MAX_MESSAGES", () => {
    const input = clean();
    input.deliveries[2] = delivery("b2", 2, ["m1", "m1", "m2"], 30);
    expect(only(input)).toEqual(["duplicateInBatch"]);
    const big = clean();
    big.maxMessages = 1;
    expect(only(big)).toEqual(["oversizedBatch"]);
  });

  it("finds a delivered id nobody sent and a redelivery buffered again", () => {
    const input = clean();
    input.deliveries.push(delivery("b9", 9, ["ghost"], 90));
    expect(only(input)).toEqual(["unknownMessage"]);
    const redelivered = clean();
    redelivered.redeliveries[0]!.accepted = 1;
    expect(only(redelivered)).toEqual(["redeliveryBuffered"]);
    const afterDegraded = clean();
    afterDegraded.redeliveries[0]!.accepted = 1;
    afterDegraded.messages[0]!.degradedAck = true;
    expect(only(afterDegraded)).toEqual(["redeliveryBufferedAfterDegraded"]);
    // Redis down: the outbox took the redelivery (it cannot tell), the replay deduplicates it;
    // delivered once, so no violation (a second batch would be twoBatchIds).
    const outboxed = clean();
    outboxed.redeliveries[0]!.accepted = 1;
    outboxed.redeliveries[0]!.outboxed = 1;
    expect(only(outboxed)).toEqual([]);
    expect(check(outboxed).counts.redeliveriesThroughOutbox).toBe(1);
  });

  it("finds a delivery with a bad signature or headers", () => {
    const input = clean();
    input.deliveries[1]!.problems = ["signature mismatch"];
    expect(only(input)).toEqual(["badDelivery"]);
  });

  it("finds two deliveries of one conversation at the same time", () => {
    const input = clean();
    input.deliveries[2] = delivery("b2", 2, ["m1", "m2"], 30, { endAt: 60 });
    input.messages.push({ id: "z", conversation: conv, acked: false });
    input.deliveries.push(delivery("b6", 6, ["z"], 40));
    expect(only(input)).toEqual(["concurrentDelivery"]);
    // One of them degraded (no Redis, so no lock): counted apart, not a violation.
    const degraded = clean();
    degraded.deliveries[2] = delivery("b2", 2, ["m1", "m2"], 30, { endAt: 60 });
    degraded.messages.push({ id: "z", conversation: conv, acked: false });
    degraded.deliveries.push(delivery("fb_z", 0, ["z"], 40, { degraded: true }));
    const r = check(degraded);
    expect(r.ok).toBe(true);
    expect(r.counts.concurrentWithDegraded).toBe(1);
  });
});
