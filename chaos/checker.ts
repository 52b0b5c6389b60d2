/**
 * The chaos accounting, by message id. Pure: it takes what the senders, the processor and the
 * DLQ recorded and returns every violation of DESIGN.md's guarantees it can see, by class, with
 * examples. test/chaos/checker.test.ts shows each class is caught.
 */

/** One message as the senders saw it. */
export interface SentMessage {
  /** The id lull sees (generic id, WhatsApp wamid, Telegram update_id). */
  id: string;
  /** The sender's conversation (for provider routes lull derives its own key). */
  conversation: string;
  /** Answered 2xx (at least once). */
  acked: boolean;
  /** Position among the conversation's acknowledged messages (one client sends it in order). */
  ackSeq?: number;
  /** ms (chaos clock) of the first 2xx. */
  ackAt?: number;
  /** The 2xx said the message was delivered directly (`degraded` in the answer). */
  degradedAck?: boolean;
}

/** One delivery attempt as the processor saw it. */
export interface DeliveryRecord {
  /** ms (chaos clock) the request arrived. */
  at: number;
  /** ms the exchange ended: answer sent or connection closed. Undefined = still open. */
  endAt?: number;
  isolate: string;
  batchId: string;
  conversation: string;
  fence: number;
  attempt: number;
  degraded: boolean;
  reason: string;
  ids: string[];
  /** What the processor answered: a status, `hang` (held past the timeout) or `reset`. */
  answer: number | "hang" | "reset";
  /** Bad signature, Idempotency-Key other than batchId, X-Lull-Fence other than fence. */
  problems?: string[];
}

/** One dead letter read back after the drain. */
export interface DeadLetterRecord {
  batchId: string;
  conversation: string;
  fence: number;
  attempts: number;
  ids: string[];
  lastError: string;
}

/** A webhook sent again (same ids) after it had been acknowledged. */
export interface RedeliveryRecord {
  ids: string[];
  conversation: string;
  status: number | "error";
  /** From the 2xx body: how many of the ids it buffered anew (should be 0). */
  accepted: number;
  duplicates: number;
  /**
   * Of `accepted`, how many went to the durable outbox (Redis down). The outbox cannot tell a
   * redelivery of a message Redis holds; its replay does (dedup), so such an answer is not a
   * second buffering: `twoBatchIds` is what would show one.
   */
  outboxed?: number;
}

/** Everything the checker reads. */
export interface CheckInput {
  messages: SentMessage[];
  deliveries: DeliveryRecord[];
  deadLetters: DeadLetterRecord[];
  redeliveries: RedeliveryRecord[];
  maxMessages: number;
}

/** The violation classes, each a broken guarantee. */
export const violationClasses = [
  "lost",
  "twoBatchIds",
  "degradedAlsoBatched",
  "duplicateInBatch",
  "order",
  "fence",
  "batchChanged",
  "oversizedBatch",
  "unknownMessage",
  "redeliveryBuffered",
  "redeliveryBufferedAfterDegraded",
  "concurrentDelivery",
  "badDelivery",
] as const;

/** One violation class. */
export type ViolationClass = (typeof violationClasses)[number];

/** What the checker found. */
export interface CheckResult {
  ok: boolean;
  violations: Record<ViolationClass, number>;
  /** Up to 20 examples per class (message ids, batches, fences). */
  examples: Record<ViolationClass, unknown[]>;
  /** Every lost message (for the run's explanation of when they were lost). */
  lostMessages: SentMessage[];
  counts: {
    messagesPlanned: number;
    messagesAcked: number;
    ackedDegraded: number;
    ackedDelivered: number;
    ackedDeadLettered: number;
    deliveredNotAcked: number;
    deliveries: number;
    deliveriesAccepted: number;
    batchesDelivered: number;
    degradedDeliveries: number;
    degradedBatchesAccepted: number;
    deadLetters: number;
    deadLetteredMessages: number;
    /** Lost messages no batch attempt ever carried (the buffer was never claimed; failed
     * degraded attempts do not count). */
    lostNeverAttempted: number;
    /** Lost messages carried by failed attempts only (the batch vanished afterwards). */
    lostAfterFailedAttempts: number;
    redeliveries: number;
    /** Redeliveries the outbox took while Redis was down (deduplicated at replay). */
    redeliveriesThroughOutbox: number;
    conversationsWithFenceGoingBack: number;
    twoBatchIdsInvolvingDegraded: number;
    twoBatchIdsInvolvingDlq: number;
    /** Overlapping deliveries of one conversation where one is degraded (not a violation). */
    concurrentWithDegraded: number;
  };
}

const EXAMPLES = 20;

const isAccepted = (d: DeliveryRecord) => typeof d.answer === "number" && d.answer < 300;

