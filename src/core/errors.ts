/**
 * Typed errors. Each carries a stable `code`, the `cause` when there is one, and the context
 * that failed (the variable, the script, the conversation), so callers branch on classes and
 * logs say what went wrong without a stack trace.
 */

/** Base class of every error lull throws on purpose. */
export class LullError extends Error {
  /** Stable, machine-readable code (also used in HTTP error bodies). */
  readonly code: string;
  /** What was being done when it failed. */
  readonly context: Record<string, unknown>;

  constructor(
    code: string,
    message: string,
    context: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.context = context;
  }
}

/** Start-up configuration is invalid; `issues` names every variable involved. */
export class ConfigError extends LullError {
  readonly issues: { variables: string[]; message: string }[];
  constructor(issues: { variables: string[]; message: string }[]) {
    super(
      "invalid_config",
      "invalid lull configuration:\n" + issues.map((i) => `  - ${i.message}`).join("\n"),
      { variables: [...new Set(issues.flatMap((i) => i.variables))] },
    );
    this.issues = issues;
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

/** Redis could not be reached or answered with a transport error. Nothing is known to commit. */
export class RedisUnavailableError extends LullError {
  constructor(message: string, context: Record<string, unknown> = {}, cause?: unknown) {
    super("redis_unavailable", message, context, { cause });
  }
}

/**
 * A Redis call timed out. The command may have committed, so it is never replayed blindly;
 * callers treat the outcome as unknown.
 */
export class RedisTimeoutError extends LullError {
  constructor(message: string, context: Record<string, unknown> = {}, cause?: unknown) {
    super("redis_timeout", message, context, { cause });
  }
}

/** Redis' circuit breaker is open: fail fast instead of waiting on a dead server. */
export class CircuitOpenError extends LullError {
  constructor(name: string, retryAtMs: number) {
    super("circuit_open", `circuit '${name}' is open`, { name, retryAtMs });
  }
}

/** A script returned an error reply that is not one of its documented codes. */
export class ScriptError extends LullError {
  constructor(script: string, message: string, cause?: unknown) {
    super("script_error", `script ${script} failed: ${message}`, { script }, { cause });
  }
}

/** The flush lock is no longer ours (lease expired and someone else claimed, or released). */
export class LockLostError extends LullError {
  constructor(conversation: string, script: string) {
    super("lock_lost", `flush lock for the conversation was lost (${script})`, {
      conversation,
      script,
    });
  }
}

/** The batch named is not the conversation's current batch (already acked, reclaimed, ...). */
export class BatchNotFoundError extends LullError {
  constructor(batchId: string, script: string) {
    super("batch_not_found", `batch ${batchId} is not current (${script})`, { batchId, script });
  }
}

/** A DLQ operation named a batch that is not in the dead-letter queue. */
export class DeadLetterNotFoundError extends LullError {
  constructor(batchId: string) {
    super("dlq_not_found", `batch ${batchId} is not in the dead-letter queue`, { batchId });
  }
}

/** The conversation has a batch in flight or awaiting retry, so the operation must wait. */
export class ConversationBusyError extends LullError {
  constructor(conversation: string, operation: string) {
    super("conversation_busy", `conversation has a batch outstanding; ${operation} must wait`, {
      conversation,
      operation,
    });
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
    super("invalid_request", message, {});
    this.issues = issues;
  }
}
