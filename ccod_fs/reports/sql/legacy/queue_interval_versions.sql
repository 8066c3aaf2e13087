-- queue_interval_versions for ClickHouse 18.16 (epoch ms, -If states): same as ../queue_interval_versions.sql.
-- per queue and 15-minute interval since {from}, the interval's version
-- (call-fact rows received, duplicates included: it only grows). Reads only that small column.
-- Params: tenant String, from UInt64 (epoch ms).
SELECT queue_id AS queue, toUInt32(interval_start) AS interval_s, sumIfMerge(rows) AS version
FROM queue_interval_counters
PREWHERE tenant_id = {tenant:String} AND interval_start >= toStartOfFifteenMinutes(toDateTime(intDiv({from:UInt64}, 1000)))
GROUP BY queue_id, interval_start
