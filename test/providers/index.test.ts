import { describe, expect, it } from "vitest";
import { matchRoute } from "../../src/http/routes.ts";
import { providers } from "../../src/providers/index.ts";
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

  // The route table is what maps /webhooks/<name> (the unused webhookProvider lookup is gone).
  it("maps /webhooks/<name> to the named providers only", () => {
    expect(matchRoute("/lull/webhooks/whatsapp")?.name).toBe("webhook_whatsapp");
    expect(matchRoute("/lull/webhooks/telegram")?.name).toBe("webhook_telegram");
    expect(matchRoute("/lull/webhooks/twilio")?.name).toBe("webhook_twilio");
    expect(matchRoute("/lull/webhooks/generic")).toBeNull();
    expect(matchRoute("/lull/webhooks/__proto__")).toBeNull();
    expect(matchRoute("/lull/webhooks/toString")).toBeNull();
  });
});
