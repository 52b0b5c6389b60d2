/**
 * The audit actor of a CLI command acting on Redis directly (not through the admin API, which
 * audits its callers itself): `cli:<os user>`.
 */
import { userInfo } from "node:os";

/** `cli:<os user>` (the login name; `cli:unknown` where the platform cannot tell). */
export function cliActor(env: Record<string, string | undefined> = process.env): string {
  let name = "";
  try {
    name = userInfo().username;
  } catch {
    name = env.USER ?? env.USERNAME ?? "";
  }
  return `cli:${name.trim() || "unknown"}`;
}
