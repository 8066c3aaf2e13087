-- live_interval_sets: what queue_interval_counters (0006) aggregates for some 15-minute intervals,
-- as sets rather than states: the distinct calls offered, answered and abandoned, and the distinct
-- (call, wait) pairs of answers and abandons (waits capped at 2^28 - 1 ms, as the packed states
-- are). The embedded wallboard loads an interval's sets the first time a new row reaches it, then
-- adds the process's own inserts to them (ccod_fs/reports/live_board.py). Duplicated facts
-- (no FINAL) only repeat set elements.
-- Params: tenant String, from DateTime64(3), to DateTime64(3) (the intervals' span, for the
--         primary key), intervals Array(UInt32) (interval starts, epoch seconds).
SELECT
    queue_id AS queue,
    toUInt32(toStartOfFifteenMinutes(at)) AS interval_s,
    groupUniqArrayIf(call_id, queued_at IS NOT NULL) AS offered,
    groupUniqArrayIf(call_id, answered_at IS NOT NULL) AS answered,
    groupUniqArrayIf(call_id, ifNull(outcome, '') = 'abandoned') AS abandoned,
    groupUniqArrayIf((call_id, least(assumeNotNull(answer_wait_ms), 268435455)), answered_at IS NOT NULL)
        AS answer_waits,
    groupUniqArrayIf((call_id, least(assumeNotNull(dequeue_wait_ms), 268435455)), ifNull(outcome, '') = 'abandoned')
        AS abandon_waits
FROM calls_partial
WHERE tenant_id = {tenant:String} AND queue_id != ''
  AND at >= {from:DateTime64(3, 'UTC')} AND at < {to:DateTime64(3, 'UTC')}
  AND has({intervals:Array(UInt32)}, toUInt32(toStartOfFifteenMinutes(at)))
GROUP BY queue_id, interval_s
