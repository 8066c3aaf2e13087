-- live_agents: the embedded wallboard's cold read of agents: each agent's newest status and state
-- with the time of that change (epoch ms), from agent_state_now (0006). agents_latest.sql is the
-- same read with an "after {now}" flag instead of the time.
-- Params: tenant String.
SELECT agent_id, kind, argMax(value, changed_at) AS latest, toUnixTimestamp64Milli(max(changed_at)) AS changed_ms
FROM agent_state_now
WHERE tenant_id = {tenant:String}
GROUP BY agent_id, kind
