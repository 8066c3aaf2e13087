-- queue_intervals: the wallboard's counters per queue and 15-minute interval since {from}, with
-- the interval's version (call-fact rows received; it only grows, see 0006_wallboard_live.sql).
-- Params: tenant String, from DateTime64(3), sl_threshold_ms UInt32, short_abandon_ms UInt32,
--         all UInt8, intervals Array(UInt32): every interval when all = 1, else only those starts
--         (epoch seconds): the wallboard re-reads only intervals whose version changed.
-- Facts count in the interval where they happened (offered when queued, answered when answered);
-- states are idempotent sets, so re-delivered events never double count. The per-call waits stay
-- inside the query: only counters travel to the client.
SELECT queue, interval_s, version, offered, answered, abandoned, waits_n, waits_ms, answered_in_sl,
       abandon_waits_n, short_abandons
FROM
(
    SELECT
        queue_id AS queue,
        toUInt32(interval_start) AS interval_s,
        sumMerge(rows) AS version,
        uniqExactMerge(offered) AS offered,
        uniqExactMerge(answered) AS answered,
        uniqExactMerge(abandoned) AS abandoned,
        arrayMap(x -> bitAnd(x, 268435455), groupUniqArrayMerge(answer_waits)) AS waits,
        arrayMap(x -> bitAnd(x, 268435455), groupUniqArrayMerge(abandon_waits)) AS ab_waits,
        length(waits) AS waits_n,
        arraySum(waits) AS waits_ms,
        arrayCount(w -> w <= {sl_threshold_ms:UInt32}, waits) AS answered_in_sl,
        length(ab_waits) AS abandon_waits_n,
        arrayCount(w -> w < {short_abandon_ms:UInt32}, ab_waits) AS short_abandons
    FROM queue_interval_counters
    PREWHERE tenant_id = {tenant:String} AND interval_start >= toStartOfFifteenMinutes({from:DateTime64(3, 'UTC')})
      AND ({all:UInt8} = 1 OR has({intervals:Array(UInt32)}, toUInt32(interval_start)))
    GROUP BY queue_id, interval_start
)
