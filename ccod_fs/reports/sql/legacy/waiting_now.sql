-- waiting_now for ClickHouse 18.16 (times are epoch ms): same definition and answers as
-- ../waiting_now.sql, written as queued-calls NOT IN left-calls (faster on 18.16 than grouping).
-- calls waiting in each queue of a tenant right now, and the longest current wait.
-- Params: tenant String, now UInt64 (epoch ms). A call waits at {now} when it was queued in the 4 h
-- before and no answer, dequeue or caller hangup of it happened by {now} ("as of" semantics, so
-- the same query replays a past moment exactly). Reads queue_wait_events (0006), sorted by
-- (tenant, gone, time): the calls that left the queue in those 4 hours, then the queued calls
-- not among them, grouped per call (few: only those still waiting). Set membership and min/any
-- per call are unaffected by duplicates, so no FINAL is needed.
SELECT
    queue,
    count() AS calls_waiting,
    max({now:UInt64} - queued) AS longest_wait_ms,
    argMin(call_id, queued) AS longest_waiting_call
FROM
(
    SELECT call_id, any(queue_id) AS queue, min(queued_at) AS queued
    FROM queue_wait_events
    WHERE tenant_id = {tenant:String} AND gone = 0
      AND at > {now:UInt64} - 14400000 AND at <= {now:UInt64}
      AND call_id NOT IN
      (
          SELECT call_id
          FROM queue_wait_events
          WHERE tenant_id = {tenant:String} AND gone = 1
            AND at > {now:UInt64} - 14400000 AND at <= {now:UInt64}
      )
    GROUP BY call_id
)
WHERE queue != ''
GROUP BY queue
ORDER BY queue
