/**
 * Typed errors. Each carries a stable `code`, the `cause` when there is one, and what failed as
 * typed readonly fields of its class (the variables, the script, the conversation), so callers
 * branch on classes and read fields the compiler checks, and logs say what went wrong without a
 * stack trace.
 */

/** Base class of every error lull throws on purpose. */
export class LullError extends Error {
  /** Stable, machine-readable code (also used in HTTP error bodies). */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Start-up configuration is invalid; `issues` names every variable involved. */
export class ConfigError extends LullError {
  readonly issues: { variables: string[]; message: string }[];
  /** Every variable named by an issue, once. */
  readonly variables: readonly string[];
  constructor(issues: { variables: string[]; message: string }[]) {
    super(
      "invalid_config",
      "invalid lull configuration:\n" + issues.map((i) => `  - ${i.message}`).join("\n"),
    );
    this.issues = issues;
    this.variables = [...new Set(issues.flatMap((i) => i.variables))];
  }
}

/**
 * LULL_PARTITIONS differs from the count recorded in Redis: outstanding batches and their
 * queued buffers would sit in partitions nobody sweeps, so nothing runs until it is fixed.
 */
export class PartitionMismatchError extends ConfigError {
  readonly configured: number;
  readonly recorded: number;
  constructor(configured: number, recorded: number) {
    super([{
      variables: ["LULL_PARTITIONS"],
      message: `LULL_PARTITIONS is ${configured} but this Redis (key prefix) was laid out with ` +
        `${recorded} partitions; changing it would orphan outstanding batches. Set ` +
        `LULL_PARTITIONS=${recorded}, or use a new LULL_KEY_PREFIX for the new count`,
    }]);
    this.configured = configured;
    this.recorded = recorded;
  }
}

/**
 * The key prefix holds a data layout newer than this lull reads (a newer lull migrated it, and
 * this one was rolled back or is a stale isolate or CLI): it would misread live state, so nothing
 * runs until the newer lull is deployed again.
 */
export class LayoutVersionError extends ConfigError {
  readonly recorded: number;
  readonly supported: number;
  constructor(recorded: number, supported: number) {
    super([{
      variables: ["LULL_KEY_PREFIX"],
      message: `this Redis (key prefix) holds data layout version ${recorded}, written by a ` +
        `newer lull; this lull reads layout version ${supported} and would misread it. Deploy ` +
        `a lull that reads layout ${recorded}, or use a new LULL_KEY_PREFIX`,
    }]);
    this.recorded = recorded;
    this.supported = supported;
  }
}

/** What a failed Redis call was: each field set where the transport knows it. */
export interface RedisCallDetails {
  /** The command or REST operation (`evalsha`, `ping`, ...). */
  op?: string;
  /** host:port (TCP) or the REST host, without credentials. */
  host?: string;
  /** The script, when the call ran one. */
  script?: string;
  /** The script's SHA1, when the call was an EVALSHA. */
  sha1?: string;
  /** The deadline the call missed, ms. */
  timeoutMs?: number;
  /** The HTTP status of a REST answer. */
  status?: number;
}

/** Base of the two Redis transport errors: the call's details as typed fields. */
abstract class RedisCallError extends LullError implements RedisCallDetails {
  readonly op?: string;
  readonly host?: string;
  readonly script?: string;
  readonly sha1?: string;
  readonly timeoutMs?: number;
  readonly status?: number;
  constructor(code: string, message: string, details: RedisCallDetails, cause?: unknown) {
    super(code, message, { cause });
    this.op = details.op;
    this.host = details.host;
    this.script = details.script;
    this.sha1 = details.sha1;
    this.timeoutMs = details.timeoutMs;
    this.status = details.status;
  }
}

/** Redis could not be reached or answered with a transport error. Nothing is known to commit. */
export class RedisUnavailableError extends RedisCallError {
  constructor(message: string, details: RedisCallDetails = {}, cause?: unknown) {
    super("redis_unavailable", message, details, cause);
  }
}

/**
 * A Redis call timed out. The command may have committed, so it is never replayed blindly;
 * callers treat the outcome as unknown.
 */
export class RedisTimeoutError extends RedisCallError {
  constructor(message: string, details: RedisCallDetails = {}, cause?: unknown) {
    super("redis_timeout", message, details, cause);
  }
}

/** Redis' circuit breaker is open: fail fast instead of waiting on a dead server. */
export class CircuitOpenError extends LullError {
  /** Which breaker (`redis`, `processor`). */
  readonly breaker: string;
  /** When it lets a trial call through, ms. */
  readonly retryAtMs: number;
  constructor(breaker: string, retryAtMs: number) {
    super("circuit_open", `circuit '${breaker}' is open`);
    this.breaker = breaker;
    this.retryAtMs = retryAtMs;
  }
}

/** A script returned an error reply that is not one of its documented codes. */
export class ScriptError extends LullError {
  readonly script: string;
  constructor(script: string, message: string, cause?: unknown) {
    super("script_error", `script ${script} failed: ${message}`, { cause });
    this.script = script;
  }
}

/** The flush lock is no longer ours (lease expired and someone else claimed, or released). */
export class LockLostError extends LullError {
  readonly conversation: string;
  readonly script: string;
  constructor(conversation: string, script: string) {
    super("lock_lost", `flush lock for the conversation was lost (${script})`);
    this.conversation = conversation;
    this.script = script;
  }
}

/** The batch named is not the conversation's current batch (already acked, reclaimed, ...). */
export class BatchNotFoundError extends LullError {
  readonly batchId: string;
  readonly script: string;
  constructor(batchId: string, script: string) {
    super("batch_not_found", `batch ${batchId} is not current (${script})`);
    this.batchId = batchId;
    this.script = script;
  }
}

/** A DLQ operation named a batch that is not in the dead-letter queue. */
export class DeadLetterNotFoundError extends LullError {
  readonly batchId: string;
  constructor(batchId: string) {
    super("dlq_not_found", `batch ${batchId} is not in the dead-letter queue`);
    this.batchId = batchId;
  }
}

/** The conversation has a batch in flight or awaiting retry, so the operation must wait. */
export class ConversationBusyError extends LullError {
  readonly conversation: string;
  readonly operation: string;
  constructor(conversation: string, operation: string) {
    super("conversation_busy", `conversation has a batch outstanding; ${operation} must wait`);
    this.conversation = conversation;
    this.operation = operation;
  }
}

/** One validation issue, as {@link ValidationError} carries it and error bodies show it. */
export type Issue = { path: (string | number)[]; message: string };

/**
 * Zod's issues (or any schema library's of the same shape) trimmed to path + message; a symbol
 * in a path becomes its string.
 */
export function zodIssues(
  error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] },
): Issue[] {
  return error.issues.map((i) => ({
    path: i.path.map((p) => (typeof p === "number" ? p : String(p))),
    message: i.message,
  }));
}

/** Inbound payload failed validation at the edge. `issues` are zod's, trimmed to path+message. */
export class ValidationError extends LullError {
  readonly issues: Issue[];
  constructor(message: string, issues: Issue[] = []) {
    super("invalid_request", message);
    this.issues = issues;
  }
}
