/**
 * The flaky processor: a real HTTP server in the chaos process. Each isolate delivers to its own
 * path (`/iso/<slot>.<generation>`), so the run knows which isolate has a delivery in flight and
 * can kill exactly that one. Every delivery is recorded (see DeliveryRecord).
 *
 * Modes: `flaky` answers 5xx to `failShare`, holds `hangShare` past the delivery timeout, 422
 * (permanent, so the DLQ fills a little) to `permanentShare` and 200 otherwise; `outage5xx` answers 503 to everything; `outageReset` drops every connection;
 * `healthy` answers 200.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { verifyDelivery } from "../src/delivery/signature.ts";
import type { DeliveryRecord } from "./checker.ts";
import type { Prng } from "./prng.ts";

/** How the processor answers right now. */
export type ProcessorMode = "flaky" | "outage5xx" | "outageReset" | "healthy";

/** Options of {@link startProcessor}. */
export interface ProcessorOptions {
  rng: Prng;
  failShare: number;
  hangShare: number;
  /** Share answered 422 (permanent: the batch goes straight to the DLQ). */
  permanentShare: number;
  /** A hung delivery is answered 500 after this long if the caller has not given up. */
  hangCapMs: number;
  /** LULL_PROCESSOR_SECRET: every delivery's X-Lull-Signature is verified with it. */
  secret: string;
  now: () => number;
}

/** The running processor. */
export interface ChaosProcessor {
  /** Base URL; an isolate delivers to `${url}/iso/<name>`. */
  url: string;
  mode: ProcessorMode;
  deliveries: DeliveryRecord[];
  /** Isolate names with a delivery open right now. */
  inFlight(): string[];
  /** Deliveries that could not be parsed (each is a defect of lull, or of this server). */
  malformed: number;
  close(): Promise<void>;
}

interface BatchBody {
  batchId: string;
  conversation: string;
  fence: number;
  attempt: number;
  degraded: boolean;
  reason: string;
  messages: { id: string }[];
}

function readAll(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** What is wrong with a delivery's headers (signature, idempotency key, fence), if anything. */
async function deliveryProblems(
  req: IncomingMessage,
  raw: string,
  body: BatchBody,
  secret: string,
): Promise<string[]> {
  const problems: string[] = [];
  const headers: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v[0] : v;
  const verified = await verifyDelivery({ headers, rawBody: raw, secrets: secret });
  if (!verified.ok) problems.push(`signature ${verified.reason}`);
  if (headers["idempotency-key"] !== body.batchId) problems.push("Idempotency-Key is not batchId");
  if (headers["x-lull-fence"] !== String(body.fence)) problems.push("X-Lull-Fence is not fence");
  return problems;
}

/** Starts the processor on a free 127.0.0.1 port in `flaky` mode. */
export async function startProcessor(options: ProcessorOptions): Promise<ChaosProcessor> {
  const deliveries: DeliveryRecord[] = [];
  const open = new Map<string, number>();
  const sockets = new Set<Socket>();
  const pendingTimers = new Set<ReturnType<typeof setTimeout>>();
  const proc: ChaosProcessor = {
    url: "",
    mode: "flaky",
    deliveries,
    malformed: 0,
    inFlight: () => [...open].filter(([, n]) => n > 0).map(([k]) => k),
    close: async () => {},
  };

  const answer = (res: ServerResponse, status: number) => {
    if (res.writableEnded || res.destroyed) return;
    res.writeHead(status, { "content-type": "application/json" });
    res.end(status < 300 ? '{"ok":true}' : '{"error":"chaos"}');
  };

  const server: Server = createServer((req, res) => {
    const isolate = /^\/iso\/([^/?]+)/.exec(req.url ?? "")?.[1] ?? "unknown";
    if (proc.mode === "outageReset") {
      req.socket.destroy();
      return;
    }
    open.set(isolate, (open.get(isolate) ?? 0) + 1);
    let record: DeliveryRecord | undefined;
    let closed = false;
    const finish = () => {
      if (closed) return;
      closed = true;
      open.set(isolate, (open.get(isolate) ?? 1) - 1);
      if (record && record.endAt === undefined) record.endAt = options.now();
    };
    res.on("close", finish);
    res.on("finish", finish);
    void readAll(req).then(async (raw) => {
      let body: BatchBody;
      try {
        body = JSON.parse(raw) as BatchBody;
        if (typeof body.batchId !== "string" || !Array.isArray(body.messages)) throw new Error();
      } catch {
        proc.malformed++;
        answer(res, 400);
        return;
      }
      // Draw the answer whatever the mode, so the flaky answers stay on one seeded stream.
      const roll = options.rng.next();
      const mode = proc.mode;
      const kind: DeliveryRecord["answer"] = mode === "outage5xx"
        ? 503
        : mode === "healthy"
        ? 200
        : roll < options.failShare
        ? (roll < options.failShare / 2 ? 500 : 503)
        : roll < options.failShare + options.hangShare
        ? "hang"
        : roll < options.failShare + options.hangShare + options.permanentShare
        ? 422
        : 200;
      const problems = await deliveryProblems(req, raw, body, options.secret);
      record = {
        at: options.now(),
        isolate,
        batchId: body.batchId,
        conversation: body.conversation,
        fence: Number(body.fence),
        attempt: Number(body.attempt),
        degraded: body.degraded === true,
        reason: String(body.reason),
        ids: body.messages.map((m) => m.id),
        answer: kind,
        ...(problems.length > 0 ? { problems } : {}),
      };
      deliveries.push(record);
      if (closed) record.endAt = record.at;
      if (kind === "hang") {
        const t = setTimeout(() => {
          pendingTimers.delete(t);
          answer(res, 500);
        }, options.hangCapMs);
        pendingTimers.add(t);
      } else {
        answer(res, kind);
      }
    }, () => {
      finish();
    });
  });
  server.keepAliveTimeout = 5_000;
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  proc.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proc.close = async () => {
    for (const t of pendingTimers) clearTimeout(t);
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return proc;
}
