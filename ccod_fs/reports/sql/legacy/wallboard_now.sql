-- wallboard_now for ClickHouse 18.16 (times are epoch ms): same as ../wallboard_now.sql.
-- one round trip for the wallboard's small reads: today's interval versions
-- (queue_interval_versions.sql), the calls waiting now (waiting_now.sql) and each agent's latest
-- status and state (agents_latest.sql), as rows of one shape tagged by `part`:
--   versions  key = queue, n1 = interval start (epoch s), n2 = version
--   waiting   key = queue, text1 = longest waiting call, n1 = calls waiting, n2 = longest wait ms
--   agents    key = agent, text1 = kind, text2 = latest value, n1 = 1 when it is after {now}
-- Params: tenant String, from UInt64, now UInt64 (epoch ms).
SELECT 'versions' AS part, toString(queue) AS key, '' AS text1, '' AS text2, toUInt64(interval_s) AS n1,
       toInt64(version) AS n2
FROM ({queue_interval_versions})
UNION ALL
SELECT 'waiting' AS part, toString(queue) AS key, toString(longest_waiting_call) AS text1, '' AS text2,
       toUInt64(calls_waiting) AS n1, toInt64(longest_wait_ms) AS n2
FROM ({waiting_now})
UNION ALL
SELECT 'agents' AS part, toString(agent_id) AS key, toString(kind) AS text1, toString(latest) AS text2,
       toUInt64(after_now) AS n1, toInt64(0) AS n2
FROM ({agents_latest})
