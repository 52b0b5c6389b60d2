-- lull's wake index in the project's Postgres: per partition (of one key prefix), the earliest
-- time the sweep has work there (a burst falling due, a retry, a lease to reap). With a database
-- configured the function lowers it here, once per burst and per state change that can move a due
-- time earlier, before it answers the webhook; the sweep visits the partitions whose time has
-- passed and settles them, and a timer that delivered its burst settles that partition itself.
-- Redis then runs no wake-index commands at all on a burst's way (7 a burst before), and the Redis
-- wake index is only the fallback for a lowering this database refused: the sweep reads both.
--
-- lull.take_wakeup (the Cron's test, 20261125120000_lull_wakeup.sql) now also fires when a
-- partition here is due, so the trigger stays idle-free: one row read and no call when nothing is.
-- Needs neither pg_cron nor pg_net. Idempotent: every statement can run again.

create schema if not exists lull;

create table if not exists lull.wake_index (
  -- The deployment's LULL_KEY_PREFIX: two deployments on one database (staging beside
  -- production) never settle each other's wake-ups.
  scope text not null,
  partition integer not null check (partition >= 0),
  -- Earliest time the sweep has work in this partition (Redis time, ms as timestamptz); null:
  -- nothing there. The row stays, so its epoch only ever grows.
  due_at timestamptz,
  -- Bumped by every lowering, so a settle can tell that one raced it.
  epoch bigint not null default 0,
  primary key (scope, partition)
);
create index if not exists wake_index_due on lull.wake_index (due_at) where due_at is not null;

-- The function, when a due time in `p` may have moved earlier than the partition's: lowers it
-- (never raises it) and answers the epoch this lowering left.
create or replace function lull.lower_partition_wake(sc text, p integer, at timestamptz)
returns bigint
language sql as $$
  insert into lull.wake_index as w (scope, partition, due_at, epoch) values (sc, p, at, 1)
  on conflict (scope, partition) do update
    set due_at = least(w.due_at, excluded.due_at), epoch = w.epoch + 1
  returning w.epoch;
$$;

-- The sweep (or the timer that delivered the burst whose lowering it holds), after it read `p`
-- at `seen_epoch` and recomputed the partition's earliest time from Redis (`next_at`, null when
-- nothing is left): replaces it, unless a lowering came in since; then only lowers it.
create or replace function lull.settle_partition_wake(
  sc text, p integer, seen_epoch bigint, next_at timestamptz
)
returns void
language sql as $$
  update lull.wake_index
     set due_at = case when epoch = seen_epoch then next_at else least(due_at, next_at) end
   where scope = sc and partition = p;
$$;

-- The sweep: the scope's partitions whose time is at or before `upto` (Redis time), earliest first.
create or replace function lull.due_partition_wakes(sc text, upto timestamptz, most integer)
returns table (partition integer, epoch bigint)
language sql stable as $$
  select w.partition, w.epoch from lull.wake_index w
   where w.scope = sc and w.due_at is not null and w.due_at <= upto
   order by w.due_at, w.partition
   limit most;
$$;

-- The trigger's test, as before, with the wake index's earliest time beside lull.wakeup's own.
create or replace function lull.take_wakeup(throttle interval, heartbeat interval)
returns boolean
language plpgsql as $$
declare
  fire boolean;
  due timestamptz := (select min(due_at) from lull.wake_index where due_at is not null);
begin
  update lull.wakeup
     set fired_at = now()
   where id
     and (
       (least(due_at, due) <= now() and (fired_at is null or fired_at <= now() - throttle))
       or fired_at is null
       or fired_at <= now() - heartbeat
     )
  returning true into fire;
  return coalesce(fire, false);
end
$$;

-- The earliest time anything is due, lull.wakeup's and the wake index's (GET /lull/health).
create or replace function lull.wakeup_due_at() returns timestamptz
language sql stable as $$
  select least(
    (select due_at from lull.wakeup where id),
    (select min(due_at) from lull.wake_index where due_at is not null)
  );
$$;

revoke all on lull.wake_index from public;
do $$
declare
  r text;
begin
  foreach r in array array['anon', 'authenticated'] loop
    if exists (select 1 from pg_roles where rolname = r) then
      execute format('revoke all on lull.wake_index from %I', r);
      execute format('revoke all on function lull.lower_partition_wake(text, integer, timestamptz) from %I', r);
      execute format('revoke all on function lull.settle_partition_wake(text, integer, bigint, timestamptz) from %I', r);
      execute format('revoke all on function lull.due_partition_wakes(text, timestamptz, integer) from %I', r);
      execute format('revoke all on function lull.wakeup_due_at() from %I', r);
    end if;
  end loop;
  foreach r in array array['postgres', 'service_role'] loop
    if exists (select 1 from pg_roles where rolname = r) then
      execute format('grant usage on schema lull to %I', r);
      execute format('grant select, insert, update on lull.wake_index to %I', r);
    end if;
  end loop;
end
$$;
