/**
 * Serves the Supabase functions locally the way `supabase functions serve` does (Deno only):
 * http://127.0.0.1:<port>/functions/v1/<name>/... reaches function <name> with the
 * `/functions/v1` prefix stripped, as on the platform; `lull`, whose routes accept both forms,
 * gets the request unchanged (see TAKES_PREFIXED_PATH).
 *
 *   deno run --allow-net --allow-env --allow-read --allow-sys src/dev/serve-functions.ts --port 54321
 *
 * With `--read-only` (lull dev on a Redis it did not start, with no processor of the user's),
 * only reads are served: GET/HEAD of /lull/health, /lull/metrics, /lull/conversations/... and
 * the admin API; everything else answers 503 `read_only`, so nothing is written to that Redis.
 *
 * Each function's index.ts stays a thin `Deno.serve(...)`; this file imports the same handler
 * factories from supabase/functions/_shared. Prints `listening <base url>` once ready.
 */
import { createLullFunction } from "../../supabase/functions/_shared/lull.ts";
import { createProcessorHandler } from "../../supabase/functions/_shared/lull-processor.ts";

/** The slice of the Deno namespace used here (typed locally: src/ is also type-checked by tsc). */
interface DenoLike {
  args: string[];
  env: { get(name: string): string | undefined; toObject(): Record<string, string> };
  serve(
    options: { port: number; hostname: string; onListen?: (addr: { port: number }) => void },
    handler: (req: Request) => Response | Promise<Response>,
  ): { finished: Promise<void>; shutdown(): Promise<void> };
  addSignalListener(signal: "SIGINT" | "SIGTERM", fn: () => void): void;
  exit(code: number): never;
}

const Deno = (globalThis as unknown as { Deno: DenoLike }).Deno;

function argValue(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  if (i >= 0) return Deno.args[i + 1];
  const eq = Deno.args.find((a) => a.startsWith(name + "="));
  return eq?.slice(name.length + 1);
}

const port = Number(argValue("--port") ?? Deno.env.get("PORT") ?? "54321");
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`invalid --port ${argValue("--port")}`);
  Deno.exit(2);
}

const readOnly = Deno.args.includes("--read-only");
const READS = /^\/lull\/(health|metrics|conversations\/.+|admin(\/.*)?)$/;

// Plain Deno has no EdgeRuntime: the functions get the environment and the waitUntil shim.
const lull = createLullFunction(Deno.env.toObject());
const functions: Record<string, (req: Request) => Promise<Response>> = {
  "lull": lull.handler,
  "lull-processor": createProcessorHandler({
    secrets: Deno.env.get("LULL_PROCESSOR_SECRET") ?? "",
  }),
};

function notFound(message: string): Response {
  return Response.json({ error: { code: "not_found", message } }, { status: 404 });
}

/**
 * Functions whose own router takes the path with or without `/functions/v1` (lull's does:
 * src/http/routes.ts `normalizePath`), and that read nothing else of the URL but its query. They
 * get the request as it arrived: rebuilding a Request per call (every header copied, the body
 * turned into a JS stream instead of read whole) cost more CPU than lull's own ingest work.
 */
const TAKES_PREFIXED_PATH = new Set(["lull"]);

async function route(req: Request): Promise<Response> {
  const url = new URL(req.url);
  const m = /^\/functions\/v1\/([A-Za-z0-9_-]+)(\/.*)?$/.exec(url.pathname);
  if (!m) return notFound("expected /functions/v1/<function>/...");
  const fn = functions[m[1]!];
  if (!fn) return notFound(`no function '${m[1]}'`);
  // Supabase hands the function the path without /functions/v1.
  const path = `/${m[1]}${m[2] ?? ""}`;
  if (readOnly && !((req.method === "GET" || req.method === "HEAD") && READS.test(path))) {
    return Response.json({
      error: {
        code: "read_only",
        message: "lull dev is read-only on a Redis it did not start: set LULL_PROCESSOR_URL " +
          "(your processor) to let it buffer and flush",
      },
    }, { status: 503 });
  }
  if (TAKES_PREFIXED_PATH.has(m[1]!)) return await fn(req);
  url.pathname = path;
  // Rebuilt rather than `new Request(url, req)`, which would copy (and so touch) req.signal.
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  return await fn(
    new Request(url, {
      method: req.method,
      headers: req.headers,
      body: hasBody ? req.body : null,
      ...(hasBody ? { duplex: "half" } : {}),
    } as RequestInit),
  );
}

const server = Deno.serve({
  port,
  hostname: "127.0.0.1",
  onListen: (addr) => console.log(`listening http://127.0.0.1:${addr.port}/functions/v1`),
}, route);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await server.shutdown();
  await lull.close();
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", () => void stop());
Deno.addSignalListener("SIGTERM", () => void stop());
