/**
 * `lull repair` on a real redis-server: after data loss outside lull (due-index and lease entries
 * deleted by hand), it finds the unreachable buffer and batch by SCAN and puts them back on the
 * due index, so the sweep delivers them; reachable conversations are left as they are.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { parseConfig } from "../../src/core/config.ts";
import { Keys } from "../../src/core/keys.ts";
import { createStore } from "../../src/store/create-store.ts";
import { type RedisServer, startRedisServer, testPrefix } from "../harness/redis-server.ts";
import { runCli } from "./cli-stack.ts";

let redis: RedisServer;
const cwd = mkdtempSync(join(tmpdir(), "lull-cli-repair-"));

beforeAll(async () => {
  redis = await startRedisServer();
});

afterAll(async () => {
  await redis?.stop();
  rmSync(cwd, { recursive: true, force: true });
});

it("re-indexes an orphaned buffer and batch; the sweep then reaches both", async () => {
  const prefix = testPrefix("repair");
  const env = { LULL_REDIS_URL: redis.url, LULL_KEY_PREFIX: prefix, LULL_PARTITIONS: "4" };
  const config = parseConfig(env);
  const { store } = createStore(config);
  const keys = new Keys(prefix, 4);
  try {
    await store.append({ conversation: "orphan:buffer", id: "b1", provider: "generic", text: "x" });
    await store.append({ conversation: "orphan:batch", id: "t1", provider: "generic", text: "y" });
    await store.append({ conversation: "fine:1", id: "f1", provider: "generic", text: "z" });
    const claimed = await store.claim("orphan:batch", { force: true });
    expect(claimed.status).toBe("claimed");
    // Data loss outside lull: the index entries are gone, the live data is not.
    const lost = (c: string) => keys.conversation(c).partition;
    await redis.client.zrem(lost("orphan:buffer").due, "orphan:buffer");
    await redis.client.zrem(lost("orphan:batch").leases, "orphan:batch");
    await redis.client.del(keys.conversation("orphan:batch").lock);
    const fineScore = await redis.client.zscore(lost("fine:1").due, "fine:1");

    const r = await runCli(["repair", "--json", "--count", "3"], { cwd, env });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { examined: number; repaired: unknown[] };
    expect(report.examined).toBe(3);
    expect(report.repaired).toEqual(expect.arrayContaining([
      { conversation: "orphan:buffer", what: "buffer" },
      { conversation: "orphan:batch", what: "batch" },
    ]));
    expect(report.repaired).toHaveLength(2);
    expect(await redis.client.zscore(lost("fine:1").due, "fine:1")).toBe(fineScore);

    // Reachable again: the due index lists the batch now, and the buffer once it is due.
    const p = keys.partitionOf("orphan:batch");
    expect(await store.listDue(p, 10)).toContain("orphan:batch");
    expect(await store.listConversations(keys.partitionOf("orphan:buffer"), 10)).toContain(
      "orphan:buffer",
    );
    // A second run finds nothing to do.
    const again = await runCli(["repair", "--json"], { cwd, env });
    expect(JSON.parse(again.stdout)).toEqual({ examined: 3, repaired: [] });
  } finally {
    await store.close();
  }
});
