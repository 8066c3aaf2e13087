-- agents_latest: the latest status and the latest state of each agent of a tenant, from
-- agent_state_now (0006: a few rows per agent; argMax by time, so late or repeated changes never
-- win over a newer one). after_now = 1 when that change is after {now}: then only
-- agents_now.sql, which reads the history, answers "as of {now}".
-- Params: tenant String, now DateTime64(3).
SELECT agent_id, kind, argMax(value, changed_at) AS latest, max(changed_at) > {now:DateTime64(3, 'UTC')} AS after_now
FROM agent_state_now
WHERE tenant_id = {tenant:String}
GROUP BY agent_id, kind
