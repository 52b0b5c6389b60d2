/**
 * The bench's floor for HTTP ingest: a bare `Deno.serve` handler doing one EVALSHA of lull's
 * append script per request, nothing else (no auth, no validation, no metrics, no timers).
 *
 *   deno run --allow-net --allow-env --allow-read --allow-sys bench/bare-server.ts --port N
 *
 * Env: LULL_REDIS_URL. The EVALSHA per conversation is captured once from `RedisStore.append`
 * (so it is exactly what lull sends, whatever the scripts are), then only the message id is
 * substituted per request. Prints `listening <url>` once ready.
 */
import { parseConfig } from "../src/core/config.ts";
import { createTcpClient } from "../src/redis/tcp-client.ts";
import { scripts } from "../src/scripts/generated.ts";
import { bufferSettings } from "../src/store/create-store.ts";
import { RedisStore } from "../src/store/redis-store.ts";
import { capturingClient, type ScriptCall } from "./lib.ts";

interface DenoLike {
  args: string[];
  env: { get(name: string): string | undefined };
  serve(
    options: { port: number; hostname: string; onListen?: (addr: { port: number }) => void },
    handler: (req: Request) => Response | Promise<Response>,
  ): unknown;
}
const Deno = (globalThis as unknown as { Deno: DenoLike }).Deno;

const port = Number(Deno.args[Deno.args.indexOf("--port") + 1]);
const client = createTcpClient({ url: Deno.env.get("LULL_REDIS_URL")!, timeoutMs: 10_000 });
const settings = {
  ...bufferSettings(parseConfig({})),
  keyPrefix: "bare",
  maxMessages: 1_000_000,
  maxBytes: 1 << 30,
};
const capture = capturingClient(scripts.appendMessage, client);
const capturer = new RedisStore({ client: capture.client, settings });
const TEMPLATE_ID = "bare-template-id-0000";
const templates = new Map<string, ScriptCall>();

async function template(conversation: string): Promise<ScriptCall> {
  let t = templates.get(conversation);
  if (t === undefined) {
    await capturer.append({ conversation, id: TEMPLATE_ID, provider: "generic", text: "x" })
      .catch(() => undefined);
    t = capture.take();
    templates.set(conversation, t);
  }
  return t;
}

// Loads the script into Redis (EVALSHA -> NOSCRIPT -> EVAL) so requests never need EVAL.
await new RedisStore({ client, settings }).append({
  conversation: "bare:warm",
  id: crypto.randomUUID(),
  provider: "generic",
  text: "x",
});

Deno.serve({
  port,
  hostname: "127.0.0.1",
  onListen: (addr) => console.log(`listening http://127.0.0.1:${addr.port}`),
}, async (req) => {
  const body = await req.json() as { conversation: string; id: string; text: string };
  const t = await template(body.conversation);
  const args = t.args.map((a) => typeof a === "string" ? a.replaceAll(TEMPLATE_ID, body.id) : a);
  await client.evalsha(t.sha1, t.keys, args);
  return Response.json({ accepted: 1 }, { status: 202 });
});
