/**
 * `lull dlq list | show | requeue | delete | purge`: the dead-letter queue, read and changed
 * directly in the store (each change is one atomic script).
 */
import type { DeadLetter } from "../../core/types.ts";
import { ConversationBusyError, DeadLetterNotFoundError } from "../../core/errors.ts";
import { maskConversation, maskText } from "../../core/mask.ts";
import { intOption, parseCommandArgs } from "../args.ts";
import { CommandError, UsageError } from "../cli-errors.ts";
import { type Command, out, outJson } from "../command.ts";
import { resolveConnection } from "../connect.ts";
import { type CliBackend, openBackend } from "../backend.ts";
import { formatDurationMs } from "../duration.ts";
import { confirm, palette, table, withProgress } from "../terminal.ts";

const help = `lull dlq — the dead-letter queue

Usage:
  lull dlq list [--limit <n>]      dead batches, newest first (without their messages)
  lull dlq show <batchId>          one dead batch: attempts, last error, every message
  lull dlq requeue <batchId>       put it back as its conversation's next batch (reason
                                   "requeue", attempts reset); the next sweep delivers it
  lull dlq delete <batchId>        drop it for good
  lull dlq purge [--yes]           drop every dead batch (asks first; without a terminal,
                                   refuses unless --yes)

Options:
  --show-pii    show conversation keys and message texts unmasked
  --url <url>   go through the function's admin API (needs LULL_ADMIN_TOKEN)
  --json        JSON output
  -h, --help    this help

Exit codes: 0 ok, 1 not found / conversation busy / cannot connect, 2 usage error (also: purge
without a terminal and without --yes).`;

/** Masks the personal parts of a dead letter unless `showPii`. */
function maskDeadLetter(d: DeadLetter, showPii: boolean): DeadLetter {
  if (showPii) return d;
  return {
    ...d,
    ...maskSummary(d, false),
    messages: maskMessages(d, showPii),
    // Masked at the source unless LULL_LOG_PII; a body stored in clear is masked here too.
    responseBody: /^<\d+ chars>$/.test(d.responseBody ?? "")
      ? d.responseBody
      : maskText(d.responseBody ?? "", false),
  };
}

/** Masks a list entry's conversation unless `showPii`. */
function maskSummary<T extends { conversation: string }>(d: T, showPii: boolean): T {
  return showPii ? d : { ...d, conversation: maskConversation(d.conversation, false) };
}

function maskMessages(d: DeadLetter, showPii: boolean): DeadLetter["messages"] {
  if (showPii) return d.messages;
  return d.messages.map((m) => ({
    ...m,
    text: maskText(m.text, false),
    ...(m.sender === undefined ? {} : { sender: maskConversation(m.sender, false) }),
  }));
}

/** Deletes every dead letter, a page at a time (a page is at most 1000 over HTTP). */
async function purgeAll(backend: CliBackend): Promise<number> {
  let deleted = 0;
  for (;;) {
    const page = await backend.dlqList(1000);
    let progress = 0;
    for (const d of page) {
      if (await backend.dlqDelete(d.batchId)) progress++;
    }
    deleted += progress;
    // Stop on an empty page, or if nothing could be deleted (someone else is purging too).
    if (page.length === 0 || progress === 0) return deleted;
  }
}

