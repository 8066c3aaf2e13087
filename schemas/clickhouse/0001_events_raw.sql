-- Every canonical event, as received from ccod.events.v1: the analysts' ground truth.
-- ReplacingMergeTree: a re-delivered event has the same sorting key (tenant, type,
-- occurred_at, event_id) and collapses on merge; exact counts use FINAL or uniqExact(event_id).
-- non_replicated_deduplication_window lets the sink's insert_deduplication_token drop a
-- retried identical batch at once, before any merge.
CREATE TABLE IF NOT EXISTS events_raw
(
    tenant_id        LowCardinality(String),
    occurred_at      DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    event_id         UUID,
    type             LowCardinality(String),
    schema_version   UInt8,
    call_id          String CODEC(ZSTD(1)),
    agent_id         String CODEC(ZSTD(1)),
    queue_id         LowCardinality(String),
    source_service   LowCardinality(String),
    source_node      LowCardinality(String),
    source_core_uuid String CODEC(ZSTD(1)),
    source_sequence  UInt64 CODEC(Delta, ZSTD(1)),
    payload          String CODEC(ZSTD(3)),
    ingested_at      DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(Delta, ZSTD(1)),
    INDEX idx_call_id call_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_agent_id agent_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant_id, type, occurred_at, event_id)
TTL toDateTime(occurred_at) + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;
