/**
 * Every Redis key lull touches is built here. A conversation maps to one of LULL_PARTITIONS
 * partitions; all keys of a partition and of its conversations share the hash tag
 * `{<prefix>:<partition>}`, so every script touches a single hash slot (cluster-safe).
 * Conversation ids are percent-encoded, so `{`, `}`, `:`, spaces and unicode in an id can
 * neither move it to another slot nor collide with another id's keys.
 */

/**
 * FNV-1a 32-bit over UTF-8 bytes: stable across runtimes, cheap, well spread. The bytes are
 * those `TextEncoder` would produce (a lone surrogate counts as U+FFFD), computed in place: this
 * runs for every key of every script call, and an encoder allocation per call showed up in
 * profiles.
 */
export function fnv1a32(input: string): number {
  let hash = 0x811c9dc5;
  const step = (byte: number) => {
    hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  };
  for (let i = 0; i < input.length; i++) {
    let c = input.charCodeAt(i);
    if (c < 0x80) {
      step(c);
      continue;
    }
    if (c < 0x800) {
      step(0xc0 | (c >> 6));
      step(0x80 | (c & 0x3f));
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < input.length ? input.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        i++;
        step(0xf0 | (c >> 18));
        step(0x80 | ((c >> 12) & 0x3f));
        step(0x80 | ((c >> 6) & 0x3f));
        step(0x80 | (c & 0x3f));
        continue;
      }
      c = 0xfffd; // a lone surrogate: what TextEncoder writes for it
    }
    step(0xe0 | (c >> 12));
    step(0x80 | ((c >> 6) & 0x3f));
    step(0x80 | (c & 0x3f));
  }
  return hash >>> 0;
}

/** The partition a conversation belongs to. */
export function partitionOf(conversation: string, partitions: number): number {
  return fnv1a32(conversation) % partitions;
}

/** Only unreserved URI characters: percent-encoding leaves such an id as it is. */
const UNRESERVED = /^[A-Za-z0-9\-_.~]*$/;

/** Percent-encodes everything but unreserved URI characters, so ids never contain `{}:` or spaces. */
export function encodeConversation(conversation: string): string {
  if (UNRESERVED.test(conversation)) return conversation;
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
  /**
   * STRING of BITFIELD fields: firstAt, lastAt, count, bytes (and a supersede's carry-overs) of
   * the open buffer (src/scripts/includes/flush.lua).
   */
  meta: string;
  /** STRING flush lock (SET PX): `<token>|<batchId>|<count>` of the batch it is held over. */
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

/**
 * How many conversations' keys a {@link Keys} remembers. A burst calls append, claim, ack and
 * noteWake for the same conversation within seconds, and each call built the same dozen strings
 * again; beyond this many distinct conversations the oldest entries are dropped.
 */
const CONVERSATION_CACHE_SIZE = 1024;

/** Builds keys for one key prefix and partition count. */
export class Keys {
  readonly #partitions: PartitionKeys[] = [];
  readonly #conversations = new Map<string, ConversationKeys>();
  #wake: { readonly wake: string; readonly epoch: string } | undefined;

  constructor(readonly prefix: string, readonly partitions: number) {
    if (/[{}]/.test(prefix)) throw new Error("key prefix must not contain { or }");
  }

  /** Partition of a conversation. */
  partitionOf(conversation: string): number {
    return partitionOf(conversation, this.partitions);
  }

  /** Keys of partition `p` (built once per partition; the object is shared, do not mutate). */
  partition(p: number): PartitionKeys {
    let keys = this.#partitions[p];
    if (keys === undefined) {
      keys = Object.freeze(this.#buildPartition(p));
      // Only real partition numbers are kept (a caller may ask for any number).
      if (Number.isInteger(p) && p >= 0 && p < this.partitions) this.#partitions[p] = keys;
    }
    return keys;
  }

  #buildPartition(p: number): PartitionKeys {
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

  /** Keys of one conversation (cached; the object is shared, do not mutate). */
  conversation(conversation: string): ConversationKeys {
    let keys = this.#conversations.get(conversation);
    if (keys === undefined) {
      keys = Object.freeze(this.#buildConversation(conversation));
      if (this.#conversations.size >= CONVERSATION_CACHE_SIZE) {
        this.#conversations.delete(this.#conversations.keys().next().value!);
      }
      this.#conversations.set(conversation, keys);
    }
    return keys;
  }

  #buildConversation(conversation: string): ConversationKeys {
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
    if (this.#wake === undefined) {
      const base = `${this.prefix}:{${this.prefix}:wake}`;
      this.#wake = Object.freeze({ wake: `${base}:partitions`, epoch: `${base}:epoch` });
    }
    return this.#wake;
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