/** Runs every check. */
export function check(input: CheckInput): CheckResult {
  const violations = Object.fromEntries(violationClasses.map((c) => [c, 0])) as Record<
    ViolationClass,
    number
  >;
  const examples = Object.fromEntries(violationClasses.map((c) => [c, [] as unknown[]])) as Record<
    ViolationClass,
    unknown[]
  >;
  const flag = (c: ViolationClass, example: unknown) => {
    violations[c]++;
    if (examples[c].length < EXAMPLES) examples[c].push(example);
  };

  const sent = new Map(input.messages.map((m) => [m.id, m]));
  const accepted = input.deliveries.filter(isAccepted);

  // Which batches hold each message: accepted deliveries and dead letters.
  const batchesOf = new Map<string, Set<string>>();
  const addBatch = (id: string, batchId: string) => {
    let s = batchesOf.get(id);
    if (!s) batchesOf.set(id, s = new Set());
    s.add(batchId);
  };
  const degradedBatch = new Set<string>();
  const dlqBatch = new Set(input.deadLetters.map((d) => d.batchId));
  const deliveredIds = new Set<string>();
  for (const d of accepted) {
    if (d.degraded) degradedBatch.add(d.batchId);
    for (const id of d.ids) {
      addBatch(id, d.batchId);
      deliveredIds.add(id);
    }
  }
  const deadIds = new Set<string>();
  for (const d of input.deadLetters) {
    for (const id of d.ids) {
      addBatch(id, d.batchId);
      deadIds.add(id);
    }
  }

  // How many delivery attempts carried each message (accepted or not): tells a buffer that was
  // never claimed (expired, orphaned) from a batch that was attempted and then vanished.
  const attemptsOf = new Map<string, number>();
  const degradedAttemptsOf = new Map<string, number>();
  for (const d of input.deliveries) {
    const into = d.degraded ? degradedAttemptsOf : attemptsOf;
    for (const id of d.ids) into.set(id, (into.get(id) ?? 0) + 1);
  }
  let lostNeverAttempted = 0;
  const lostMessages: SentMessage[] = [];
  // Every 2xx message delivered or dead-lettered.
  let ackedDelivered = 0;
  let ackedDead = 0;
  for (const m of input.messages) {
    if (!m.acked) continue;
    const delivered = deliveredIds.has(m.id);
    const dead = deadIds.has(m.id);
    if (delivered) ackedDelivered++;
    if (dead) ackedDead++;
    if (!delivered && !dead) {
      const attempts = attemptsOf.get(m.id) ?? 0;
      if (attempts === 0) lostNeverAttempted++;
      lostMessages.push(m);
      flag("lost", {
        id: m.id,
        conversation: m.conversation,
        ackAt: m.ackAt,
        degradedAck: m.degradedAck === true,
        deliveryAttempts: attempts,
        degradedAttempts: degradedAttemptsOf.get(m.id) ?? 0,
      });
    }
  }
  let deliveredNotAcked = 0;
  for (const id of deliveredIds) {
    const m = sent.get(id);
    if (!m) flag("unknownMessage", { id });
    else if (!m.acked) deliveredNotAcked++;
  }

  // A message never in two batchIds.
  let withDegraded = 0;
  let withDlq = 0;
  for (const [id, batches] of batchesOf) {
    if (batches.size < 2) continue;
    const list = [...batches];
    const degraded = list.some((b) => degradedBatch.has(b));
    const dlq = list.some((b) => dlqBatch.has(b));
    if (degraded) withDegraded++;
    if (dlq) withDlq++;
    // Through the degraded path (Redis down, no outbox) it is the same broken guarantee, but a
    // different mechanism: counted apart.
    flag(degraded ? "degradedAlsoBatched" : "twoBatchIds", { id, batchIds: list, degraded, dlq });
  }

  for (const d of input.deliveries) {
    if (d.problems && d.problems.length > 0) {
      flag("badDelivery", { batchId: d.batchId, problems: d.problems });
    }
  }

  // Per batch: no id twice, same content and fence on every attempt, MAX_MESSAGES kept.
  const firstOf = new Map<string, DeliveryRecord>();
  for (const d of input.deliveries) {
    const first = firstOf.get(d.batchId);
    if (!first) {
      firstOf.set(d.batchId, d);
      if (new Set(d.ids).size !== d.ids.length) {
        flag("duplicateInBatch", { batchId: d.batchId, ids: d.ids });
      }
      if (d.ids.length > input.maxMessages) {
        flag("oversizedBatch", {
          batchId: d.batchId,
          conversation: d.conversation,
          size: d.ids.length,
          maxMessages: input.maxMessages,
        });
      }
    } else if (first.fence !== d.fence || first.ids.join(",") !== d.ids.join(",")) {
      flag("batchChanged", {
        batchId: d.batchId,
        first: { fence: first.fence, ids: first.ids },
        later: { fence: d.fence, ids: d.ids },
      });
    }
  }

  // Per conversation: fences strictly increase across batches (in the order the processor first
  // saw them), acknowledged messages come out in acknowledgement order, never two at a time.
  const byConversation = new Map<string, DeliveryRecord[]>();
  for (const d of input.deliveries) {
    let list = byConversation.get(d.conversation);
    if (!list) byConversation.set(d.conversation, list = []);
    list.push(d);
  }
  const acceptedBatches = new Set(accepted.map((d) => d.batchId));
  // Grouped by the conversation key lull gave the message (provider routes build their own).
  const lullConversation = new Map<string, string>();
  const degradedIds = new Set<string>();
  for (const d of input.deliveries) {
    for (const id of d.ids) if (!lullConversation.has(id)) lullConversation.set(id, d.conversation);
  }
  for (const d of accepted) if (d.degraded) { for (const id of d.ids) degradedIds.add(id); }
  const ackedBy = new Map<string, SentMessage[]>();
  for (const m of input.messages) {
    if (!m.acked || m.ackSeq === undefined) continue;
    const key = lullConversation.get(m.id) ?? m.conversation;
    let list = ackedBy.get(key);
    if (!list) ackedBy.set(key, list = []);
    list.push(m);
  }
  const fenceConversations = new Set<string>();
  let concurrentWithDegraded = 0;
  for (const [conversation, list] of byConversation) {
    list.sort((a, b) => a.at - b.at);
    let openUntil = -Infinity;
    let openBatch = "";
    let openDegraded = false;
    for (const d of list) {
      if (d.at < openUntil) {
        // Degraded deliveries bypass the conversation lock by nature (no Redis): counted apart.
        if (d.degraded || openDegraded) concurrentWithDegraded++;
        else {
          flag("concurrentDelivery", {
            conversation,
            batchId: d.batchId,
            overlapping: openBatch,
            sameBatch: d.batchId === openBatch,
          });
        }
      }
      const end = d.endAt ?? Infinity;
      if (end > openUntil) {
        openUntil = end;
        openBatch = d.batchId;
        openDegraded = d.degraded;
      }
    }
    // First attempt of each normal (non-degraded) batch, in arrival order.
    const batches: DeliveryRecord[] = [];
    const seen = new Set<string>();
    for (const d of list) {
      if (d.degraded || seen.has(d.batchId)) continue;
      seen.add(d.batchId);
      batches.push(d);
    }
    for (let i = 1; i < batches.length; i++) {
      const prev = batches[i - 1]!;
      const cur = batches[i]!;
      if (cur.fence <= prev.fence) {
        fenceConversations.add(conversation);
        flag("fence", {
          conversation,
          previous: { batchId: prev.batchId, fence: prev.fence, at: prev.at },
          next: { batchId: cur.batchId, fence: cur.fence, at: cur.at },
          gapMs: cur.at - prev.at,
        });
      }
    }
    // Order: positions of first delivery (accepted, non-degraded batches, in first-seen order).
    const position = new Map<string, number>();
    let pos = 0;
    for (const b of batches) {
      if (!acceptedBatches.has(b.batchId)) continue;
      for (const id of b.ids) if (!position.has(id)) position.set(id, pos++);
    }
    const ackedHere = (ackedBy.get(conversation) ?? []).sort((a, b) => a.ackSeq! - b.ackSeq!);
    let last: SentMessage | undefined;
    for (const m of ackedHere) {
      const p = position.get(m.id);
      // A message acknowledged through the degraded path was delivered out of band; a later
      // buffered copy of it is a twoBatchIds violation, not an order one.
      if (p === undefined || m.degradedAck || degradedIds.has(m.id)) continue;
      if (last && p < position.get(last.id)!) {
        flag("order", { conversation, before: last.id, after: m.id, deliveredFirst: m.id });
      }
      last = m;
    }
  }

  // Redelivered webhooks are buffered once.
  for (const r of input.redeliveries) {
    if (typeof r.status === "number" && r.status < 300 && r.accepted > (r.outboxed ?? 0)) {
      const afterDegraded = r.ids.some((id) => sent.get(id)?.degradedAck || degradedIds.has(id));
      flag(afterDegraded ? "redeliveryBufferedAfterDegraded" : "redeliveryBuffered", r);
    }
  }

  const total = Object.values(violations).reduce((a, b) => a + b, 0);
  return {
    ok: total === 0,
    violations,
    examples,
    lostMessages,
    counts: {
      messagesPlanned: input.messages.length,
      messagesAcked: input.messages.filter((m) => m.acked).length,
      ackedDegraded: input.messages.filter((m) => m.acked && m.degradedAck).length,
      ackedDelivered,
      ackedDeadLettered: ackedDead,
      deliveredNotAcked,
      deliveries: input.deliveries.length,
      deliveriesAccepted: accepted.length,
      batchesDelivered: new Set(accepted.map((d) => d.batchId)).size,
      degradedDeliveries: input.deliveries.filter((d) => d.degraded).length,
      degradedBatchesAccepted: degradedBatch.size,
      deadLetters: input.deadLetters.length,
      deadLetteredMessages: deadIds.size,
      lostNeverAttempted,
      lostAfterFailedAttempts: violations.lost - lostNeverAttempted,
      redeliveries: input.redeliveries.length,
      redeliveriesThroughOutbox: input.redeliveries.filter((r) => (r.outboxed ?? 0) > 0).length,
      conversationsWithFenceGoingBack: fenceConversations.size,
      twoBatchIdsInvolvingDegraded: withDegraded,
      twoBatchIdsInvolvingDlq: withDlq,
      concurrentWithDegraded,
    },
  };
}
