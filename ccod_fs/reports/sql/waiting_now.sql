-- waiting_now: calls waiting in each queue of a tenant right now, and the longest current wait.
-- Params: tenant String, now DateTime64(3). A call waits at {now} when it was queued in the 24 h
-- before and was not yet answered, dequeued or hung up at {now} ("as of" semantics, so the same
-- query replays a past moment exactly).
SELECT
    queue_id AS queue,
    count() AS calls_waiting,
    max(dateDiff('millisecond', queued_at, {now:DateTime64(3, 'UTC')})) AS longest_wait_ms,
    argMin(call_id, queued_at) AS longest_waiting_call
FROM calls
WHERE tenant_id = {tenant:String}
  AND queued_at IS NOT NULL AND queued_at <= {now:DateTime64(3, 'UTC')}
  AND queued_at > {now:DateTime64(3, 'UTC')} - INTERVAL 1 DAY
  AND least(ifNull(answered_at, toDateTime64('2299-12-31 00:00:00', 3, 'UTC')),
            ifNull(dequeued_at, toDateTime64('2299-12-31 00:00:00', 3, 'UTC')),
            ifNull(ended_at, toDateTime64('2299-12-31 00:00:00', 3, 'UTC'))) > {now:DateTime64(3, 'UTC')}
GROUP BY queue_id
ORDER BY queue
