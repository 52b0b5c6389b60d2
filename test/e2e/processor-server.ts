/**
 * A real HTTP processor for tests: a Node http server on 127.0.0.1 that records every delivery
 * (headers, raw body, parsed batch) and answers as the test scripts it, possibly holding an
 * answer until the test releases it (to observe a batch in flight).
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Batch } from "../../src/core/types.ts";

/** One delivery as the processor saw it. */
export interface Delivery {
  headers: Record<string, string>;
  rawBody: string;
  batch: Batch;
}

/** A scripted answer. */
export interface ProcessorAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/** Decides the answer to a delivery; may wait (the delivery is then in flight). */
export type Responder = (delivery: Delivery) => ProcessorAnswer | Promise<ProcessorAnswer>;

/** A running test processor. */
export interface ProcessorServer {
  url: string;
  deliveries: Delivery[];
  /** Replaces the responder (default: 200). */
  respond(responder: Responder): void;
  /** Deliveries of one conversation, in arrival order. */
  of(conversation: string): Delivery[];
  close(): Promise<void>;
}

function readAll(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** Starts the processor on a free 127.0.0.1 port. */
export async function startProcessorServer(): Promise<ProcessorServer> {
  let responder: Responder = () => ({ status: 200 });
  const deliveries: Delivery[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer(async (req, res) => {
    try {
      const rawBody = await readAll(req);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (typeof v === "string") headers[k] = v;
      }
      const delivery: Delivery = { headers, rawBody, batch: JSON.parse(rawBody) as Batch };
      deliveries.push(delivery);
      const answer = await responder(delivery);
      res.writeHead(answer.status, answer.headers ?? { "content-type": "application/json" });
      res.end(answer.body ?? "{}");
    } catch (err) {
      res.writeHead(500);
      res.end(String(err));
    }
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    deliveries,
    respond(r) {
      responder = r;
    },
    of(conversation) {
      return deliveries.filter((d) => d.batch.conversation === conversation);
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Polls `check` until it returns a truthy value (or throws after `timeoutMs`). */
export async function eventually<T>(
  check: () => T | Promise<T>,
  what: string,
  options: { timeoutMs?: number; intervalMs?: number; tick?: () => Promise<unknown> } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await options.tick?.();
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 50));
  }
}
