-- Per agent and 15-minute interval: calls answered, bridge time (talk + hold) and ring time, idempotent like
-- queue_interval_stats (uniqExact by call, packed per-call/segment values in groupUniqArray).
CREATE TABLE IF NOT EXISTS agent_interval_stats
(
    tenant_id      LowCardinality(String),
    agent_id       String,
    interval_start DateTime('UTC'),
    answered       AggregateFunction(uniqExact, UInt64),
    bridge         AggregateFunction(groupUniqArray, UInt64),
    ring           AggregateFunction(groupUniqArray, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(interval_start)
ORDER BY (tenant_id, agent_id, interval_start)
TTL interval_start + INTERVAL 800 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS agent_interval_stats_mv TO agent_interval_stats AS
SELECT
    tenant_id,
    agent_id,
    toStartOfFifteenMinutes(at) AS interval_start,
    uniqExactIfState(cityHash64(call_id), answered_at IS NOT NULL) AS answered,
    groupUniqArrayIfState(
        bitOr(bitShiftLeft(cityHash64(toString(event_id)) % 68719476736, 28), least(assumeNotNull(bridge_ms), 268435455)),
        bridge_ms IS NOT NULL) AS bridge,
    groupUniqArrayIfState(
        bitOr(bitShiftLeft(cityHash64(call_id) % 68719476736, 28), least(assumeNotNull(ring_ms), 268435455)),
        ring_ms IS NOT NULL) AS ring
FROM calls_partial
WHERE agent_id != ''
GROUP BY tenant_id, agent_id, interval_start;
