-- Per queue and 15-minute interval, fed by a materialized view over calls_partial inserts
-- (one row per call event, so re-delivered events do reach it).
-- Every state is idempotent so re-delivered events never double count: call counts are
-- uniqExact(cityHash64(call_id)); per-call durations are sets (groupUniqArray) of one packed UInt64 per call
-- or bridge segment: 36 bits of cityHash64(id) << 28 | ms (capped at 2^28-1 ms = 74 h), so a
-- duplicate adds the same element again. Unpack with bitAnd(x, 268435455). Keeping each wait
-- lets a report apply any tenant's SL threshold later; 30/60-minute intervals merge 15-minute
-- states. (maxMap keyed by call would do the same, but merges ~50x slower.)
-- Each fact is counted in the interval in which it happened (queued, answered, abandoned);
-- bridge = the agent bridge (talk + hold, as FreeSWITCH measures it), keyed by segment.
CREATE TABLE IF NOT EXISTS queue_interval_stats
(
    tenant_id      LowCardinality(String),
    queue_id       LowCardinality(String),
    interval_start DateTime('UTC'),
    offered        AggregateFunction(uniqExact, UInt64),
    answered       AggregateFunction(uniqExact, UInt64),
    abandoned      AggregateFunction(uniqExact, UInt64),
    answer_waits   AggregateFunction(groupUniqArray, UInt64),
    abandon_waits  AggregateFunction(groupUniqArray, UInt64),
    bridge         AggregateFunction(groupUniqArray, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(interval_start)
ORDER BY (tenant_id, queue_id, interval_start)
TTL interval_start + INTERVAL 800 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS queue_interval_stats_mv TO queue_interval_stats AS
SELECT
    tenant_id,
    queue_id,
    toStartOfFifteenMinutes(at) AS interval_start,
    uniqExactIfState(cityHash64(call_id), queued_at IS NOT NULL) AS offered,
    uniqExactIfState(cityHash64(call_id), answered_at IS NOT NULL) AS answered,
    uniqExactIfState(cityHash64(call_id), ifNull(outcome, '') = 'abandoned') AS abandoned,
    groupUniqArrayIfState(
        bitOr(bitShiftLeft(cityHash64(call_id) % 68719476736, 28), least(assumeNotNull(answer_wait_ms), 268435455)),
        answered_at IS NOT NULL) AS answer_waits,
    groupUniqArrayIfState(
        bitOr(bitShiftLeft(cityHash64(call_id) % 68719476736, 28), least(assumeNotNull(dequeue_wait_ms), 268435455)),
        ifNull(outcome, '') = 'abandoned') AS abandon_waits,
    groupUniqArrayIfState(
        bitOr(bitShiftLeft(cityHash64(toString(event_id)) % 68719476736, 28), least(assumeNotNull(bridge_ms), 268435455)),
        bridge_ms IS NOT NULL) AS bridge
FROM calls_partial
WHERE queue_id != ''
GROUP BY tenant_id, queue_id, interval_start;
