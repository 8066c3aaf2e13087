-- waiting_now for ClickHouse 18.16 (times are epoch ms): same definition as ../waiting_now.sql.
-- Params: tenant String, now UInt64 (epoch ms).
SELECT
    queue,
    count() AS calls_waiting,
    max({now:UInt64} - queued) AS longest_wait_ms,
    argMin(call_id, queued) AS longest_waiting_call
FROM
(
    SELECT
        call_id,
        anyIf(queue_id, type = 'call.queued') AS queue,
        minIf(ifNull(queued_at, at), type = 'call.queued') AS queued,
        countIf(type != 'call.queued' AND (type != 'call.ended' OR ended_at IS NOT NULL)) AS gone
    FROM calls_partial
    WHERE tenant_id = {tenant:String}
      AND toStartOfHour(toDateTime(intDiv(at, 1000)))
          >= toStartOfHour(toDateTime(intDiv({now:UInt64} - 14400000, 1000)))
      AND at > {now:UInt64} - 14400000 AND at <= {now:UInt64}
      AND type IN ('call.queued', 'call.answered', 'call.dequeued', 'call.ended')
    GROUP BY call_id
)
WHERE queue != '' AND gone = 0
GROUP BY queue
ORDER BY queue
