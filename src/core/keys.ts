/**
 * Every Redis key lull touches is built here. A conversation maps to one of LULL_PARTITIONS
 * partitions; all keys of a partition and of its conversations share the hash tag
 * `{<prefix>:<partition>}`, so every script touches a single hash slot (cluster-safe).
 * Conversation ids are percent-encoded, so `{`, `}`, `:`, spaces and unicode in an id can
 * neither move it to another slot nor collide with another id's keys.
 */

/** FNV-1a 32-bit over UTF-8 bytes: stable across runtimes, cheap, well spread. */
export function fnv1a32(input: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(input)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/** The partition a conversation belongs to. */
export function partitionOf(conversation: string, partitions: number): number {
  return fnv1a32(conversation) % partitions;
}

/** Percent-encodes everything but unreserved URI characters, so ids never contain `{}:` or spaces. */
export function encodeConversation(conversation: string): string {
  return encodeURIComponent(conversation).replace(
    /[!'()*]/g,
    (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase(),
  );
}

/** Keys shared by every conversation in one partition. */
export interface PartitionKeys {
  partition: number;
  /** ZSET conversation -> when next claimable (ms). */
  due: string;
  /** ZSET conversation -> lease expiry (ms) of its in-flight batch. */
  leases: string;
  /** ZSET batchId -> deadAt (ms). */
  dlq: string;
  /** Capped STREAM of buffer events. */
  events: string;
  /** HASH counter -> total. */
  stats: string;
  /** HASH `<dayNumber>:<counter>` -> count (day = floor(ms / 86400000)). */
  daily: string;
  /** STRING messages of `provider` in this partition in the current minute (quota). */
  providerRate: (provider: string) => string;
}

/** Keys of one conversation (all in its partition's slot). */
export interface ConversationKeys {
  conversation: string;
  partition: PartitionKeys;
  /** ZSET provider message id -> first seen (ms), trimmed to LULL_DEDUP_TTL_MS. */
  seen: string;
  /** LIST of `<receivedAtMs>|<message json>`, the open buffer. */
  buffer: string;
  /** HASH firstAt, lastAt, count, bytes of the open buffer. */
  meta: string;
  /** STRING flush lock token (SET NX PX). */
  lock: string;
  /** STRING fencing counter (INCR). */
  fence: string;
  /** HASH of the claimed batch (in flight or awaiting retry). */
  batch: string;
  /** LIST of the claimed batch's messages (same encoding as `buffer`). */
  batchMessages: string;
  /** STRING record that batchId was delivered (PX LULL_PROCESSED_TTL_MS). */
  processed: (batchId: string) => string;
  /** STRING messages of this conversation in the current minute (quota; PEXPIREAT its end). */
  rate: string;
}

/** Builds keys for one key prefix and partition count. */
export class Keys {
  constructor(readonly prefix: string, readonly partitions: number) {
    if (/[{}]/.test(prefix)) throw new Error("key prefix must not contain { or }");
  }

  /** Partition of a conversation. */
  partitionOf(conversation: string): number {
    return partitionOf(conversation, this.partitions);
  }

  /** Keys of partition `p`. */
  partition(p: number): PartitionKeys {
    const base = `${this.prefix}:{${this.prefix}:${p}}`;
    return {
      partition: p,
      due: `${base}:due`,
      leases: `${base}:leases`,
      dlq: `${base}:dlq`,
      events: `${base}:events`,
      stats: `${base}:stats`,
      daily: `${base}:daily`,
      providerRate: (provider: string) => `${base}:rate:${encodeConversation(provider)}`,
    };
  }

  /** Keys of one conversation. */
  conversation(conversation: string): ConversationKeys {
    const p = this.partitionOf(conversation);
    const base = `${this.prefix}:{${this.prefix}:${p}}:c:${encodeConversation(conversation)}`;
    return {
      conversation,
      partition: this.partition(p),
      seen: `${base}:seen`,
      buffer: `${base}:buf`,
      meta: `${base}:meta`,
      lock: `${base}:lock`,
      fence: `${base}:fence`,
      batch: `${base}:batch`,
      batchMessages: `${base}:batch:msgs`,
      processed: (batchId: string) => `${base}:done:${encodeConversation(batchId)}`,
      rate: `${base}:rate`,
    };
  }

  /**
   * The wake index (one hash slot of its own): ZSET partition -> wake-up ms, a lower bound of
   * every score in that partition's `due` and `leases`, and HASH partition -> epoch.
   */
  wake(): { wake: string; epoch: string } {
    const base = `${this.prefix}:{${this.prefix}:wake}`;
    return { wake: `${base}:partitions`, epoch: `${base}:epoch` };
  }

  /** STREAM of audit records (admin actions) of this prefix, in a hash slot of its own. */
  audit(): string {
    return `${this.prefix}:{${this.prefix}:audit}:log`;
  }

  /** HASH recording the data layout (partition count, version) of this prefix. */
  layout(): string {
    return `${this.prefix}:layout`;
  }

  /** HASH holding one dead-lettered batch, in partition `p`'s slot. */
  deadLetter(p: number, batchId: string): string {
    return `${this.prefix}:{${this.prefix}:${p}}:dead:${encodeConversation(batchId)}`;
  }

  /** The Redis Cluster hash tag of a key (the text between its first `{` and the next `}`). */
  static hashTag(key: string): string {
    const open = key.indexOf("{");
    const close = key.indexOf("}", open + 1);
    return open >= 0 && close > open + 1 ? key.slice(open + 1, close) : key;
  }
}
