-- queue_interval_versions: per queue and 15-minute interval since {from}, the interval's version
-- (call-fact rows received, duplicates included: it only grows). Reads only that small column.
-- Params: tenant String, from DateTime64(3).
SELECT queue_id AS queue, toUInt32(interval_start) AS interval_s, sumMerge(rows) AS version
FROM queue_interval_counters
PREWHERE tenant_id = {tenant:String} AND interval_start >= toStartOfFifteenMinutes({from:DateTime64(3, 'UTC')})
GROUP BY queue_id, interval_start
