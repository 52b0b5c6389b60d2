/**
 * Run by test/upstash/deno.test.ts under Deno (not vitest): the Upstash adapter as an Edge
 * Function would load it, through deno.json's `npm:@upstash/redis` mapping. Prints one JSON line.
 * Usage: deno run --allow-net --allow-env --allow-read probe.ts <url> <token> <closedPort>
 */
import { createUpstashClient } from "../../../src/redis/upstash-client.ts";

const [url, token, closedPort] = (globalThis as any).Deno.args as string[];
const client = createUpstashClient({ url: url!, token: token!, timeoutMs: 5000 });
const outcome = async (run: () => Promise<unknown>) => {
  try {
    return { value: await run() };
  } catch (err) {
    return { name: (err as Error).name, message: (err as Error).message };
  }
};
const big = "ü".repeat(512 * 1024);
const result = {
  shapes: await outcome(() => client.eval("return {1, '007', {KEYS[1]}, false}", ["k"], [])),
  noscript: await outcome(() => client.evalsha("0".repeat(40), [], [])),
  bigLength: await outcome(async () =>
    ((await client.eval("return ARGV[1]", [], [big])) as string).length
  ),
  unreachable: await outcome(() =>
    createUpstashClient({ url: `http://127.0.0.1:${closedPort}`, token: token!, timeoutMs: 5000 })
      .eval("return 1", [], [])
  ),
};
console.log(JSON.stringify(result));
