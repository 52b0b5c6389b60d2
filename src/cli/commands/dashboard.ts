/**
 * `lull dashboard --url <function URL>`: the dashboard on localhost for a deployed lull. Hosted
 * Supabase serves function HTML as text/plain, so the page is served here and its API calls are
 * proxied to the function's admin API. The admin token is typed into this local page, kept in
 * that tab only and sent to the function over its own HTTPS URL; nothing is stored on disk.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { delimiter, join } from "node:path";
import { dashboardCsp, renderDashboardHtml } from "../../http/dashboard/render.ts";
import { readDevState } from "../../dev/dev-state.ts";
import { intOption, parseCommandArgs } from "../args.ts";
import { CommandError, UsageError } from "../cli-errors.ts";
import { type Command, err, out, outJson } from "../command.ts";

const help = `lull dashboard — the admin dashboard on localhost, for a deployed function

Usage: lull dashboard [--url <function URL>] [--port <n>] [--no-open] [--json]

Serves the dashboard at http://127.0.0.1:<port>/lull/admin and forwards its API calls to
<function URL>/admin/... (hosted Supabase shows function HTML as plain text, so the page cannot
come from the function itself). Sign in with that deployment's LULL_ADMIN_TOKEN: it stays in
the browser tab and goes only to the function. Opens a browser when there is one.

Options:
  --url <url>   the lull function, e.g. https://<ref>.supabase.co/functions/v1/lull
                (default: LULL_PUBLIC_URL, else the running lull dev in this directory)
  --port <n>    local port (default: a free one)
  --no-open     do not open a browser
  --json        print {"event":"ready","url":...} instead of the banner
  -h, --help    this help

Exit codes: 0 stopped by Ctrl-C, 1 could not start, 2 usage error.`;

/** Response headers passed back from the function. */
const PASSED_BACK = ["content-type", "retry-after", "www-authenticate", "allow"];

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Forwards one admin API call to the function. */
async function proxy(
  req: IncomingMessage,
  res: ServerResponse,
  target: string,
  base: string,
): Promise<void> {
  const headers: Record<string, string> = {};
  for (const h of ["authorization", "content-type", "accept"]) {
    const v = req.headers[h];
    if (typeof v === "string") headers[h] = v;
  }
  const method = req.method ?? "GET";
  const body = method === "GET" || method === "HEAD"
    ? undefined
    : new Uint8Array(await readBody(req));
  let upstream: Response;
  try {
    upstream = await fetch(target, {
      method,
      headers,
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(30_000),
    });
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
    send(res, 502, {
      error: { code: "unreachable", message: `cannot reach ${base} (${cause})` },
    });
    return;
  }
  const out: Record<string, string> = { "cache-control": "no-store" };
  for (const h of PASSED_BACK) {
    const v = upstream.headers.get(h);
    if (v !== null) out[h] = v;
  }
  res.writeHead(upstream.status, out);
  res.end(Buffer.from(await upstream.arrayBuffer()));
}

/** Whether a program is on PATH. */
function onPath(name: string): boolean {
  return (process.env.PATH ?? "").split(delimiter).some((d) => d && existsSync(join(d, name)));
}

/** Opens `url` in a browser when there is one; returns what it ran, or null. */
function openBrowser(url: string): string | null {
  const env = process.env;
  let cmd: string | null = null;
  let args: string[] = [url];
  if (env.BROWSER) cmd = env.BROWSER;
  else if (process.platform === "darwin") cmd = "open";
  else if (process.platform === "win32") {
    cmd = "cmd";
    args = ["/c", "start", "", url];
  } else if ((env.DISPLAY || env.WAYLAND_DISPLAY) && onPath("xdg-open")) cmd = "xdg-open";
  if (!cmd) return null;
  try {
    const child = spawn(cmd, args, { detached: true, stdio: "ignore" });
    child.on("error", () => {});
    child.unref();
    return cmd;
  } catch {
    return null;
  }
}

