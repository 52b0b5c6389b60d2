/**
 * Hostile bodies: whatever bytes or JSON arrive, every adapter's `parse` either returns well-
 * formed messages or throws ValidationError (which the route turns into a 400), and
 * `authenticate` answers a boolean. A TypeError/RangeError here would be a 500.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/core/errors.ts";
import { providers } from "../../src/providers/index.ts";
import type { ProviderAdapter, ProviderParse } from "../../src/providers/types.ts";
import { configWith, request } from "./helpers.ts";

const config = configWith();
const adapters = Object.values(providers);
const RUNS = 150;

/** Runs parse; returns "ok" or "invalid", and fails the property on anything else. */
async function parseOutcome(adapter: ProviderAdapter, body: Uint8Array | string, method = "POST") {
  let result: ProviderParse;
  try {
    result = await adapter.parse(request(body, { method }), config);
  } catch (err) {
    if (err instanceof ValidationError) {
      expect(Array.isArray(err.issues)).toBe(true);
      return "invalid";
    }
    throw err;
  }
  if (result.kind === "messages") {
    expect(result.ignored).toBeGreaterThanOrEqual(0);
    for (const m of result.messages) {
      expect(m.provider).toBe(adapter.name);
      expect(typeof m.conversation).toBe("string");
      expect(m.conversation.length).toBeGreaterThan(0);
      expect(typeof m.id).toBe("string");
      expect(m.id.length).toBeGreaterThan(0);
      expect(typeof m.text).toBe("string");
      if (m.sentAt !== undefined) expect(new Date(m.sentAt).toISOString()).toBe(m.sentAt);
      // The store serialises messages: that must not throw either.
      JSON.stringify(m);
    }
  }
  return "ok";
}

const json = fc.jsonValue({ maxDepth: 4 });
/** Values that tempt a parser: wrong types, edge numbers, odd strings. */
const nasty = fc.oneof(
  json,
  fc.constantFrom(null, 0, -1, 1e308, -1e308, 2 ** 53, "", " ", "0", "+", "00", "__proto__"),
  fc.string({ unit: "binary" }),
);

/** Mostly `valid`, sometimes anything: deep slots get reached, edge values still show up. */
const maybe = <T>(valid: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: valid, weight: 5 }, { arbitrary: nasty, weight: 1 });
const text = fc.oneof(fc.string(), fc.string({ unit: "binary" }));
/** Unix-seconds-like values, including ones Date cannot render. */
const seconds = fc.oneof(
  fc.nat(),
  fc.integer({ min: -1e15, max: 1e15 }),
  fc.constantFrom(0, -1, 253402300799, 253402300800, 8.64e12, 1e308, 1.5, Number.MAX_SAFE_INTEGER),
);
const phone = fc.oneof(
  fc.constantFrom("966501234567", "0501234567", "+966 50 123 4567", "0", "+", "00"),
  fc.stringMatching(/^[+0-9 ()-]{0,20}$/),
);

