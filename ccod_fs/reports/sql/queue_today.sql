-- queue_today: the wallboard's per-queue counters since {from} (e.g. midnight), read from the
-- queue_interval_stats aggregates (idempotent states, so re-delivered events never double count).
-- Params: tenant String, from DateTime64(3), sl_threshold_ms UInt32, short_abandon_ms UInt32.
-- Facts count in the interval where they happened: offered when queued, answered when answered.
-- The per-call waits stay inside the query: only the counters travel to the client.
SELECT queue, offered, answered, abandoned, answered_in_sl, short_abandons, sl_answered_only, sl_abandons_fail,
       sl_short_excluded, asa_ms, abandon_rate
FROM
(
    SELECT
        queue_id AS queue,
        uniqExactMerge(offered) AS offered,
        uniqExactMerge(answered) AS answered,
        uniqExactMerge(abandoned) AS abandoned,
        arrayMap(x -> bitAnd(x, 268435455), groupUniqArrayMerge(answer_waits)) AS waits,
        arrayMap(x -> bitAnd(x, 268435455), groupUniqArrayMerge(abandon_waits)) AS abandon_waits,
        arrayCount(w -> w <= {sl_threshold_ms:UInt32}, waits) AS answered_in_sl,
        arrayCount(w -> w < {short_abandon_ms:UInt32}, abandon_waits) AS short_abandons,
        answered_in_sl / nullIf(length(waits), 0) AS sl_answered_only,
        answered_in_sl / nullIf(length(waits) + length(abandon_waits), 0) AS sl_abandons_fail,
        answered_in_sl / nullIf(length(waits) + length(abandon_waits) - short_abandons, 0) AS sl_short_excluded,
        if(length(waits) > 0, arrayAvg(waits), NULL) AS asa_ms,
        abandoned / nullIf(offered, 0) AS abandon_rate
    FROM queue_interval_stats
    WHERE tenant_id = {tenant:String} AND interval_start >= toStartOfFifteenMinutes({from:DateTime64(3, 'UTC')})
    GROUP BY queue_id
)
ORDER BY queue
