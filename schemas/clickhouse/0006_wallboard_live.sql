-- Serving tables for the wallboard ("all queues of a tenant, now"), fed by materialized views from
-- the tables the sink already writes, so that "now" reads thousands of rows, not millions.
--
-- queue_interval_counters: the queue_interval_stats states the wallboard needs, plus `rows`, the
-- number of call-fact rows the interval has received (duplicates included). `rows` only grows:
-- any insert into the interval (new, late or duplicate) raises it and merges never change it, and
-- it is written in the same part as the states. So it is the interval's version: counters read
-- with a given `rows` stay exact while `rows` is unchanged, and the wallboard re-reads only the
-- intervals whose version moved (see ccod_fs/reports/library.py). Small granules, read with
-- PREWHERE: ClickHouse decodes whole granules, so re-reading one interval decodes a few states,
-- not those of the day.
CREATE TABLE IF NOT EXISTS queue_interval_counters
(
    tenant_id      LowCardinality(String),
    interval_start DateTime('UTC'),
    queue_id       LowCardinality(String),
    rows           AggregateFunction(sum, UInt64),
    offered        AggregateFunction(uniqExact, UInt64),
    answered       AggregateFunction(uniqExact, UInt64),
    abandoned      AggregateFunction(uniqExact, UInt64),
    answer_waits   AggregateFunction(groupUniqArray, UInt64),
    abandon_waits  AggregateFunction(groupUniqArray, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(interval_start)
ORDER BY (tenant_id, interval_start, queue_id)
TTL interval_start + INTERVAL 800 DAY
SETTINGS index_granularity = 8;

CREATE MATERIALIZED VIEW IF NOT EXISTS queue_interval_counters_mv TO queue_interval_counters AS
SELECT
    tenant_id,
    toStartOfFifteenMinutes(at) AS interval_start,
    queue_id,
    sumIfState(toUInt64(1), 1) AS rows,
    uniqExactIfState(cityHash64(call_id), queued_at IS NOT NULL) AS offered,
    uniqExactIfState(cityHash64(call_id), answered_at IS NOT NULL) AS answered,
    uniqExactIfState(cityHash64(call_id), ifNull(outcome, '') = 'abandoned') AS abandoned,
    groupUniqArrayIfState(
        bitOr(bitShiftLeft(cityHash64(call_id) % 68719476736, 28), least(assumeNotNull(answer_wait_ms), 268435455)),
        answered_at IS NOT NULL) AS answer_waits,
    groupUniqArrayIfState(
        bitOr(bitShiftLeft(cityHash64(call_id) % 68719476736, 28), least(assumeNotNull(dequeue_wait_ms), 268435455)),
        ifNull(outcome, '') = 'abandoned') AS abandon_waits
FROM calls_partial
WHERE queue_id != ''
GROUP BY tenant_id, interval_start, queue_id;

-- Existing call facts (a no-op on a fresh database). The MV above already exists, so no row is
-- missed; a row seen by both only repeats elements of idempotent sets (and raises `rows`).
INSERT INTO queue_interval_counters
SELECT
    tenant_id,
    toStartOfFifteenMinutes(at) AS interval_start,
    queue_id,
    sumIfState(toUInt64(1), 1) AS rows,
    uniqExactIfState(cityHash64(call_id), queued_at IS NOT NULL) AS offered,
    uniqExactIfState(cityHash64(call_id), answered_at IS NOT NULL) AS answered,
    uniqExactIfState(cityHash64(call_id), ifNull(outcome, '') = 'abandoned') AS abandoned,
    groupUniqArrayIfState(
        bitOr(bitShiftLeft(cityHash64(call_id) % 68719476736, 28), least(assumeNotNull(answer_wait_ms), 268435455)),
        answered_at IS NOT NULL) AS answer_waits,
    groupUniqArrayIfState(
        bitOr(bitShiftLeft(cityHash64(call_id) % 68719476736, 28), least(assumeNotNull(dequeue_wait_ms), 268435455)),
        ifNull(outcome, '') = 'abandoned') AS abandon_waits
FROM calls_partial
WHERE queue_id != ''
GROUP BY tenant_id, interval_start, queue_id;

-- queue_wait_events: only the call facts that start a queue wait (gone = 0: queued) or end it
-- (gone = 1: answered, dequeued, or the caller's hangup), narrow and sorted by (tenant, gone,
-- time), so "who waits now" reads two contiguous ranges of the last 4 hours: the calls that left,
-- then the queued calls not among them. Duplicates are harmless to that reader (set membership,
-- then min / any per call); ReplacingMergeTree drops them on merge anyway.
CREATE TABLE IF NOT EXISTS queue_wait_events
(
    tenant_id LowCardinality(String),
    gone      UInt8,
    at        DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    event_id  UUID,
    call_id   String,
    queue_id  LowCardinality(String),
    queued_at DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1))
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (tenant_id, gone, at, event_id)
TTL toDateTime(at) + INTERVAL 400 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS queue_wait_events_mv TO queue_wait_events AS
SELECT
    tenant_id,
    toUInt8(type != 'call.queued') AS gone,
    at,
    event_id,
    call_id,
    if(type = 'call.queued', queue_id, '') AS queue_id,
    if(type = 'call.queued', ifNull(queued_at, at), at) AS queued_at
FROM calls_partial
WHERE type IN ('call.queued', 'call.answered', 'call.dequeued')
   OR (type = 'call.ended' AND ended_at IS NOT NULL);

INSERT INTO queue_wait_events
SELECT
    tenant_id,
    toUInt8(type != 'call.queued') AS gone,
    at,
    event_id,
    call_id,
    if(type = 'call.queued', queue_id, '') AS queue_id,
    if(type = 'call.queued', ifNull(queued_at, at), at) AS queued_at
FROM calls_partial
WHERE type IN ('call.queued', 'call.answered', 'call.dequeued')
   OR (type = 'call.ended' AND ended_at IS NOT NULL);

-- agent_state_now: the latest change per (tenant, agent, kind): a ReplacingMergeTree versioned by
-- the change time, so a late (older) change never overwrites a newer one and a duplicate is the
-- same row. A handful of rows per agent until merges leave one; read with argMax by time.
CREATE TABLE IF NOT EXISTS agent_state_now
(
    tenant_id  LowCardinality(String),
    agent_id   String,
    kind       LowCardinality(String),
    value      LowCardinality(String),
    changed_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(changed_at)
ORDER BY (tenant_id, agent_id, kind);

CREATE MATERIALIZED VIEW IF NOT EXISTS agent_state_now_mv TO agent_state_now AS
SELECT tenant_id, agent_id, kind, value, changed_at
FROM agent_state_changes;

INSERT INTO agent_state_now
SELECT tenant_id, agent_id, kind, argMax(value, changed_at) AS last_value, max(changed_at) AS last_changed_at
FROM agent_state_changes
GROUP BY tenant_id, agent_id, kind;
