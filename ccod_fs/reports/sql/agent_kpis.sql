-- agent_kpis: per interval and agent.
-- Params: tenant String, from/to DateTime64(3), now DateTime64(3), interval_min UInt32.
--   answered, talk_ms, hold_ms, acw_ms, aht_ms   calls answered in the interval (by queued_at, as queue_kpis)
--   on_contact_ms   time in 'In a queue call' or an ACW state, cut at interval bounds
--   idle_ms         time in 'Waiting', 'Receiving' or 'Reserved' (available, not on a contact)
--   occupancy       on_contact / (on_contact + idle)   (Amazon Connect)
WITH
states AS
(
    SELECT agent_id, value, changed_at AS s,
        coalesce(nullIf(leadInFrame(changed_at, 1, toDateTime64(0, 3, 'UTC')) OVER (PARTITION BY agent_id
            ORDER BY changed_at, event_id ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING), toDateTime64(0, 3, 'UTC')),
            {now:DateTime64(3, 'UTC')}) AS e
    FROM
    (
        SELECT DISTINCT agent_id, value, changed_at, event_id
        FROM agent_state_changes
        WHERE tenant_id = {tenant:String} AND kind = 'state'
          AND changed_at >= {from:DateTime64(3, 'UTC')} - INTERVAL 1 DAY AND changed_at < {to:DateTime64(3, 'UTC')}
    )
),
step AS (SELECT toInt64({interval_min:UInt32}) * 60000 AS ms),
pieces AS
(
    SELECT
        agent_id,
        value,
        arrayJoin(range(
            intDiv(toUnixTimestamp64Milli(greatest(s, {from:DateTime64(3, 'UTC')})), (SELECT ms FROM step))
                * (SELECT ms FROM step),
            toUnixTimestamp64Milli(least(e, {to:DateTime64(3, 'UTC')})),
            (SELECT ms FROM step))) AS bucket_ms,
        greatest(0, least(toUnixTimestamp64Milli(least(e, {to:DateTime64(3, 'UTC')})), bucket_ms + (SELECT ms FROM step))
            - greatest(toUnixTimestamp64Milli(greatest(s, {from:DateTime64(3, 'UTC')})), bucket_ms)) AS ms_in
    FROM states
    WHERE e > {from:DateTime64(3, 'UTC')} AND s < {to:DateTime64(3, 'UTC')}
),
time_in_state AS
(
    SELECT
        agent_id,
        toDateTime(intDiv(bucket_ms, 1000), 'UTC') AS interval_start,
        toInt64(coalesce(sumIf(ms_in, value IN ('In a queue call', 'After Call Work', 'Wrap Up', 'Wrap-Up', 'ACW')), 0))
            AS on_contact_ms,
        toInt64(coalesce(sumIf(ms_in, value IN ('Waiting', 'Receiving', 'Reserved')), 0)) AS idle_ms
    FROM pieces
    GROUP BY agent_id, interval_start
),
handled AS
(
    SELECT
        agent_id AS agent,
        toStartOfInterval(queued_at, toIntervalMinute({interval_min:UInt32})) AS interval_start,
        count() AS answered,
        sum(talk_ms) AS talk_ms,
        sum(hold_ms) AS hold_ms,
        sum(acw_ms) AS acw_ms,
        avg(handle_ms) AS aht_ms
    FROM (SELECT *, answered AS is_answered FROM ({call_handling}))
    WHERE is_answered
    GROUP BY agent, interval_start
)
SELECT
    interval_start,
    agent_id,
    answered,
    talk_ms,
    hold_ms,
    acw_ms,
    aht_ms,
    on_contact_ms,
    idle_ms,
    on_contact_ms / nullIf(on_contact_ms + idle_ms, 0) AS occupancy
FROM
(
    SELECT
        if(h.agent != '', h.agent, t.agent_id) AS agent_id,
        if(h.agent != '', h.interval_start, t.interval_start) AS interval_start,
        h.answered AS answered, h.talk_ms AS talk_ms, h.hold_ms AS hold_ms, h.acw_ms AS acw_ms,
        if(h.answered > 0, h.aht_ms, NULL) AS aht_ms,
        t.on_contact_ms AS on_contact_ms, t.idle_ms AS idle_ms
    FROM handled AS h
    FULL OUTER JOIN time_in_state AS t ON h.agent = t.agent_id AND h.interval_start = t.interval_start
)
ORDER BY interval_start, agent_id