/** `lull dlq`. */
export const dlqCommand: Command = {
  name: "dlq",
  summary: "dead-letter queue: list | show <id> | requeue <id> | delete <id> | purge",
  help,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs("dlq", args, {
      limit: { type: "string" },
      yes: { type: "boolean", short: "y" },
      "show-pii": { type: "boolean" },
      url: { type: "string" },
    });
    const [action, id, extra] = positionals;
    if (action === undefined) {
      throw new UsageError("missing action: list, show, requeue, delete or purge", "dlq");
    }
    if (extra !== undefined) throw new UsageError(`unexpected argument '${extra}'`, "dlq");
    const needsId = ["show", "requeue", "delete"].includes(action);
    if (!needsId && !["list", "purge"].includes(action)) {
      throw new UsageError(`unknown action '${action}'`, "dlq");
    }
    if (needsId && id === undefined) throw new UsageError(`dlq ${action} needs a batch id`, "dlq");
    if (!needsId && id !== undefined) throw new UsageError(`unexpected argument '${id}'`, "dlq");
    const limit = intOption("dlq", "limit", values.limit, 50);
    if (action === "purge" && !values.yes && !process.stdin.isTTY) {
      throw new UsageError("refusing to purge without a terminal to confirm on: pass --yes", "dlq");
    }
    const showPii = values["show-pii"] === true;
    const p = palette();
    const conn = resolveConnection(ctx.env, ctx.cwd);
    const store = openBackend(conn, values.url);
    try {
      switch (action) {
        case "list": {
          const dead = await withProgress("reading the DLQ", () => store.dlqList(limit));
          const shown = dead.map((d) => maskSummary(d, showPii));
          if (values.json) {
            outJson(shown);
            return 0;
          }
          if (shown.length === 0) {
            out(p.dim("the dead-letter queue is empty"));
            return 0;
          }
          const now = Date.now();
          out(table(
            ["BATCH ID", "CONVERSATION", "MSGS", "ATTEMPTS", "DEAD", "LAST ERROR"],
            shown.map((d) => [
              d.batchId,
              d.conversation,
              String(d.size),
              String(d.attempts),
              formatDurationMs(now - Date.parse(d.deadAt)) + " ago",
              d.lastError.replace(/\s+/g, " ").slice(0, 60),
            ]),
            p,
          ));
          return 0;
        }
        case "show": {
          const d = await store.dlqGet(id!);
          if (!d) throw new DeadLetterNotFoundError(id!);
          const shown = maskDeadLetter(d, showPii);
          if (values.json) {
            outJson(shown);
            return 0;
          }
          out(`${p.bold("batch")}         ${shown.batchId}`);
          out(`${p.bold("conversation")}  ${shown.conversation} (partition ${shown.partition})`);
          out(`${p.bold("fence")}         ${shown.fence}`);
          out(`${p.bold("attempts")}      ${shown.attempts}`);
          out(`${p.bold("reason")}        ${shown.reason}`);
          out(`${p.bold("last error")}    ${p.red(shown.lastError)}`);
          out(`${p.bold("response")}      ${shown.responseBody || p.dim("(no body)")}`);
          out(`${p.bold("first/last")}    ${shown.firstAt} … ${shown.lastAt}`);
          out(`${p.bold("created")}       ${shown.createdAt}`);
          out(`${p.bold("dead at")}       ${shown.deadAt}`);
          out(p.bold(`messages (${shown.messages.length})`));
          for (const m of shown.messages) {
            out(`  ${p.dim(m.receivedAt)}  ${m.id}  ${m.provider}  ${m.text}`);
          }
          return 0;
        }
        case "requeue": {
          try {
            const r = await store.dlqRequeue(id!);
            if (values.json) {
              outJson({ requeued: id, conversation: maskConversation(r.conversation, showPii) });
            } else {
              out(
                `requeued ${id} as the next batch of ${
                  maskConversation(r.conversation, showPii)
                }; ` +
                  "the next flush (timer or sweep) delivers it",
              );
            }
            return 0;
          } catch (e) {
            if (e instanceof ConversationBusyError) {
              throw new CommandError(
                e.code,
                `conversation has a batch outstanding; requeue ${id} once it is delivered`,
              );
            }
            throw e;
          }
        }
        case "delete": {
          const existed = await store.dlqDelete(id!);
          if (!existed) throw new DeadLetterNotFoundError(id!);
          if (values.json) outJson({ deleted: id });
          else out(`deleted ${id}`);
          return 0;
        }
        case "purge": {
          const count = (await withProgress("reading the DLQ", () => store.stats())).dlqSize;
          if (count === 0) {
            if (values.json) outJson({ deleted: 0 });
            else out(p.dim("the dead-letter queue is already empty"));
            return 0;
          }
          if (!values.yes) {
            const ok = await confirm(`delete all ${count} dead batch(es) for good?`);
            if (!ok) {
              out("nothing deleted");
              return 1;
            }
          }
          const deleted = await withProgress(
            `deleting ${count} dead batches`,
            () => purgeAll(store),
          );
          if (values.json) outJson({ deleted });
          else out(`deleted ${deleted} dead batch(es)`);
          return 0;
        }
      }
      return 2;
    } finally {
      await store.close();
    }
  },
};
