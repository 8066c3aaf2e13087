-- One row per call, built from per-event partial rows merged by (tenant_id, call_id).
-- Every measure is an idempotent, order-free aggregate (min, max, union of arrays keyed by
-- event), so a duplicate or late event changes nothing or fills its own columns: the result
-- is the same whatever the arrival order and however often an event is delivered.
-- Merges are only an optimisation: read through the `calls` view, which aggregates again.
CREATE TABLE IF NOT EXISTS calls_partial
(
    tenant_id       LowCardinality(String),
    call_id         String,
    first_at        SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_at         SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    direction       SimpleAggregateFunction(max, Nullable(String)),
    caller_number   SimpleAggregateFunction(max, Nullable(String)),
    destination     SimpleAggregateFunction(max, Nullable(String)),
    queue_id        SimpleAggregateFunction(max, Nullable(String)),
    agent_id        SimpleAggregateFunction(max, Nullable(String)),
    offered_at      SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    queued_at       SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    answered_at     SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    answer_wait_ms  SimpleAggregateFunction(max, Nullable(UInt32)),
    ring_ms         SimpleAggregateFunction(max, Nullable(UInt32)),
    agent_ended_at  SimpleAggregateFunction(max, Nullable(DateTime64(3, 'UTC'))),
    dequeued_at     SimpleAggregateFunction(max, Nullable(DateTime64(3, 'UTC'))),
    abandon_wait_ms SimpleAggregateFunction(max, Nullable(UInt32)),
    ended_at        SimpleAggregateFunction(max, Nullable(DateTime64(3, 'UTC'))),
    hangup_cause    SimpleAggregateFunction(max, Nullable(String)),
    hangup_by       SimpleAggregateFunction(max, Nullable(String)),
    duration_ms     SimpleAggregateFunction(max, Nullable(UInt32)),
    billable_ms     SimpleAggregateFunction(max, Nullable(UInt32)),
    read_codec      SimpleAggregateFunction(max, Nullable(String)),
    write_codec     SimpleAggregateFunction(max, Nullable(String)),
    codec_rate      SimpleAggregateFunction(max, Nullable(UInt32)),
    recorded        SimpleAggregateFunction(max, UInt8),
    -- (left_at, queue, outcome, wait_ms) per call.dequeued
    dequeues        SimpleAggregateFunction(groupUniqArrayArray, Array(Tuple(DateTime64(3, 'UTC'), String, String, UInt32))),
    -- (event_id, talk_ms) per call.agent_ended: one segment per agent who talked
    talk_segments   SimpleAggregateFunction(groupUniqArrayArray, Array(Tuple(UUID, UInt32))),
    -- (at, held) per call.hold
    hold_events     SimpleAggregateFunction(groupUniqArrayArray, Array(Tuple(DateTime64(3, 'UTC'), UInt8))),
    offer_ids       SimpleAggregateFunction(groupUniqArrayArray, Array(UUID)),
    failed_offer_ids SimpleAggregateFunction(groupUniqArrayArray, Array(UUID)),
    transfer_ids    SimpleAggregateFunction(groupUniqArrayArray, Array(UUID))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(first_at)
ORDER BY (tenant_id, call_id)
TTL toDateTime(first_at) + INTERVAL 800 DAY;

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
    queue_id,
    agent_id,
    offered_at,
    queued_at,
    answered_at,
    dequeued_at,
    ended_at,
    answered_at IS NOT NULL AS answered,
    arraySort(dequeues) AS dequeues_sorted,
    if(length(dequeues_sorted) > 0, dequeues_sorted[-1].3, '') AS last_outcome,
    (NOT answered) AND queued_at IS NOT NULL
        AND (last_outcome = 'abandoned' OR (dequeued_at IS NULL AND ended_at IS NOT NULL)) AS abandoned,
    answer_wait_ms AS wait_ms,
    if(abandoned, coalesce(abandon_wait_ms,
        toUInt32(greatest(0, dateDiff('millisecond', queued_at, coalesce(dequeued_at, ended_at))))), NULL)
        AS abandon_ms,
    ring_ms,
    -- bridge_ms: the agents' whole bridge time (FreeSWITCH counts hold inside it);
    -- talk_ms excludes hold, so handle time = talk + hold + acw counts each second once.
    toUInt32(arraySum(arrayMap(s -> s.2, talk_segments))) AS bridge_ms,
    arraySort(hold_events) AS holds,
    toUInt32(arraySum(arrayMap(i -> if(holds[i].2 = 1,
        greatest(0, dateDiff('millisecond', holds[i].1,
            if(i < length(holds), holds[i + 1].1, coalesce(agent_ended_at, ended_at, holds[i].1)))), 0),
        arrayEnumerate(holds)))) AS hold_ms,
    toUInt32(greatest(0, toInt64(bridge_ms) - toInt64(hold_ms))) AS talk_ms,
    length(offer_ids) AS agent_offers,
    length(failed_offer_ids) AS agent_failures,
    length(transfer_ids) AS transfers,
    agent_ended_at,
    hangup_cause,
    hangup_by,
    duration_ms,
    billable_ms,
    read_codec,
    write_codec,
    codec_rate,
    recorded = 1 AS recorded,
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
        min(first_at) AS first_at,
        max(last_at) AS last_at,
        max(direction) AS direction,
        max(caller_number) AS caller_number,
        max(destination) AS destination,
        max(queue_id) AS queue_id,
        max(agent_id) AS agent_id,
        min(offered_at) AS offered_at,
        min(queued_at) AS queued_at,
        min(answered_at) AS answered_at,
        max(answer_wait_ms) AS answer_wait_ms,
        max(ring_ms) AS ring_ms,
        max(agent_ended_at) AS agent_ended_at,
        max(dequeued_at) AS dequeued_at,
        max(abandon_wait_ms) AS abandon_wait_ms,
        max(ended_at) AS ended_at,
        max(hangup_cause) AS hangup_cause,
        max(hangup_by) AS hangup_by,
        max(duration_ms) AS duration_ms,
        max(billable_ms) AS billable_ms,
        max(read_codec) AS read_codec,
        max(write_codec) AS write_codec,
        max(codec_rate) AS codec_rate,
        max(recorded) AS recorded,
        groupUniqArrayArray(dequeues) AS dequeues,
        groupUniqArrayArray(talk_segments) AS talk_segments,
        groupUniqArrayArray(hold_events) AS hold_events,
        groupUniqArrayArray(offer_ids) AS offer_ids,
        groupUniqArrayArray(failed_offer_ids) AS failed_offer_ids,
        groupUniqArrayArray(transfer_ids) AS transfer_ids
    FROM calls_partial
    GROUP BY tenant_id, call_id
);
