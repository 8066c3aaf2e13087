-- Per agent and 15-minute interval: calls answered, bridge time (talk + hold) and ring time, idempotent like
-- queue_interval_stats (uniqExact by call, maxMap keyed by talk segment).
-- @modern-only
CREATE TABLE IF NOT EXISTS agent_interval_stats
(
    tenant_id      LowCardinality(String),
    agent_id       String,
    interval_start DateTime('UTC'),
    answered       AggregateFunction(uniqExact, String),
    bridge         AggregateFunction(maxMap, Array(UInt64), Array(UInt32)),
    ring           AggregateFunction(maxMap, Array(UInt64), Array(UInt32))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(interval_start)
ORDER BY (tenant_id, agent_id, interval_start)
TTL interval_start + INTERVAL 800 DAY;

-- @modern-only
CREATE MATERIALIZED VIEW IF NOT EXISTS agent_interval_stats_mv TO agent_interval_stats AS
SELECT
    tenant_id,
    agent_id,
    toStartOfFifteenMinutes(at) AS interval_start,
    uniqExactIfState(call_id, answered_at IS NOT NULL) AS answered,
    maxMapState(
        if(bridge_ms IS NOT NULL, [cityHash64(event_id)], []),
        if(bridge_ms IS NOT NULL, [assumeNotNull(bridge_ms)], [])) AS bridge,
    maxMapState(
        if(ring_ms IS NOT NULL, [cityHash64(call_id)], []),
        if(ring_ms IS NOT NULL, [assumeNotNull(ring_ms)], [])) AS ring
FROM calls_partial
WHERE agent_id != ''
GROUP BY tenant_id, agent_id, interval_start;
