-- The durable trigger, now driven by lull.wakeup (20261125120000_lull_wakeup.sql): pg_cron
-- still runs every 5 seconds, but the job only evaluates lull.take_wakeup() in SQL, and posts to
-- POST /functions/v1/lull/flush through pg_net only when something is due (at most once per
-- 4 s), or as the once-a-minute heartbeat. Idle: one function call a minute instead of twelve.
--
-- Replaces the every-5-seconds job of 20261123120000_lull_cron.sql (same job name: cron.schedule
-- upserts it). Needs the two Vault secrets that migration describes. Idempotent.

create extension if not exists pg_cron with schema pg_catalog;
create extension if not exists pg_net with schema extensions;

-- Every 5 seconds pg_cron asks take_wakeup; only a `true` posts to the sweep.
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
    timeout_milliseconds := 25000
  ) as request_id
  where lull.take_wakeup(interval '4 seconds', interval '60 seconds');
  $$
);