/** Payloads shaped like each provider's, with arbitrary values in the slots. */
const shaped = {
  whatsapp: fc.record({
    object: maybe(fc.constant("whatsapp_business_account")),
    entry: maybe(fc.array(
      fc.record({
        id: maybe(text),
        changes: maybe(fc.array(
          fc.record({
            field: maybe(fc.constant("messages")),
            value: maybe(fc.record({
              metadata: maybe(
                fc.record({ display_phone_number: maybe(text), phone_number_id: maybe(text) }),
              ),
              contacts: maybe(
                fc.array(
                  fc.record({
                    wa_id: maybe(phone),
                    profile: maybe(fc.record({ name: maybe(text) })),
                  }),
                ),
              ),
              statuses: maybe(fc.array(json, { maxLength: 3 })),
              messages: maybe(fc.array(
                fc.record({
                  from: maybe(phone),
                  id: maybe(text),
                  timestamp: maybe(fc.oneof(seconds, seconds.map(String))),
                  type: maybe(fc.constantFrom(
                    "text",
                    "image",
                    "video",
                    "audio",
                    "document",
                    "sticker",
                    "location",
                    "contacts",
                    "interactive",
                    "reaction",
                    "button",
                    "order",
                    "",
                  )),
                  context: maybe(fc.record({ id: maybe(text) })),
                  text: maybe(fc.record({ body: maybe(text) })),
                  image: maybe(
                    fc.record({ caption: maybe(text), id: maybe(text) }, { requiredKeys: [] }),
                  ),
                  document: maybe(fc.record({ filename: maybe(text) }, { requiredKeys: [] })),
                  location: maybe(fc.record({
                    latitude: maybe(fc.double()),
                    longitude: maybe(fc.double()),
                    name: maybe(text),
                  }, { requiredKeys: [] })),
                  contacts: maybe(
                    fc.array(
                      fc.record({ name: maybe(fc.record({ formatted_name: maybe(text) })) }),
                    ),
                  ),
                  interactive: maybe(fc.record({
                    type: maybe(text),
                    button_reply: maybe(fc.record({ id: maybe(text), title: maybe(text) })),
                  }, { requiredKeys: [] })),
                  reaction: maybe(fc.record({ message_id: maybe(text), emoji: maybe(text) })),
                  button: maybe(fc.record({ text: maybe(text), payload: maybe(text) })),
                }, { requiredKeys: ["from", "id", "timestamp", "type"] }),
                { maxLength: 3 },
              )),
            }, { requiredKeys: [] })),
          }),
          { maxLength: 2 },
        )),
      }),
      { maxLength: 2 },
    )),
  }),
  telegram: fc.record({
    update_id: maybe(fc.oneof(fc.nat(), fc.integer())),
    message: maybe(fc.record({
      message_id: maybe(fc.nat()),
      date: maybe(seconds),
      edit_date: maybe(seconds),
      chat: maybe(fc.record({
        id: maybe(fc.oneof(fc.integer(), fc.constant(-1001234567890))),
        type: maybe(fc.constantFrom("private", "group", "supergroup", "channel")),
        title: maybe(text),
      }, { requiredKeys: ["id", "type"] })),
      from: maybe(fc.record({ id: maybe(fc.integer()), username: maybe(text) })),
      sender_chat: maybe(fc.record({ id: maybe(fc.integer()), type: maybe(text) })),
      text: maybe(text),
      caption: maybe(text),
      photo: maybe(fc.array(json, { maxLength: 2 })),
      sticker: maybe(fc.record({ emoji: maybe(text) })),
      location: maybe(fc.record({ latitude: maybe(fc.double()), longitude: maybe(fc.double()) })),
      contact: maybe(fc.record({ phone_number: maybe(text), first_name: maybe(text) })),
      dice: maybe(fc.record({ emoji: maybe(text), value: maybe(fc.double()) })),
    }, { requiredKeys: ["message_id", "date", "chat"] })),
    edited_message: maybe(
      fc.record({
        message_id: fc.nat(),
        date: seconds,
        edit_date: maybe(seconds),
        chat: fc.record({ id: fc.integer(), type: fc.constant("private") }),
      }),
    ),
    callback_query: nasty,
  }, { requiredKeys: ["update_id"] }),
  generic: fc.oneof(
    fc.record({
      conversation: maybe(text),
      id: maybe(text),
      text: maybe(text),
      sender: maybe(text),
      sentAt: maybe(fc.oneof(
        fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
        fc.constantFrom(
          "2026-11-22T10:00:00Z",
          "2026-11-22T10:00:00+14:00",
          "9999-12-31T23:59:59-12:00",
          "0000-01-01T00:00:00+14:00",
          "2026-02-30T10:00:00Z",
          "2026-11-22T24:00:00Z",
        ),
      )),
      meta: maybe(fc.dictionary(fc.string(), json)),
    }, { requiredKeys: [] }),
    fc.record({
      messages: maybe(
        fc.array(fc.record({ conversation: maybe(text), id: maybe(text), sentAt: maybe(text) }), {
          maxLength: 3,
        }),
      ),
    }),
  ),
};