/** `lull dashboard`. */
export const dashboardCommand: Command = {
  name: "dashboard",
  summary: "serve the admin dashboard on localhost for a deployed function (--url)",
  help,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs("dashboard", args, {
      url: { type: "string" },
      port: { type: "string" },
      "no-open": { type: "boolean" },
    });
    if (positionals.length > 0) {
      throw new UsageError(`unexpected argument '${positionals[0]}'`, "dashboard");
    }
    const port = values.port === undefined ? 0 : intOption("dashboard", "port", values.port, 0);
    if (port > 65535) throw new UsageError("--port must be at most 65535", "dashboard");
    const raw = values.url ?? ctx.env.LULL_PUBLIC_URL?.trim() ?? readDevState(ctx.cwd)?.lullUrl;
    if (!raw) {
      throw new CommandError(
        "no_url",
        "no function URL: pass --url https://<project-ref>.supabase.co/functions/v1/lull " +
          "(or set LULL_PUBLIC_URL, or start `lull dev` in this directory).",
      );
    }
    let base: string;
    try {
      const u = new URL(raw);
      if (u.protocol !== "https:" && u.protocol !== "http:") throw new Error("scheme");
      base = u.href.replace(/\/+$/, "").replace(/\/admin(\/dashboard)?$/, "");
    } catch {
      throw new UsageError(
        `--url must be the function's http(s) URL, like https://<ref>.supabase.co/functions/v1/lull`,
        "dashboard",
      );
    }

    let allowedHosts: Set<string> = new Set();
    const server = createServer((req, res) => {
      // Only this machine's names: a web page elsewhere cannot rebind a domain onto the proxy.
      if (!allowedHosts.has(req.headers.host ?? "")) {
        send(res, 403, { error: { code: "forbidden", message: "unexpected Host header" } });
        return;
      }
      const url = new URL(req.url ?? "/", "http://local");
      const path = url.pathname.replace(/\/+$/, "") || "/";
      if (path === "/") {
        res.writeHead(302, { location: "/lull/admin" });
        res.end();
        return;
      }
      if (path === "/lull/admin" || path === "/lull/admin/dashboard") {
        if (req.method !== "GET" && req.method !== "HEAD") {
          send(res, 405, { error: { code: "method_not_allowed", message: "use GET" } });
          return;
        }
        const nonce = randomBytes(16).toString("hex");
        res.writeHead(200, {
          "content-type": "text/html; charset=utf-8",
          "cache-control": "no-store",
          "referrer-policy": "no-referrer",
          "x-content-type-options": "nosniff",
          "content-security-policy": dashboardCsp(nonce),
        });
        res.end(req.method === "HEAD" ? undefined : renderDashboardHtml(nonce));
        return;
      }
      if (path.startsWith("/lull/admin/")) {
        const target = base + path.slice("/lull".length) + url.search;
        proxy(req, res, target, base).catch((e) => {
          if (!res.headersSent) {
            send(res, 502, { error: { code: "proxy_failed", message: (e as Error).message } });
          } else res.destroy();
        });
        return;
      }
      send(res, 404, { error: { code: "not_found", message: "the dashboard is at /lull/admin" } });
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, "127.0.0.1", () => resolve());
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new CommandError(
        "listen_failed",
        code === "EADDRINUSE"
          ? `port ${port} is in use; pick another with --port <n>`
          : `cannot listen on 127.0.0.1:${port} (${code ?? (e as Error).message})`,
      );
    }
    const actual = (server.address() as AddressInfo).port;
    allowedHosts = new Set([`127.0.0.1:${actual}`, `localhost:${actual}`]);
    const local = `http://127.0.0.1:${actual}/lull/admin`;
    const opened = values["no-open"] === true ? null : openBrowser(local);
    if (values.json === true) outJson({ event: "ready", url: local, function: base, opened });
    else {
      out(`lull dashboard for ${base}`);
      out(`  open ${local} and sign in with that deployment's LULL_ADMIN_TOKEN`);
      if (opened) out(`  (opened with ${opened})`);
      out("  Ctrl-C stops it.");
    }
    await ctx.interrupted;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (values.json !== true) err("stopped.");
    return 0;
  },
};
