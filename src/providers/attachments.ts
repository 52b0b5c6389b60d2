/**
 * Helpers the adapters share to build normalised {@link Attachment}s and sender identities:
 * absent fields stay absent (never `undefined` or null in the delivered JSON), and a media type
 * tells the kind when the provider does not (Twilio).
 */
import type { Attachment, AttachmentKind } from "../core/types.ts";
import type { SenderIdentity } from "./types.ts";

/** A copy of `o` without its `undefined` fields. */
export function compact<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** An attachment with its absent fields dropped. */
export function attachment(a: Attachment): Attachment {
  const out = compact(a);
  if (out.contact !== undefined) out.contact = compact(out.contact);
  return out;
}

/** The identity with its absent fields dropped. */
export function senderIdentity(s: SenderIdentity): SenderIdentity {
  return compact(s);
}

/** vCard media types: a shared contact card sent as a file (Twilio MMS). */
const VCARD = new Set(["text/vcard", "text/x-vcard", "text/directory"]);

/** The kind of a file from its media type: image/*, audio/*, video/*, a vCard, else document. */
export function kindOfMimeType(mimeType: string | undefined): AttachmentKind {
  const type = (mimeType ?? "").split(";")[0]!.trim().toLowerCase();
  if (type.startsWith("image/")) return "image";
  if (type.startsWith("audio/")) return "audio";
  if (type.startsWith("video/")) return "video";
  if (VCARD.has(type)) return "contact";
  return "document";
}
