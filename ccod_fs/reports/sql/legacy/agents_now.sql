-- agents_now for ClickHouse 18.16 (times are epoch ms): same definition as ../agents_now.sql.
-- Params: tenant String, now UInt64 (epoch ms).
SELECT status, state, count() AS agents, groupArray(agent_id) AS agent_ids
FROM
(
    SELECT agent_id, anyIf(latest, kind = 'status') AS status, anyIf(latest, kind = 'state') AS state
    FROM
    (
        SELECT agent_id, kind, argMax(value, changed_at) AS latest
        FROM agent_state_changes
        WHERE tenant_id = {tenant:String} AND changed_at <= {now:UInt64}
        GROUP BY agent_id, kind
    )
    GROUP BY agent_id
)
WHERE status != 'Logged Out'
GROUP BY status, state
ORDER BY status, state
