-- lull's wake-up: the durable trigger fires only when something is due. The `lull` function keeps
-- in lull.wakeup the earliest time its sweep has work (a burst falling due, a retry, a lease to
-- reap), lowered per burst (not per message) and reset by each sweep; pg_cron evaluates it in
-- SQL every few seconds and calls POST /functions/v1/lull/flush through pg_net only when it has
-- passed, plus one heartbeat a minute (which covers a lowering lost with a killed isolate, and
-- keeps "last sweep" in /lull/health fresh). Idle costs one function call a minute.
--
-- The Cron job that reads it is 20261125120100_lull_cron_wakeup.sql; this file needs neither
-- pg_cron nor pg_net (`lull dev` applies it to its private PostgreSQL and plays the job itself).
-- Idempotent: every statement can run again on a database that already has it.

create schema if not exists lull;

create table if not exists lull.wakeup (
  -- One row.
  id boolean primary key default true check (id),
  -- Earliest time the sweep has something to do (Redis time, as the function saw it); null: idle.
  due_at timestamptz,
  -- Bumped by every lowering, so a sweep that read it can tell whether it raced one.
  version bigint not null default 0,
  -- Last time the trigger called the sweep, and the last time a sweep reported back.
  fired_at timestamptz,
  swept_at timestamptz
);
insert into lull.wakeup (id) values (true) on conflict (id) do nothing;

-- The function, per burst (off its response path): the sweep has work at `at` at the latest.
create or replace function lull.lower_wakeup(at timestamptz) returns void
language sql as $$
  update lull.wakeup set due_at = least(due_at, at), version = version + 1 where id;
$$;

-- The function, after a sweep that started when the row had `seen_version`: the next wake-up is
-- `next_at` (null: nothing pending anywhere). A lowering that raced the sweep is kept.
create or replace function lull.settle_wakeup(seen_version bigint, next_at timestamptz)
returns void
language sql as $$
  update lull.wakeup
     set due_at = case when version = seen_version then next_at else least(due_at, next_at) end,
         swept_at = now()
   where id;
$$;

-- The trigger: whether to call the sweep now (something due, at most once per `throttle`; or a
-- heartbeat once per `heartbeat`), recording the call. One row update, no function call, when
-- there is nothing to do.
create or replace function lull.take_wakeup(throttle interval, heartbeat interval)
returns boolean
language plpgsql as $$
declare
  fire boolean;
begin
  update lull.wakeup
     set fired_at = now()
   where id
     and (
       (due_at is not null and due_at <= now() and (fired_at is null or fired_at <= now() - throttle))
       or fired_at is null
       or fired_at <= now() - heartbeat
     )
  returning true into fire;
  return coalesce(fire, false);
end
$$;

revoke all on lull.wakeup from public;
do $$
declare
  r text;
begin
  foreach r in array array['anon', 'authenticated'] loop
    if exists (select 1 from pg_roles where rolname = r) then
      execute format('revoke all on lull.wakeup from %I', r);
      execute format('revoke all on function lull.lower_wakeup(timestamptz) from %I', r);
      execute format('revoke all on function lull.settle_wakeup(bigint, timestamptz) from %I', r);
      execute format('revoke all on function lull.take_wakeup(interval, interval) from %I', r);
    end if;
  end loop;
  foreach r in array array['postgres', 'service_role'] loop
    if exists (select 1 from pg_roles where rolname = r) then
      execute format('grant usage on schema lull to %I', r);
      execute format('grant select, update on lull.wakeup to %I', r);
    end if;
  end loop;
end
$$;
