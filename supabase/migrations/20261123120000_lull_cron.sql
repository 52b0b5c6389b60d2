-- lull's durable sweep: Supabase Cron (pg_cron) calls POST /functions/v1/lull/flush every
-- 5 seconds through pg_net. The sweep flushes due buffers, retries batches whose backoff has
-- elapsed and reclaims batches of crashed flushers; the in-isolate timers are only the fast path.
--
-- Before (or after) applying this migration, store two secrets in Vault:
--   select vault.create_secret('https://<project-ref>.supabase.co', 'lull_project_url');
--   select vault.create_secret('<the value of LULL_CRON_SECRET>', 'lull_cron_secret');
-- The job reads them at every run, so rotating a secret needs no new migration
-- (vault.update_secret). Until they exist, each run posts nothing useful and is harmless.

create extension if not exists pg_cron with schema pg_catalog;
create extension if not exists pg_net with schema extensions;

-- Re-applying the migration replaces the job (cron.schedule upserts by name).
select cron.schedule(
  'lull-flush',
  '5 seconds', -- pg_cron >= 1.5 sub-minute interval syntax
  $$
  select net.http_post(
    url := (select decrypted_secret from vault.decrypted_secrets where name = 'lull_project_url')
      || '/functions/v1/lull/flush',
    headers := jsonb_build_object(
      'Content-Type', 'application/json',
      'Authorization', 'Bearer ' || (
        select decrypted_secret from vault.decrypted_secrets where name = 'lull_cron_secret'
      )
    ),
    body := '{}'::jsonb,
    -- A sweep may deliver several batches; give it time. Overlapping sweeps are safe (each
    -- conversation is flushed under its own lock).
    timeout_milliseconds := 25000
  ) as request_id;
  $$
);
