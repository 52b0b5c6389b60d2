/**
 * The only way lull runs a script: checks the key count, sends EVALSHA and falls back to EVAL
 * only on NOSCRIPT, never replays a timeout (the script may have committed), and turns the
 * scripts' negative return codes into typed errors in ONE place ({@link mapScriptCode}).
 */
import {
  BatchNotFoundError,
  ConversationBusyError,
  DeadLetterNotFoundError,
  LockLostError,
  LullError,
  RedisUnavailableError,
  ScriptError,
} from "../core/errors.ts";
import type { LuaScript } from "../scripts/generated.ts";
import type { RedisClient } from "./redis-client.ts";
import { NOT_RUN_REPLIES } from "./refusals.ts";

/** What the error classes need to say what failed. */
export interface ScriptContext {
  conversation?: string;
  batchId?: string;
}

/** Negative integers the scripts return (docs/state-machine.md "Return codes"). */
export const ScriptCode = {
  LOCK_LOST: -1,
  BATCH_NOT_FOUND: -2,
  DLQ_NOT_FOUND: -3,
  CONVERSATION_BUSY: -4,
} as const;

/** Maps a script's negative return code to its typed error. */
export function mapScriptCode(code: number, script: string, context: ScriptContext): LullError {
  const conversation = context.conversation ?? "";
  const batchId = context.batchId ?? "";
  switch (code) {
    case ScriptCode.LOCK_LOST:
      return new LockLostError(conversation, script);
    case ScriptCode.BATCH_NOT_FOUND:
      return new BatchNotFoundError(batchId, script);
    case ScriptCode.DLQ_NOT_FOUND:
      return new DeadLetterNotFoundError(batchId);
    case ScriptCode.CONVERSATION_BUSY:
      return new ConversationBusyError(conversation, script);
    default:
      return new ScriptError(script, `unknown return code ${code}`);
  }
}

function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith("NOSCRIPT");
}

/**
 * The source and SHA to send for `script` to `client`: the key-locking variant when the client
 * asks for it and the script has one (scripts touching keys outside KEYS have none), else plain.
 */
export function scriptForm(
  client: RedisClient,
  script: LuaScript,
): { readonly source: string; readonly sha1: string } {
  if (client.scriptVariant === "keyLocking" && script.keyLocking !== null) return script.keyLocking;
  return script;
}

/**
 * Runs `script` (in the form {@link scriptForm} picks) with `keys` and `args`. Resolves with the script's reply; rejects with the typed
 * error for a documented negative code, `ScriptError` for any other error reply, and passes
 * `RedisTimeoutError` / `RedisUnavailableError` (and other LullErrors) through unchanged.
 */
export async function runScript(
  client: RedisClient,
  script: LuaScript,
  keys: string[],
  args: (string | number)[],
  context: ScriptContext = {},
): Promise<unknown> {
  if (keys.length !== script.numKeys) {
    throw new ScriptError(
      script.name,
      `expected ${script.numKeys} keys, got ${keys.length} (a caller built the wrong key list)`,
    );
  }
  const form = scriptForm(client, script);
  let reply: unknown;
  try {
    reply = await client.evalsha(form.sha1, keys, args);
  } catch (err) {
    // Only NOSCRIPT proves the script did not run; a timeout may have committed, so it is
    // never retried here.
    if (!isNoScript(err)) throw wrapError(script.name, err);
    try {
      reply = await client.eval(form.source, keys, args);
    } catch (err2) {
      throw wrapError(script.name, err2);
    }
  }
  if (typeof reply === "number" && reply < 0) throw mapScriptCode(reply, script.name, context);
  return reply;
}

function wrapError(script: string, err: unknown): Error {
  if (err instanceof LullError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (NOT_RUN_REPLIES.some((code) => message.startsWith(code + " "))) {
    return new RedisUnavailableError(`redis refused script ${script}: ${message}`, { script }, err);
  }
  return new ScriptError(script, message, err);
}
