-- Agent status (Logged Out, Available, On Break...) and state (Waiting, In a queue call, Idle...)
-- changes, one row per event; ReplacingMergeTree collapses re-delivered event_ids.
CREATE TABLE IF NOT EXISTS agent_state_changes
(
    tenant_id  LowCardinality(String),
    agent_id   String,
    kind       LowCardinality(String),
    value      LowCardinality(String),
    previous   LowCardinality(String),
    changed_at DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    event_id   UUID
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(changed_at)
ORDER BY (tenant_id, agent_id, kind, changed_at, event_id)
TTL toDateTime(changed_at) + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- Intervals are derived at read time from the ordered changes, so a late event re-cuts the
-- intervals around it instead of leaving a wrong row behind. ended_at is NULL while current.
-- @modern-only
CREATE VIEW IF NOT EXISTS agent_state_intervals AS
SELECT
    tenant_id,
    agent_id,
    kind,
    value AS state,
    changed_at AS started_at,
    nullIf(leadInFrame(changed_at, 1, toDateTime64(0, 3, 'UTC')) OVER w, toDateTime64(0, 3, 'UTC')) AS ended_at,
    dateDiff('millisecond', started_at, coalesce(ended_at, now64(3))) AS duration_ms
FROM
(
    SELECT DISTINCT tenant_id, agent_id, kind, value, changed_at, event_id
    FROM agent_state_changes
)
WINDOW w AS (PARTITION BY tenant_id, agent_id, kind ORDER BY changed_at, event_id
             ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING);
