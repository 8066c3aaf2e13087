-- Per queue and 15-minute interval, fed by a materialized view over calls_partial inserts
-- (one row per call event, so re-delivered events do reach it).
-- Every state is idempotent so re-delivered events never double count: call counts are
-- uniqExact(call_id); per-call durations are maxMap(cityHash64(call or segment id) -> ms), a
-- union keyed by call where a duplicate writes the same value again. Keeping each wait lets a
-- report apply any tenant's SL threshold later; 30/60-minute intervals merge 15-minute states.
-- Each fact is counted in the interval in which it happened (queued, answered, abandoned);
-- bridge = the agent bridge (talk + hold, as FreeSWITCH measures it), keyed by segment.
-- @modern-only
CREATE TABLE IF NOT EXISTS queue_interval_stats
(
    tenant_id      LowCardinality(String),
    queue_id       LowCardinality(String),
    interval_start DateTime('UTC'),
    offered        AggregateFunction(uniqExact, String),
    answered       AggregateFunction(uniqExact, String),
    abandoned      AggregateFunction(uniqExact, String),
    answer_waits   AggregateFunction(maxMap, Array(UInt64), Array(UInt32)),
    abandon_waits  AggregateFunction(maxMap, Array(UInt64), Array(UInt32)),
    bridge         AggregateFunction(maxMap, Array(UInt64), Array(UInt32))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(interval_start)
ORDER BY (tenant_id, queue_id, interval_start)
TTL interval_start + INTERVAL 800 DAY;

-- @modern-only
CREATE MATERIALIZED VIEW IF NOT EXISTS queue_interval_stats_mv TO queue_interval_stats AS
SELECT
    tenant_id,
    queue_id,
    toStartOfFifteenMinutes(at) AS interval_start,
    uniqExactIfState(call_id, queued_at IS NOT NULL) AS offered,
    uniqExactIfState(call_id, answered_at IS NOT NULL) AS answered,
    uniqExactIfState(call_id, ifNull(outcome, '') = 'abandoned') AS abandoned,
    maxMapState(
        if(answered_at IS NOT NULL, [cityHash64(call_id)], []),
        if(answered_at IS NOT NULL, [assumeNotNull(answer_wait_ms)], [])) AS answer_waits,
    maxMapState(
        if(ifNull(outcome, '') = 'abandoned', [cityHash64(call_id)], []),
        if(ifNull(outcome, '') = 'abandoned', [assumeNotNull(dequeue_wait_ms)], [])) AS abandon_waits,
    maxMapState(
        if(bridge_ms IS NOT NULL, [cityHash64(event_id)], []),
        if(bridge_ms IS NOT NULL, [assumeNotNull(bridge_ms)], [])) AS bridge
FROM calls_partial
WHERE queue_id != ''
GROUP BY tenant_id, queue_id, interval_start;