/** Form bodies with Twilio's field names and arbitrary values. */
const twilioForm = fc.array(
  fc.tuple(
    fc.oneof(
      fc.constantFrom(
        "MessageSid",
        "From",
        "To",
        "Body",
        "NumMedia",
        "MediaUrl0",
        "MediaContentType0",
        "MessageStatus",
        "Latitude",
        "Longitude",
        "ButtonText",
      ),
      fc.string(),
    ),
    fc.oneof(fc.string(), fc.constantFrom("+966501234567", "whatsapp:+966501234567", "3", "99")),
  ),
  { maxLength: 8 },
).map((pairs) => new URLSearchParams(pairs).toString());

describe("every adapter survives hostile bodies", () => {
  it.each(adapters.map((a) => [a.name, a] as const))("%s: arbitrary bytes", async (_, adapter) => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 256 }), async (bytes) => {
        await parseOutcome(adapter, bytes);
      }),
      { numRuns: RUNS },
    );
  });

  it.each(adapters.map((a) => [a.name, a] as const))("%s: arbitrary JSON", async (_, adapter) => {
    await fc.assert(
      fc.asyncProperty(json, async (value) => {
        await parseOutcome(adapter, JSON.stringify(value));
      }),
      { numRuns: RUNS },
    );
  });

  it.each(
    [
      ["whatsapp", shaped.whatsapp],
      ["telegram", shaped.telegram],
      ["generic", shaped.generic],
    ] as const,
  )("%s: provider-shaped JSON with arbitrary values", async (name, arb) => {
    await fc.assert(
      fc.asyncProperty(arb, async (value) => {
        await parseOutcome(providers[name], JSON.stringify(value));
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it("twilio: form bodies with arbitrary values", async () => {
    await fc.assert(
      fc.asyncProperty(twilioForm, async (body) => {
        await parseOutcome(providers.twilio, body);
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it.each(adapters.map((a) => [a.name, a] as const))(
    "%s: very deep nesting",
    async (_, adapter) => {
      const depth = 100_000;
      for (
        const body of [
          "[".repeat(depth) + "]".repeat(depth),
          '{"a":'.repeat(depth) + "1" + "}".repeat(depth),
        ]
      ) {
        expect(["ok", "invalid"]).toContain(await parseOutcome(adapter, body));
      }
      const deepMeta = `{"conversation":"c","id":"1","meta":${'{"a":'.repeat(5000)}1${
        "}".repeat(5000)
      }}`;
      expect(["ok", "invalid"]).toContain(await parseOutcome(adapter, deepMeta));
    },
  );

  it("whatsapp: GET handshake with arbitrary query strings answers a Response", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(
          fc.constantFrom("hub.mode", "hub.verify_token", "hub.challenge", "x"),
          fc.string(),
        ),
        async (query) => {
          const url = new URL("http://127.0.0.1/functions/v1/lull/webhooks/whatsapp");
          for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
          const p = await providers.whatsapp.parse(
            request("", { method: "GET", url: url.href }),
            config,
          );
          expect(p.kind).toBe("response");
          if (p.kind === "response") expect([200, 400, 403]).toContain(p.response.status);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it.each(adapters.map((a) => [a.name, a] as const))(
    "%s: authenticate answers false (never throws) on arbitrary bytes and headers",
    async (_, adapter) => {
      const headerValue = fc.string({ unit: fc.constantFrom(..."aZ09+/=:- \t,;sha256".split("")) });
      await fc.assert(
        fc.asyncProperty(
          fc.uint8Array({ maxLength: 128 }),
          fc.record({
            authorization: headerValue,
            "x-hub-signature-256": headerValue,
            "x-telegram-bot-api-secret-token": headerValue,
            "x-twilio-signature": headerValue,
          }, { requiredKeys: [] }),
          async (bytes, headers) => {
            expect(await adapter.authenticate(request(bytes, { headers }), config)).toBe(false);
          },
        ),
        { numRuns: RUNS / 3 },
      );
    },
  );
});
