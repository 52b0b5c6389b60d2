import { describe, expect, it } from "vitest";
import { providers, webhookProvider } from "../../src/providers/index.ts";
import { bareConfig } from "./helpers.ts";

describe("providers index", () => {
  it("names each adapter after its key", () => {
    for (const [name, adapter] of Object.entries(providers)) expect(adapter.name).toBe(name);
  });

  it("every route is closed (not exposed) when no secret is set", () => {
    for (const adapter of Object.values(providers)) {
      expect(adapter.enabled(bareConfig())).toBe(false);
      expect(adapter.enabled(bareConfig(), "GET")).toBe(false);
      expect(adapter.enabled(bareConfig(), "POST")).toBe(false);
    }
  });

  it("maps /webhooks/<name> to the named providers only", () => {
    expect(webhookProvider("whatsapp")).toBe(providers.whatsapp);
    expect(webhookProvider("telegram")).toBe(providers.telegram);
    expect(webhookProvider("twilio")).toBe(providers.twilio);
    expect(webhookProvider("generic")).toBeUndefined();
    expect(webhookProvider("__proto__")).toBeUndefined();
    expect(webhookProvider("toString")).toBeUndefined();
  });
});
