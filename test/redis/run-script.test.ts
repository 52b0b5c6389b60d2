import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BatchNotFoundError,
  ConversationBusyError,
  DeadLetterNotFoundError,
  LockLostError,
  RedisTimeoutError,
  RedisUnavailableError,
  ScriptError,
} from "../../src/core/errors.ts";
import type { RedisClient } from "../../src/redis/redis-client.ts";
import { mapScriptCode, runScript, ScriptCode } from "../../src/redis/run-script.ts";
import { createTcpClient } from "../../src/redis/tcp-client.ts";
import { getTime, listDue, type LuaScript } from "../../src/scripts/generated.ts";
import { type RedisServer, startRedisServer, testPrefix } from "../harness/redis-server.ts";

/** A scripted fake: each call pops the next behaviour and is recorded. */
function fakeClient(behaviours: (() => Promise<unknown>)[]) {
  const calls: { op: "evalsha" | "eval"; keys: string[] }[] = [];
  const next = () => {
    const b = behaviours.shift();
    if (!b) throw new Error("unexpected call");
    return b();
  };
  const client: RedisClient = {
    evalsha: (_sha, keys) => {
      calls.push({ op: "evalsha", keys });
      return next();
    },
    eval: (_src, keys) => {
      calls.push({ op: "eval", keys });
      return next();
    },
    close: async () => {},
  };
  return { client, calls };
}

const codeScript: LuaScript = {
  name: "codeScript",
  source: "return -1",
  sha1: "x",
  numKeys: 1,
  keyLocking: null,
};

describe("runScript picks the script form the client asks for", () => {
  const flaggable: LuaScript = {
    name: "flaggable",
    source: "return 1",
    sha1: "plain-sha",
    numKeys: 1,
    keyLocking: { source: "#!lua flags=allow-key-locking\nreturn 1", sha1: "flagged-sha" },
  };
  const sent = async (variant: RedisClient["scriptVariant"], script: LuaScript) => {
    const seen: string[] = [];
    const client: RedisClient = {
      ...(variant === undefined ? {} : { scriptVariant: variant }),
      evalsha: (sha) => {
        seen.push(sha);
        return Promise.reject(new Error("NOSCRIPT No matching script."));
      },
      eval: (source) => {
        seen.push(source);
        return Promise.resolve(1);
      },
      close: async () => {},
    };
    await runScript(client, script, ["k"], []);
    return seen;
  };

  it("sends the key-locking SHA and source to a keyLocking client", async () => {
    expect(await sent("keyLocking", flaggable)).toEqual([
      "flagged-sha",
      "#!lua flags=allow-key-locking\nreturn 1",
    ]);
  });

  it("sends the plain form to plain clients and by default", async () => {
    expect(await sent("plain", flaggable)).toEqual(["plain-sha", "return 1"]);
    expect(await sent(undefined, flaggable)).toEqual(["plain-sha", "return 1"]);
  });

  it("sends a script without a key-locking variant plain even to a keyLocking client", async () => {
    expect(await sent("keyLocking", { ...flaggable, keyLocking: null })).toEqual([
      "plain-sha",
      "return 1",
    ]);
  });
});

