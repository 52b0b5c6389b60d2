/**
 * `lull purge --conversation <key>`: a privacy request. Removes one person's data everywhere
 * lull keeps it, and leaves an audit record.
 */
import { ConversationBusyError } from "../../core/errors.ts";
import { maskConversation } from "../../core/mask.ts";
import { parseCommandArgs } from "../args.ts";
import { CommandError, UsageError } from "../cli-errors.ts";
import { type Command, out, outJson } from "../command.ts";
import { resolveConnection } from "../connect.ts";
import { openBackend } from "../backend.ts";
import { confirm, withProgress } from "../terminal.ts";

const help = `lull purge — remove one conversation's data everywhere (privacy requests)

Usage: lull purge --conversation <key> [--yes] [--url <url>] [--json]

Removes, for that conversation key only: the open buffer, a batch awaiting retry, the
remembered provider message ids (a webhook redelivered later is buffered again), the timer
marker and due entry, its dead letters, the events that name the raw key (written with
LULL_LOG_PII, delivered batches' texts among them; masked events name no one and hold texts as
<N chars> only), and its outbox rows in Postgres when a database is configured. Every other
conversation is untouched.
Kept on purpose: the fence (one number; fences never go back, so a later message from the same
person is still delivered with a higher fence), and the audit record of this purge (it names
the conversation by a masked label and a fingerprint only). Processed-batch records expire on
their own within LULL_PROCESSED_TTL_MS.
Refused while a batch of the conversation is in flight (exit 1): run it again once the delivery
settled (a second or two, up to LULL_DELIVERY_TIMEOUT_MS).

Asks for confirmation on a terminal; without one, refuses unless --yes.

Options:
  --conversation <key>  the conversation key, e.g. whatsapp:<phone_number_id>:<wa_id>
  --yes, -y             do not ask
  --url <url>           go through the function's admin API (needs LULL_ADMIN_TOKEN)
  --json                JSON output
  -h, --help            this help

Exit codes: 0 purged, 1 refused (busy, not confirmed) or cannot connect, 2 usage error.`;

/** `lull purge`. */
export const purgeCommand: Command = {
  name: "purge",
  summary: "remove one conversation's data everywhere (privacy request), audited",
  help,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs("purge", args, {
      conversation: { type: "string" },
      yes: { type: "boolean", short: "y" },
      url: { type: "string" },
    });
    if (positionals.length > 0) {
      throw new UsageError(`unexpected argument '${positionals[0]}'`, "purge");
    }
    const conversation = values.conversation;
    if (conversation === undefined || conversation === "") {
      throw new UsageError("--conversation <key> is required", "purge");
    }
    if (!values.yes && !process.stdin.isTTY) {
      throw new UsageError(
        "refusing to purge without a terminal to confirm on: pass --yes",
        "purge",
      );
    }
    if (!values.yes) {
      const ok = await confirm(`remove every trace of ${conversation} for good?`);
      if (!ok) {
        out("nothing purged");
        return 1;
      }
    }
    const conn = resolveConnection(ctx.env, ctx.cwd);
    const backend = openBackend(conn, values.url);
    try {
      const purged = await withProgress(
        `purging ${maskConversation(conversation, false)}`,
        () => backend.purgeConversation(conversation),
      );
      if (values.json) {
        outJson(purged);
        return 0;
      }
      out(
        `purged: ${purged.buffered} buffered message(s), ${purged.batchMessages} in a waiting ` +
          `batch, ${purged.dedupIds} dedup id(s), ${purged.events} event(s), ` +
          `${purged.deadLetters} dead letter(s), ` +
          (purged.outboxRows === null
            ? "no outbox configured"
            : `${purged.outboxRows} outbox row(s)`) +
          "; the fence is kept",
      );
      return 0;
    } catch (e) {
      if (e instanceof ConversationBusyError) {
        throw new CommandError(
          e.code,
          "a batch of this conversation is being delivered right now; run the purge again in a " +
            "moment",
        );
      }
      throw e;
    } finally {
      await backend.close();
    }
  },
};
