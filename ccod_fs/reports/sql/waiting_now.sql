-- waiting_now: calls waiting in each queue of a tenant right now, and the longest current wait.
-- Params: tenant String, now DateTime64(3). A call waits at {now} when it was queued in the 4 h
-- before and no answer, dequeue or caller hangup of it happened by {now} ("as of" semantics, so
-- the same query replays a past moment exactly). Reads only those four fact types of those
-- 4 hours (the (tenant, hour) key prefix bounds the scan); min/count over them are unaffected
-- by duplicates, so no FINAL is needed.
SELECT
    queue,
    count() AS calls_waiting,
    max(dateDiff('millisecond', queued, {now:DateTime64(3, 'UTC')})) AS longest_wait_ms,
    argMin(call_id, queued) AS longest_waiting_call
FROM
(
    SELECT
        call_id,
        anyIf(queue_id, type = 'call.queued') AS queue,
        minIf(coalesce(queued_at, at), type = 'call.queued') AS queued,
        countIf(type != 'call.queued' AND (type != 'call.ended' OR ended_at IS NOT NULL)) AS gone
    FROM calls_partial
    WHERE tenant_id = {tenant:String}
      AND toStartOfHour(at) >= toStartOfHour({now:DateTime64(3, 'UTC')} - INTERVAL 4 HOUR)
      AND at > {now:DateTime64(3, 'UTC')} - INTERVAL 4 HOUR AND at <= {now:DateTime64(3, 'UTC')}
      AND type IN ('call.queued', 'call.answered', 'call.dequeued', 'call.ended')
    GROUP BY call_id
)
WHERE queue != '' AND gone = 0
GROUP BY queue
ORDER BY queue
