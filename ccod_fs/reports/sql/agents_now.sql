-- agents_now: how many agents are in each (status, state) right now; logged-out agents excluded.
-- Params: tenant String, now DateTime64(3). Latest change per agent and kind wins (two changes in
-- the same millisecond are ambiguous anyway; duplicates carry the same value).
-- Reads agent_state_now (0006: the latest change per agent and kind, a few rows per agent). Where
-- that latest change is after {now} (a replay of a past moment), the agent's history in
-- agent_state_changes answers instead, so the result is "as of {now}" either way.
SELECT status, state, count() AS agents, groupArray(agent_id) AS agent_ids
FROM
(
    SELECT agent_id, anyIf(latest, kind = 'status') AS status, anyIf(latest, kind = 'state') AS state
    FROM
    (
        SELECT agent_id, kind, latest
        FROM
        (
            SELECT agent_id, kind, argMax(value, changed_at) AS latest, max(changed_at) AS last_at
            FROM agent_state_now
            WHERE tenant_id = {tenant:String}
            GROUP BY agent_id, kind
        )
        WHERE last_at <= {now:DateTime64(3, 'UTC')}
        UNION ALL
        SELECT agent_id, kind, argMax(value, changed_at) AS latest
        FROM agent_state_changes
        WHERE tenant_id = {tenant:String} AND changed_at <= {now:DateTime64(3, 'UTC')}
          AND (agent_id, kind) IN
          (
              SELECT agent_id, kind
              FROM agent_state_now
              WHERE tenant_id = {tenant:String}
              GROUP BY agent_id, kind
              HAVING max(changed_at) > {now:DateTime64(3, 'UTC')}
          )
        GROUP BY agent_id, kind
    )
    GROUP BY agent_id
)
WHERE status != 'Logged Out'
GROUP BY status, state
ORDER BY status, state
