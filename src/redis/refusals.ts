/**
 * Error replies by which Redis refuses a command without running it (loading a dataset, busy
 * with another script, failing over): the script surely did not run, like a closed connection,
 * so the caller may call Redis unavailable instead of "may have committed". The one list both
 * runScript (TCP replies) and the Upstash adapter (its error bodies) match against.
 */
export const NOT_RUN_REPLIES: readonly string[] = [
  "LOADING",
  "BUSY",
  "MASTERDOWN",
  "CLUSTERDOWN",
  "TRYAGAIN",
];
