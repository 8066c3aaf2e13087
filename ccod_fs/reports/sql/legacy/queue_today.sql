-- queue_today for ClickHouse 18.16 (epoch ms): same definition as ../queue_today.sql.
-- the wallboard's per-queue counters since {from} (e.g. midnight): the sum of the
-- per-interval counters of queue_intervals.sql (run it with all = 1, intervals = [0]).
-- Params: tenant String, from UInt64 (epoch ms), sl_threshold_ms UInt32, short_abandon_ms UInt32,
--         all UInt8, intervals Array(UInt32).
-- A fact counts in the interval where it happened (offered when queued, answered when answered),
-- and the day's count is the sum over its intervals. The wallboard computes the same sums from
-- cached per-interval rows (ccod_fs/reports/library.py); tests check that both agree.
SELECT
    queue,
    sum(offered) AS offered,
    sum(answered) AS answered,
    sum(abandoned) AS abandoned,
    sum(answered_in_sl) AS answered_in_sl,
    sum(short_abandons) AS short_abandons,
    answered_in_sl / nullIf(sum(waits_n), 0) AS sl_answered_only,
    answered_in_sl / nullIf(sum(waits_n) + sum(abandon_waits_n), 0) AS sl_abandons_fail,
    answered_in_sl / nullIf(sum(waits_n) + sum(abandon_waits_n) - short_abandons, 0) AS sl_short_excluded,
    sum(waits_ms) / nullIf(sum(waits_n), 0) AS asa_ms,
    abandoned / nullIf(offered, 0) AS abandon_rate
FROM ({queue_intervals})
GROUP BY queue
ORDER BY queue
