/**
 * readBodyCapped on its own: the cap and the deadline, and that concurrent reads share one
 * deadline interval instead of arming a timer each.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { readBodyCapped } from "../../src/http/body.ts";
import { BodyTimeoutError, PayloadTooLargeError } from "../../src/http/errors.ts";

const encoder = new TextEncoder();

/** A POST whose body arrives in `chunks`, each a macrotask after the previous one. */
function post(chunks: string[], headers: Record<string, string> = {}): Request {
  let i = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      await new Promise<void>((r) => setImmediate(r));
      if (i < chunks.length) controller.enqueue(encoder.encode(chunks[i++]!));
      else controller.close();
    },
  });
  return new Request("http://lull.test/lull/messages", {
    method: "POST",
    headers,
    body,
    duplex: "half",
  } as RequestInit);
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("readBodyCapped", () => {
  it("returns every chunk's bytes in order", async () => {
    const bytes = await readBodyCapped(post(['{"a":', '"b"', "}"]), 1024, 10_000);
    expect(new TextDecoder().decode(bytes)).toBe('{"a":"b"}');
  });

  it("cuts off past maxBytes while streaming", async () => {
    const err = await readBodyCapped(post(["x".repeat(600), "x".repeat(600)]), 1000, 10_000)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PayloadTooLargeError);
  });

  it("a body that stops arriving: BodyTimeoutError", async () => {
    const stalled = new Request("http://lull.test/", {
      method: "POST",
      body: new ReadableStream<Uint8Array>({ pull: () => new Promise(() => {}) }),
      duplex: "half",
    } as RequestInit);
    await expect(readBodyCapped(stalled, 1024, 100)).rejects.toBeInstanceOf(BodyTimeoutError);
  });

  it("a body framed by Content-Length is read whole; one longer than it claims is still capped", async () => {
    const framed = (body: BodyInit, length: number) =>
      new Request("http://lull.test/", {
        method: "POST",
        headers: { "content-length": String(length) },
        body,
        duplex: "half",
      } as RequestInit);
    const bytes = await readBodyCapped(framed('{"a":1}', 7), 1024, 10_000);
    expect(new TextDecoder().decode(bytes)).toBe('{"a":1}');
    const lying = await readBodyCapped(framed("x".repeat(3000), 10), 1024, 10_000)
      .catch((e: unknown) => e);
    expect(lying).toBeInstanceOf(PayloadTooLargeError);
    const stalled = framed(
      new ReadableStream<Uint8Array>({ pull: () => new Promise(() => {}) }),
      5,
    );
    await expect(readBodyCapped(stalled, 1024, 100)).rejects.toBeInstanceOf(BodyTimeoutError);
  });

  it("concurrent reads share one deadline interval: no timer per request", async () => {
    const setTimeoutSpy = vi.spyOn(globalThis, "setTimeout");
    const setIntervalSpy = vi.spyOn(globalThis, "setInterval");
    const bodies = await Promise.all(
      Array.from({ length: 100 }, (_, i) => readBodyCapped(post([`{"i":${i}}`]), 1024, 10_000)),
    );
    expect(bodies.map((b) => JSON.parse(new TextDecoder().decode(b)).i)).toEqual(
      bodies.map((_, i) => i),
    );
    expect(setTimeoutSpy.mock.calls.length).toBeLessThan(10);
    expect(setIntervalSpy.mock.calls.length).toBeLessThanOrEqual(1);
  });
});
