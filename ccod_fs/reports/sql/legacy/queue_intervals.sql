-- queue_intervals for ClickHouse 18.16 (times are epoch ms; states keep the -If combinator in
-- their type, hence fIfMerge): same definition as ../queue_intervals.sql.
-- the wallboard's counters per queue and 15-minute interval since {from}, with
-- the interval's version (call-fact rows received; it only grows, see 0006_wallboard_live.sql).
-- Params: tenant String, from UInt64 (epoch ms), sl_threshold_ms UInt32, short_abandon_ms UInt32,
--         known Array(String): 'queue|interval start (epoch s)|version' of intervals the caller
--         already holds; those are skipped unless their version moved (pass [''] for all).
-- The subquery reads only the small version column; the states, which cost time in proportion
-- to the calls in them, are decoded only for the intervals it returns (PREWHERE, 8-row granules).
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
        sumIfMerge(rows) AS version,
        uniqExactIfMerge(offered) AS offered,
        uniqExactIfMerge(answered) AS answered,
        uniqExactIfMerge(abandoned) AS abandoned,
        arrayMap(x -> bitAnd(x, 268435455), groupUniqArrayIfMerge(answer_waits)) AS waits,
        arrayMap(x -> bitAnd(x, 268435455), groupUniqArrayIfMerge(abandon_waits)) AS ab_waits,
        length(waits) AS waits_n,
        arraySum(waits) AS waits_ms,
        arrayCount(w -> w <= {sl_threshold_ms:UInt32}, waits) AS answered_in_sl,
        length(ab_waits) AS abandon_waits_n,
        arrayCount(w -> w < {short_abandon_ms:UInt32}, ab_waits) AS short_abandons
    FROM queue_interval_counters
    PREWHERE tenant_id = {tenant:String} AND interval_start >= toStartOfFifteenMinutes(toDateTime(intDiv({from:UInt64}, 1000)))
      AND (queue_id, interval_start) IN
      (
          SELECT queue_id, interval_start
          FROM queue_interval_counters
          PREWHERE tenant_id = {tenant:String}
            AND interval_start >= toStartOfFifteenMinutes(toDateTime(intDiv({from:UInt64}, 1000)))
          GROUP BY queue_id, interval_start
          HAVING NOT has({known:Array(String)},
                         concat(queue_id, '|', toString(toUInt32(interval_start)), '|', toString(sumIfMerge(rows))))
      )
    GROUP BY queue_id, interval_start
)
