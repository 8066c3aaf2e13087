-- waiting_now: calls waiting in each queue of a tenant right now, and the longest current wait.
-- Params: tenant String, now DateTime64(3). A call waits at {now} when it was queued in the 4 h
-- before and no answer, dequeue or caller hangup of it happened by {now} ("as of" semantics, so
-- the same query replays a past moment exactly). Reads queue_wait_events (0006): only the facts
-- that start (gone = 0) or end (gone = 1) a wait, so the 4 hours are two small key ranges, read
-- in one pass and grouped per call (the 18.16 version, legacy/waiting_now.sql, uses NOT IN,
-- which is faster there). min/max/any per call are unaffected by duplicates: no FINAL needed.
SELECT
    queue,
    count() AS calls_waiting,
    max(dateDiff('millisecond', queued, {now:DateTime64(3, 'UTC')})) AS longest_wait_ms,
    argMin(call_id, queued) AS longest_waiting_call
FROM
(
    SELECT call_id, anyIf(queue_id, gone = 0) AS queue, minIf(queued_at, gone = 0) AS queued, max(gone) AS left_queue
    FROM queue_wait_events
    WHERE tenant_id = {tenant:String}
      AND at > {now:DateTime64(3, 'UTC')} - INTERVAL 4 HOUR AND at <= {now:DateTime64(3, 'UTC')}
    GROUP BY call_id
)
WHERE queue != '' AND left_queue = 0
GROUP BY queue
ORDER BY queue
