-- queue_kpis: per interval and queue, plus per-interval tenant totals (queue_id = '*').
-- Params: tenant String, from/to DateTime64(3), now DateTime64(3), interval_min UInt32 (15/30/60),
--         sl_threshold_ms UInt32, short_abandon_ms UInt32.
-- A call belongs to the interval in which it entered the queue (queued_at).
--   offered          calls queued
--   answered         calls answered by an agent; abandoned: the caller hung up while queued
--   short_abandons   abandoned with abandon wait < short_abandon_ms
--   sl_answered_only     answered within T / answered                         (Asterisk SL, Wazo QoS)
--   sl_abandons_fail     answered within T / (answered + abandoned)           (Genesys default, Asterisk SL2-)
--   sl_short_excluded    answered within T / (answered + abandoned - short)   (Genesys switch, RingCentral)
--   sl_abandons_in_t_ok  (answered + abandoned within T) / (answered + abandoned)  (Asterisk SL2, Connect)
--   asa_ms               avg wait of answered calls                            (ASA)
--   aht_ms               avg(talk + hold + acw) of answered calls              (AHT)
--   abandon_rate         abandoned / offered                                   (Connect)
--   avg_abandon_ms       avg wait of abandoned calls                           (Connect "average queue abandon time")
-- Ratios are NULL (not 0) when their denominator is 0.
SELECT
    toStartOfInterval(queued_at, toIntervalMinute({interval_min:UInt32})) AS interval_start,
    if(grouping(queue_id) = 1, '*', queue_id) AS queue,
    count() AS offered,
    countIf(is_answered) AS answered,
    countIf(is_abandoned) AS abandoned,
    countIf(is_abandoned AND abandon_ms < {short_abandon_ms:UInt32}) AS short_abandons,
    countIf(NOT is_answered AND NOT is_abandoned AND disposition != 'in_progress') AS other_outcomes,
    countIf(is_answered AND wait_ms <= {sl_threshold_ms:UInt32}) AS answered_in_sl,
    countIf(is_abandoned AND abandon_ms <= {sl_threshold_ms:UInt32}) AS abandoned_in_sl,
    answered_in_sl / nullIf(answered, 0) AS sl_answered_only,
    answered_in_sl / nullIf(answered + abandoned, 0) AS sl_abandons_fail,
    answered_in_sl / nullIf(answered + abandoned - short_abandons, 0) AS sl_short_excluded,
    (answered_in_sl + abandoned_in_sl) / nullIf(answered + abandoned, 0) AS sl_abandons_in_t_ok,
    avgIf(wait_ms, is_answered) AS asa_ms,
    avgIf(handle_ms, is_answered) AS aht_ms,
    sumIf(talk_ms, is_answered) AS talk_ms,
    sumIf(hold_ms, is_answered) AS hold_ms,
    sumIf(acw_ms, is_answered) AS acw_ms,
    abandoned / nullIf(offered, 0) AS abandon_rate,
    avgIf(abandon_ms, is_abandoned) AS avg_abandon_ms,
    max(if(is_answered, wait_ms, abandon_ms)) AS max_wait_ms
FROM (SELECT *, answered AS is_answered, abandoned AS is_abandoned FROM ({call_handling}))
GROUP BY GROUPING SETS ((interval_start, queue_id), (interval_start))
ORDER BY interval_start, queue
