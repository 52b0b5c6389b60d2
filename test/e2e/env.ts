/** Environment shared by the e2e suites. */

/**
 * Small windows so the suites are quick; every cross-field invariant of the config still holds
 * (timer TTL >= window + grace, lock >= delivery + 5 s margin, dedup >= retry max age).
 */
export const fastEnv: Record<string, string> = {
  LULL_WINDOW_MS: "600",
  LULL_GRACE_MS: "100",
  LULL_MAX_WAIT_MS: "5000",
  LULL_SWEEP_INTERVAL_MS: "1000",
  LULL_TIMER_TTL_MS: "5000",
  LULL_DELIVERY_TIMEOUT_MS: "3000",
  LULL_LOCK_TTL_MS: "8000",
  LULL_RETRY_BASE_MS: "50",
  LULL_RETRY_MAX_MS: "200",
  LULL_RETRY_MAX_ATTEMPTS: "5",
  LULL_LOG_LEVEL: "warn",
};
