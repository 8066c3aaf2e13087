-- live_wait_calls: the embedded wallboard's cold read of queue waits (ccod_fs/reports/live_board.py
-- keeps them in memory afterwards): per call with a queue-wait fact after {from} (now - 4 h), its
-- queued facts (queue, earliest queued_at, latest fact time) and its ending facts (earliest
-- answer, dequeue or hangup), from queue_wait_events (0006). Times in epoch milliseconds.
-- Params: tenant String, from DateTime64(3).
SELECT
    call_id,
    anyIf(queue_id, gone = 0) AS queue,
    countIf(gone = 0) AS queued_facts,
    toUnixTimestamp64Milli(minIf(queued_at, gone = 0)) AS queued_ms,
    toUnixTimestamp64Milli(maxIf(at, gone = 0)) AS queued_fact_ms,
    countIf(gone = 1) AS gone_facts,
    toUnixTimestamp64Milli(minIf(at, gone = 1)) AS gone_ms
FROM queue_wait_events
WHERE tenant_id = {tenant:String} AND at > {from:DateTime64(3, 'UTC')}
GROUP BY call_id
