-- lull's durable outbox: where a message goes when Redis is down or its answer is ambiguous,
-- so it can be answered 2xx and replayed into the buffers (in arrival order) once Redis answers
-- again. The `lull` function reaches it through SUPABASE_DB_URL (or LULL_DATABASE_URL).
--
-- Idempotent: every statement can run again on a database that already has it.

create schema if not exists lull;

create table if not exists lull.outbox (
  -- Arrival order: replay appends a conversation's rows by ascending seq.
  seq bigserial primary key,
  provider text not null,
  conversation text not null,
  -- Provider message id. Unique within (provider, conversation), as the Redis dedup set is:
  -- a provider redelivering during an outage is stored once.
  message_id text not null,
  -- The full InboundMessage as the edge validated it.
  message jsonb not null,
  created_at timestamptz not null default now(),
  constraint outbox_message_key unique (provider, conversation, message_id)
);

-- "Does this conversation have rows?" (every append while the outbox is configured) and the
-- per-conversation replay read.
create index if not exists outbox_conversation_seq_idx on lull.outbox (conversation, seq);

-- Not part of the public API: PostgREST's roles get nothing; the function connects as the
-- database owner (postgres) or service_role.
revoke all on schema lull from public;
revoke all on all tables in schema lull from public;

do $$
declare
  r text;
begin
  foreach r in array array['anon', 'authenticated'] loop
    if exists (select 1 from pg_roles where rolname = r) then
      execute format('revoke all on schema lull from %I', r);
      execute format('revoke all on all tables in schema lull from %I', r);
      execute format('revoke all on all sequences in schema lull from %I', r);
    end if;
  end loop;
  foreach r in array array['postgres', 'service_role'] loop
    if exists (select 1 from pg_roles where rolname = r) then
      execute format('grant usage on schema lull to %I', r);
      execute format('grant select, insert, delete on lull.outbox to %I', r);
      execute format('grant usage, select on sequence lull.outbox_seq_seq to %I', r);
    end if;
  end loop;
end
$$;
