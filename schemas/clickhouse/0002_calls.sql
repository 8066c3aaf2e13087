-- Call facts: one narrow row per call event, holding only what that event says about its call
-- (scalar columns, NULL where the event knows nothing). ReplacingMergeTree keyed by
-- (tenant_id, hour, call_id, event_id): a re-delivered event has the same key (same time), so
-- FINAL (or a merge) keeps one copy; the hour in the key lets "now" queries read recent rows only. The `calls` view folds the facts of a call into one row after FINAL, with
-- order-free aggregates (min/max/argMax by time), so late events land where they belong.
CREATE TABLE IF NOT EXISTS calls_partial
(
    tenant_id       LowCardinality(String),
    call_id         String,
    event_id        UUID,
    type            LowCardinality(String),
    at              DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    queue_id        LowCardinality(String),
    agent_id        String,
    direction       LowCardinality(Nullable(String)),
    caller_number   Nullable(String),
    destination     Nullable(String),
    offered_at      Nullable(DateTime64(3, 'UTC')),
    queued_at       Nullable(DateTime64(3, 'UTC')),
    answered_at     Nullable(DateTime64(3, 'UTC')),
    answer_wait_ms  Nullable(UInt32),
    ring_ms         Nullable(UInt32),
    agent_ended_at  Nullable(DateTime64(3, 'UTC')),
    bridge_ms       Nullable(UInt32),
    dequeued_at     Nullable(DateTime64(3, 'UTC')),
    outcome         LowCardinality(Nullable(String)),
    dequeue_wait_ms Nullable(UInt32),
    held            Nullable(UInt8),
    recorded        Nullable(UInt8),
    ended_at        Nullable(DateTime64(3, 'UTC')),
    hangup_cause    LowCardinality(Nullable(String)),
    hangup_by       LowCardinality(Nullable(String)),
    duration_ms     Nullable(UInt32),
    billable_ms     Nullable(UInt32),
    read_codec      LowCardinality(Nullable(String)),
    write_codec     LowCardinality(Nullable(String)),
    codec_rate      Nullable(UInt32)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (tenant_id, toStartOfHour(at), call_id, event_id)
TTL toDateTime(at) + INTERVAL 800 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- @modern-only
CREATE VIEW IF NOT EXISTS calls AS
SELECT
    tenant_id,
    call_id,
    first_at,
    last_at,
    direction,
    caller_number,
    destination,
    if(queue_key = '', NULL, queue_key) AS queue_id,
    if(agent_key = '', NULL, agent_key) AS agent_id,
    offered_at,
    queued_at,
    first_answered_at AS answered_at,
    last_dequeued_at AS dequeued_at,
    ended_at,
    answered_at IS NOT NULL AS answered,
    (NOT answered) AND queued_at IS NOT NULL
        AND (last_outcome = 'abandoned' OR (dequeued_at IS NULL AND ended_at IS NOT NULL)) AS abandoned,
    answer_wait_ms AS wait_ms,
    if(abandoned, coalesce(abandon_wait_ms,
        toUInt32(greatest(0, dateDiff('millisecond', queued_at, coalesce(dequeued_at, ended_at))))), NULL)
        AS abandon_ms,
    ring_ms,
    -- bridge_ms: the agents' whole bridge time (FreeSWITCH counts hold inside it);
    -- talk_ms excludes hold, so handle time = talk + hold + acw counts each second once.
    toUInt32(ifNull(bridge_total, 0)) AS bridge_ms,
    arraySort(hold_events) AS holds,
    toUInt32(arraySum(arrayMap(i -> if(holds[i].2 = 1,
        greatest(0, dateDiff('millisecond', holds[i].1,
            if(i < length(holds), holds[i + 1].1, coalesce(agent_ended_at, ended_at, holds[i].1)))), 0),
        arrayEnumerate(holds)))) AS hold_ms,
    toUInt32(greatest(0, toInt64(bridge_ms) - toInt64(hold_ms))) AS talk_ms,
    agent_offers,
    agent_failures,
    transfers,
    agent_ended_at,
    hangup_cause,
    hangup_by,
    duration_ms,
    billable_ms,
    read_codec,
    write_codec,
    codec_rate,
    recorded,
    multiIf(
        answered, 'answered',
        abandoned, 'abandoned',
        last_outcome != '', last_outcome,
        ended_at IS NULL, 'in_progress',
        queued_at IS NULL, 'not_queued',
        'other') AS disposition
FROM
(
    SELECT
        tenant_id,
        call_id,
        min(at) AS first_at,
        max(at) AS last_at,
        max(direction) AS direction,
        max(caller_number) AS caller_number,
        max(destination) AS destination,
        argMinIf(queue_id, at, queue_id != '') AS queue_key,
        argMinIf(agent_id, at, answered_at IS NOT NULL) AS agent_key,
        min(offered_at) AS offered_at,
        min(queued_at) AS queued_at,
        min(answered_at) AS first_answered_at,
        argMinIf(answer_wait_ms, answered_at, answered_at IS NOT NULL) AS answer_wait_ms,
        argMinIf(ring_ms, answered_at, answered_at IS NOT NULL) AS ring_ms,
        max(agent_ended_at) AS agent_ended_at,
        sum(bridge_ms) AS bridge_total,
        max(dequeued_at) AS last_dequeued_at,
        ifNull(argMaxIf(outcome, dequeued_at, outcome IS NOT NULL), '') AS last_outcome,
        argMaxIf(dequeue_wait_ms, dequeued_at, outcome = 'abandoned') AS abandon_wait_ms,
        groupArrayIf((at, assumeNotNull(held)), held IS NOT NULL) AS hold_events,
        countIf(type = 'call.agent_offered') AS agent_offers,
        countIf(type = 'call.agent_failed') AS agent_failures,
        countIf(type = 'call.transferred') AS transfers,
        max(ended_at) AS ended_at,
        max(hangup_cause) AS hangup_cause,
        max(hangup_by) AS hangup_by,
        max(duration_ms) AS duration_ms,
        max(billable_ms) AS billable_ms,
        max(read_codec) AS read_codec,
        max(write_codec) AS write_codec,
        max(codec_rate) AS codec_rate,
        ifNull(max(recorded), 0) = 1 AS recorded
    FROM calls_partial FINAL
    GROUP BY tenant_id, call_id
);
