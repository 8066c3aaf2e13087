-- call_handling: one row per call of a tenant queued in [from, to), with after-call work.
-- Params: tenant String, from/to DateTime64(3), now DateTime64(3).
-- acw_ms: the agent's ACW state interval ('After Call Work', 'Wrap Up', 'Wrap-Up', 'ACW') that
-- starts within 5 s after the agent's bridge ended (ASOF join); an ACW still open counts up to now.
-- handle_ms = talk_ms + hold_ms + acw_ms (talk excludes hold, so no second is counted twice).
WITH
acw AS
(
    SELECT agent_id, started_at, dateDiff('millisecond', started_at, coalesce(ended_at, {now:DateTime64(3, 'UTC')})) AS acw_ms
    FROM
    (
        SELECT
            agent_id,
            value,
            changed_at AS started_at,
            nullIf(leadInFrame(changed_at, 1, toDateTime64(0, 3, 'UTC')) OVER (PARTITION BY agent_id
                ORDER BY changed_at, event_id ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING), toDateTime64(0, 3, 'UTC'))
                AS ended_at
        FROM
        (
            SELECT DISTINCT agent_id, value, changed_at, event_id
            FROM agent_state_changes
            WHERE tenant_id = {tenant:String} AND kind = 'state'
              AND changed_at >= {from:DateTime64(3, 'UTC')} - INTERVAL 1 DAY
              AND changed_at < {to:DateTime64(3, 'UTC')} + INTERVAL 1 DAY
        )
    )
    WHERE value IN ('After Call Work', 'Wrap Up', 'Wrap-Up', 'ACW')
),
c AS
(
    SELECT *, ifNull(agent_id, '') AS agent_key, coalesce(agent_ended_at, toDateTime64(0, 3, 'UTC')) AS bridge_end
    FROM calls
    WHERE tenant_id = {tenant:String}
      AND queued_at >= {from:DateTime64(3, 'UTC')} AND queued_at < {to:DateTime64(3, 'UTC')}
)
SELECT
    c.* EXCEPT (agent_key, bridge_end),
    if(c.answered AND a.acw_ms > 0 AND dateDiff('millisecond', c.bridge_end, a.started_at) <= 5000, a.acw_ms, 0)
        AS acw_ms,
    if(c.answered, c.talk_ms + c.hold_ms + acw_ms, 0) AS handle_ms
FROM c
ASOF LEFT JOIN acw AS a ON c.agent_key = a.agent_id AND c.bridge_end <= a.started_at
