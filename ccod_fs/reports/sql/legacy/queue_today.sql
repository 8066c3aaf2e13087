-- queue_today for ClickHouse 18.16 (times are epoch ms): the same query as ../queue_today.sql over
-- the same interval aggregates (the migrations create them on 18.16 too; there their states keep
-- the -If combinator in their type, hence uniqExactIfMerge).
-- Params: tenant String, from UInt64 (epoch ms), sl_threshold_ms UInt32, short_abandon_ms UInt32.
-- The per-call waits stay inside the query: only the counters travel to the client.
SELECT queue, offered, answered, abandoned, answered_in_sl, short_abandons, sl_answered_only, sl_abandons_fail,
       sl_short_excluded, asa_ms, abandon_rate
FROM
(
    SELECT
        queue_id AS queue,
        uniqExactIfMerge(offered) AS offered,
        uniqExactIfMerge(answered) AS answered,
        uniqExactIfMerge(abandoned) AS abandoned,
        arrayMap(x -> bitAnd(x, 268435455), groupUniqArrayIfMerge(answer_waits)) AS waits,
        arrayMap(x -> bitAnd(x, 268435455), groupUniqArrayIfMerge(abandon_waits)) AS abandon_waits,
        arrayCount(w -> w <= {sl_threshold_ms:UInt32}, waits) AS answered_in_sl,
        arrayCount(w -> w < {short_abandon_ms:UInt32}, abandon_waits) AS short_abandons,
        answered_in_sl / nullIf(length(waits), 0) AS sl_answered_only,
        answered_in_sl / nullIf(length(waits) + length(abandon_waits), 0) AS sl_abandons_fail,
        answered_in_sl / nullIf(length(waits) + length(abandon_waits) - short_abandons, 0) AS sl_short_excluded,
        if(length(waits) > 0, arraySum(waits) / length(waits), NULL) AS asa_ms,
        abandoned / nullIf(offered, 0) AS abandon_rate
    FROM queue_interval_stats
    WHERE tenant_id = {tenant:String}
      AND interval_start >= toStartOfFifteenMinutes(toDateTime(intDiv({from:UInt64}, 1000)))
    GROUP BY queue_id
)
ORDER BY queue
