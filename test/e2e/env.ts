/** Environment shared by the e2e suites. */

/**
 * Small windows so the suites are quick; every cross-field invariant of the config still holds
 * (buffer TTL >= max wait + grace + 2 sweeps, timer TTL >= window + grace, lock > delivery).
 */
export const fastEnv: Record<string, string> = {
  LULL_WINDOW_MS: "600",
  LULL_GRACE_MS: "100",
  LULL_MAX_WAIT_MS: "5000",
  LULL_SWEEP_INTERVAL_MS: "1000",
  LULL_BUFFER_TTL_MS: "60000",
  LULL_TIMER_TTL_MS: "5000",
  LULL_DELIVERY_TIMEOUT_MS: "3000",
  LULL_LOCK_TTL_MS: "5000",
  LULL_RETRY_BASE_MS: "50",
  LULL_RETRY_MAX_MS: "200",
  LULL_RETRY_MAX_ATTEMPTS: "5",
  LULL_LOG_LEVEL: "warn",
};
