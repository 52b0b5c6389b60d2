/**
 * The admin API's bearer check: `Authorization: Bearer <LULL_ADMIN_TOKEN>`, or 404 for the
 * whole surface when LULL_ADMIN_TOKEN is unset (an unconfigured deployment does not reveal it).
 */
import { splitTokens, tokenActor } from "../../core/audit.ts";
import { matchedBearer } from "../../core/bearer.ts";
import { jsonError } from "../../core/respond.ts";
import type { AppContext } from "../context.ts";

/**
 * `{ actor }` when authorised (the audit name of the token presented, see tokenActor), else
 * `{ denied }`, the response to send. LULL_ADMIN_TOKEN may be a comma list (rotation): any
 * listed token is accepted; every one is compared, so timing does not tell which matched.
 */
export async function authorise(
  req: Request,
  ctx: AppContext,
): Promise<{ denied: Response; actor?: undefined } | { denied?: undefined; actor: string }> {
  const expected = splitTokens(ctx.config.adminToken);
  if (expected.length === 0) return { denied: jsonError(404, "not_found", "not found") };
  const matched = matchedBearer(req.headers, expected);
  if (matched === null) {
    return {
      denied: jsonError(401, "unauthorized", "a valid admin bearer token is required", undefined, {
        "www-authenticate": 'Bearer realm="lull-admin"',
      }),
    };
  }
  return { actor: await tokenActor(matched) };
}
