/**
 * The naive debounce design lull replaces, written small for the bench: every message is its own
 * handler that records itself, sleeps the grace period and flushes only if it is still the last.
 *
 *   SET seen:<id> 1 NX PX <dedup>   (duplicate -> stop)
 *   RPUSH buf:<conv> <msg>; SET last:<conv> <id>
 *   ...sleep grace...
 *   GET last:<conv> (not ours -> stop); SET lock:<conv> <id> NX PX <lock> (taken -> stop)
 *   LRANGE buf:<conv>; DEL buf:<conv> last:<conv> lock:<conv>
 *
 * Nothing is atomic: a message pushed between LRANGE and DEL is lost, a crash during the sleep
 * loses the burst. It is the cost floor people compare against, not a correct design.
 */
import type { SendCommand } from "./lib.ts";

/** The ingest half (what a webhook handler awaits before answering). */
export async function naiveIngest(
  send: SendCommand,
  prefix: string,
  conversation: string,
  id: string,
  payload: string,
): Promise<boolean> {
  const fresh = await send("SET", `${prefix}:seen:${id}`, "1", "NX", "PX", 86_400_000);
  if (fresh === null) return false;
  await send("RPUSH", `${prefix}:buf:${conversation}`, payload);
  await send("SET", `${prefix}:last:${conversation}`, id);
  return true;
}

/** The flush half, after the grace sleep: returns the burst if this handler flushed it. */
export async function naiveFlush(
  send: SendCommand,
  prefix: string,
  conversation: string,
  id: string,
): Promise<string[] | null> {
  if (await send("GET", `${prefix}:last:${conversation}`) !== id) return null;
  const locked = await send("SET", `${prefix}:lock:${conversation}`, id, "NX", "PX", 30_000);
  if (locked === null) return null;
  const burst = await send("LRANGE", `${prefix}:buf:${conversation}`, 0, -1) as string[];
  await send(
    "DEL",
    `${prefix}:buf:${conversation}`,
    `${prefix}:last:${conversation}`,
    `${prefix}:lock:${conversation}`,
  );
  return burst;
}
