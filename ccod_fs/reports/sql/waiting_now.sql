-- waiting_now: calls waiting in each queue of a tenant right now, and the longest current wait.
-- Params: tenant String, now DateTime64(3). A call waits at {now} when it was queued in the 4 h
-- before and was not yet answered, dequeued or hung up at {now} ("as of" semantics, so the same
-- query replays a past moment exactly). Reads the call facts of those 4 hours directly: min/max
-- are idempotent, so duplicates need no FINAL, and the (tenant, hour) key prefix bounds the scan.
SELECT
    queue,
    count() AS calls_waiting,
    max(dateDiff('millisecond', queued, {now:DateTime64(3, 'UTC')})) AS longest_wait_ms,
    argMin(call_id, queued) AS longest_waiting_call
FROM
(
    SELECT
        call_id,
        argMinIf(queue_id, at, queued_at IS NOT NULL) AS queue,
        min(queued_at) AS queued,
        least(min(ifNull(answered_at, toDateTime64('2299-12-31 00:00:00', 3, 'UTC'))),
              min(ifNull(dequeued_at, toDateTime64('2299-12-31 00:00:00', 3, 'UTC'))),
              min(ifNull(ended_at, toDateTime64('2299-12-31 00:00:00', 3, 'UTC')))) AS left_at
    FROM calls_partial
    WHERE tenant_id = {tenant:String}
      AND toStartOfHour(at) >= toStartOfHour({now:DateTime64(3, 'UTC')} - INTERVAL 4 HOUR)
      AND at > {now:DateTime64(3, 'UTC')} - INTERVAL 4 HOUR AND at <= {now:DateTime64(3, 'UTC')}
    GROUP BY call_id
)
WHERE queued IS NOT NULL AND left_at > {now:DateTime64(3, 'UTC')}
GROUP BY queue
ORDER BY queue
