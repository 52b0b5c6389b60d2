/** The provider variables of the environment schema: Telegram bots, forum topics, body deadline. */
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/core/config.ts";
import { ConfigError } from "../../src/core/errors.ts";

const issuesOf = (env: Record<string, string>) => {
  try {
    parseConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error("expected a ConfigError");
};

describe("config: TELEGRAM_WEBHOOK_SECRET", () => {
  it("one secret is the bot `default`; unset is no bot at all", () => {
    expect(parseConfig({ TELEGRAM_WEBHOOK_SECRET: "s3cret_-X" }).telegramBots).toEqual([
      { name: "default", secret: "s3cret_-X" },
    ]);
    expect(parseConfig({}).telegramBots).toEqual([]);
    expect(parseConfig({ TELEGRAM_WEBHOOK_SECRET: " " }).telegramBots).toEqual([]);
  });

  it("name=secret,... names each bot (spaces around entries ignored)", () => {
    expect(parseConfig({ TELEGRAM_WEBHOOK_SECRET: "sales=a1, support = b-2" }).telegramBots)
      .toEqual([{ name: "sales", secret: "a1" }, { name: "support", secret: "b-2" }]);
    expect(parseConfig({ TELEGRAM_WEBHOOK_SECRET: "only=one" }).telegramBots).toEqual([
      { name: "only", secret: "one" },
    ]);
  });

  it.each([
    ["a list entry without a name", "sales=a1,b2", /bot names/],
    ["a bot name with a slash", "sa/les=a1", /bot names/],
    ["an empty secret", "sales=", /secret of bot 'sales'/],
    ["a secret Telegram would refuse", "sales=no spaces", /secret of bot 'sales'/],
    ["the same bot twice", "sales=a1,sales=a2", /names bot 'sales' twice/],
  ])("rejects %s, naming the variable", (_, value, why) => {
    const issues = issuesOf({ TELEGRAM_WEBHOOK_SECRET: value });
    expect(issues).toHaveLength(1);
    expect(issues[0]!.variables).toEqual(["TELEGRAM_WEBHOOK_SECRET"]);
    expect(issues[0]!.message).toMatch(/^TELEGRAM_WEBHOOK_SECRET /);
    expect(issues[0]!.message).toMatch(why);
  });
});

describe("config: TELEGRAM_FORUM_TOPICS and LULL_BODY_TIMEOUT_MS", () => {
  it("defaults: topics are conversations, bodies get 10 s", () => {
    const c = parseConfig({});
    expect(c.telegramForumTopics).toBe(true);
    expect(c.bodyTimeoutMs).toBe(10000);
    expect(parseConfig({ TELEGRAM_FORUM_TOPICS: "false" }).telegramForumTopics).toBe(false);
    expect(parseConfig({ LULL_BODY_TIMEOUT_MS: "2500" }).bodyTimeoutMs).toBe(2500);
  });

  it.each([
    [{ TELEGRAM_FORUM_TOPICS: "maybe" }, "TELEGRAM_FORUM_TOPICS"],
    [{ LULL_BODY_TIMEOUT_MS: "50" }, "LULL_BODY_TIMEOUT_MS"],
    [{ LULL_BODY_TIMEOUT_MS: "soon" }, "LULL_BODY_TIMEOUT_MS"],
  ])("rejects %j, naming the variable", (env, variable) => {
    expect(issuesOf(env as Record<string, string>)[0]!.variables).toEqual([variable]);
  });
});
