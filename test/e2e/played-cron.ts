/**
 * The Cron job of supabase/migrations/*_lull_cron_wakeup.sql, played for end-to-end tests the
 * way it runs deployed, only faster: every 100 ms ask lull.take_wakeup() (through the function's
 * own Wakeup port), and call POST /lull/flush only when it says so.
 */
import type { Wakeup } from "../../src/wakeup/wakeup.ts";

/** A running played Cron. */
export interface PlayedCron {
  /** Sweeps it called so far. */
  readonly sweeps: number;
  /** While paused it neither asks nor calls. */
  paused: boolean;
  /** The heartbeat take_wakeup is asked with, ms (deployed: 60 000). */
  heartbeatMs: number;
  stop(): Promise<void>;
}

/** Starts it; `lullUrl()` is asked each time (undefined while no function is up). */
export function playCron(
  wakeup: Wakeup,
  lullUrl: () => string | undefined,
  cronSecret: string,
  options: { heartbeatMs?: number } = {},
): PlayedCron {
  let stopped = false;
  const cron = {
    sweeps: 0,
    paused: false,
    heartbeatMs: options.heartbeatMs ?? 60_000,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
  const loop = (async () => {
    while (!stopped) {
      const url = lullUrl();
      if (url !== undefined && !cron.paused) {
        const fire = await wakeup.take(150, cron.heartbeatMs).catch(() => false);
        if (fire) {
          cron.sweeps++;
          await fetch(`${url}/flush`, {
            method: "POST",
            headers: { authorization: `Bearer ${cronSecret}` },
          }).then((res) => res.body?.cancel(), () => {});
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return cron;
}
