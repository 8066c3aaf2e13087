-- queue_today for ClickHouse 18.16, where times are epoch ms (UInt64) and the interval aggregates
-- (materialized views) do not exist: the same definitions as ../queue_today.sql, computed from
-- the call facts. Duplicates are harmless: distinct call ids, sets of (call, wait) pairs.
-- Params: tenant String, from UInt64 (epoch ms; floored to 15 minutes like the aggregates),
--         sl_threshold_ms UInt32, short_abandon_ms UInt32.
SELECT
    queue_id AS queue,
    uniqExactIf(call_id, queued_at IS NOT NULL) AS offered,
    uniqExactIf(call_id, answered_at IS NOT NULL) AS answered,
    uniqExactIf(call_id, ifNull(outcome, '') = 'abandoned') AS abandoned,
    arrayMap(x -> x.2, groupUniqArrayIf((call_id, assumeNotNull(answer_wait_ms)), answered_at IS NOT NULL)) AS waits,
    arrayMap(x -> x.2, groupUniqArrayIf((call_id, assumeNotNull(dequeue_wait_ms)),
                                        ifNull(outcome, '') = 'abandoned')) AS abandon_waits,
    arrayCount(w -> w <= {sl_threshold_ms:UInt32}, waits) AS answered_in_sl,
    arrayCount(w -> w < {short_abandon_ms:UInt32}, abandon_waits) AS short_abandons,
    answered_in_sl / nullIf(length(waits), 0) AS sl_answered_only,
    answered_in_sl / nullIf(length(waits) + length(abandon_waits), 0) AS sl_abandons_fail,
    answered_in_sl / nullIf(length(waits) + length(abandon_waits) - short_abandons, 0) AS sl_short_excluded,
    if(length(waits) > 0, arraySum(waits) / length(waits), NULL) AS asa_ms,
    abandoned / nullIf(offered, 0) AS abandon_rate
FROM calls_partial
WHERE tenant_id = {tenant:String} AND queue_id != '' AND at >= intDiv({from:UInt64}, 900000) * 900000
GROUP BY queue_id
ORDER BY queue