describe("runScript (fake client)", () => {
  it("never replays a timeout: one EVALSHA, the RedisTimeoutError passes through", async () => {
    const timeout = new RedisTimeoutError("no answer");
    const { client, calls } = fakeClient([() => Promise.reject(timeout)]);
    await expect(runScript(client, codeScript, ["k"], [])).rejects.toBe(timeout);
    expect(calls).toEqual([{ op: "evalsha", keys: ["k"] }]);
  });

  it("passes RedisUnavailableError through without EVAL", async () => {
    const down = new RedisUnavailableError("down");
    const { client, calls } = fakeClient([() => Promise.reject(down)]);
    await expect(runScript(client, codeScript, ["k"], [])).rejects.toBe(down);
    expect(calls).toHaveLength(1);
  });

  it("falls back to EVAL only on NOSCRIPT", async () => {
    const { client, calls } = fakeClient([
      () => Promise.reject(new Error("NOSCRIPT No matching script.")),
      () => Promise.resolve(7),
    ]);
    expect(await runScript(client, codeScript, ["k"], [])).toBe(7);
    expect(calls.map((c) => c.op)).toEqual(["evalsha", "eval"]);
  });

  it("a timeout during the EVAL fallback is not retried either", async () => {
    const timeout = new RedisTimeoutError("no answer");
    const { client, calls } = fakeClient([
      () => Promise.reject(new Error("NOSCRIPT No matching script.")),
      () => Promise.reject(timeout),
    ]);
    await expect(runScript(client, codeScript, ["k"], [])).rejects.toBe(timeout);
    expect(calls).toHaveLength(2);
  });

  it("other error replies become ScriptError naming the script", async () => {
    const { client } = fakeClient([() => Promise.reject(new Error("ERR wrong type"))]);
    const err = await runScript(client, codeScript, ["k"], []).then(
      () => null,
      (e: ScriptError) => e,
    );
    expect(err).toBeInstanceOf(ScriptError);
    expect(err?.script).toBe("codeScript");
    expect(err?.message).toContain("ERR wrong type");
  });

  it("replies by which Redis refuses to run anything (BUSY, LOADING) mean unavailable", async () => {
    for (const reply of ["BUSY Redis is busy running a script.", "LOADING Redis is loading"]) {
      const { client, calls } = fakeClient([() => Promise.reject(new Error(reply))]);
      await expect(runScript(client, codeScript, ["k"], [])).rejects.toBeInstanceOf(
        RedisUnavailableError,
      );
      expect(calls).toHaveLength(1);
    }
  });

  it("asserts the key count before sending anything", async () => {
    const { client, calls } = fakeClient([]);
    await expect(runScript(client, codeScript, [], [])).rejects.toBeInstanceOf(ScriptError);
    await expect(runScript(client, codeScript, ["a", "b"], [])).rejects.toThrow(/expected 1 keys/);
    expect(calls).toHaveLength(0);
  });

  it("maps each negative code to its typed error with context", async () => {
    const cases: [number, new (...a: never[]) => Error][] = [
      [ScriptCode.LOCK_LOST, LockLostError],
      [ScriptCode.BATCH_NOT_FOUND, BatchNotFoundError],
      [ScriptCode.DLQ_NOT_FOUND, DeadLetterNotFoundError],
      [ScriptCode.CONVERSATION_BUSY, ConversationBusyError],
      [-99, ScriptError],
    ];
    for (const [code, cls] of cases) {
      const { client } = fakeClient([() => Promise.resolve(code)]);
      const err = await runScript(client, codeScript, ["k"], [], {
        conversation: "c:1",
        batchId: "b_1",
      }).catch((e) => e);
      expect(err).toBeInstanceOf(cls);
    }
    expect(mapScriptCode(-1, "ackBatch", { conversation: "c:1" })).toMatchObject({
      conversation: "c:1",
      script: "ackBatch",
    });
    expect(mapScriptCode(-2, "ackBatch", { batchId: "b_1" })).toMatchObject({
      batchId: "b_1",
    });
    expect(mapScriptCode(-4, "requeueDeadLetter", { conversation: "c:1" }).code).toBe(
      "conversation_busy",
    );
  });

  it("non-negative replies pass through untouched", async () => {
    const { client } = fakeClient([() => Promise.resolve(0), () => Promise.resolve(["a", 1])]);
    expect(await runScript(client, codeScript, ["k"], [])).toBe(0);
    expect(await runScript(client, codeScript, ["k"], [])).toEqual(["a", 1]);
  });
});

describe("runScript (real redis-server)", () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  it("after SCRIPT FLUSH the first call falls back to EVAL, later calls use EVALSHA", async () => {
    const tcp = createTcpClient({ url: server.url });
    const ops: string[] = [];
    const observed: RedisClient = {
      evalsha: async (sha, keys, args) => {
        ops.push("evalsha");
        return await tcp.evalsha(sha, keys, args);
      },
      eval: async (src, keys, args) => {
        ops.push("eval");
        return await tcp.eval(src, keys, args);
      },
      close: () => tcp.close(),
    };
    await server.client.script("FLUSH");
    const now = await runScript(observed, getTime, [], []);
    expect(typeof now).toBe("number");
    expect(ops).toEqual(["evalsha", "eval"]);
    expect(typeof await runScript(observed, getTime, [], [])).toBe("number");
    expect(ops).toEqual(["evalsha", "eval", "evalsha"]);
    const due = `${testPrefix("rs")}:{p}:due`;
    expect(await runScript(observed, listDue, [due], [10])).toEqual([expect.any(Number), []]);
    expect(ops.slice(3)).toEqual(["evalsha", "eval"]);
    expect(await server.client.script("EXISTS", getTime.sha1)).toEqual([1]);
    await observed.close();
  });
});
