"""The wallboard phase of ``benchmarks.clickhouse_sink``: 10 M raw events generated in SQL
(embedded chDB and the server), then the median time of the wallboard query for one tenant.

The rows are generated into the tables the sink writes (calls_partial, agent_state_changes,
events_raw), so the materialized views (0004-0006) fill the aggregate and live tables exactly as
on sink inserts. Before every timed run, new calls arrive and a few old call facts are delivered
again (untimed), so the wallboard re-reads changed intervals as it does live; at the end its
today counters are checked against queue_today.sql, which reads every interval."""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ccod_fs.clickhouse.client import ChdbClient, NativeClient
from ccod_fs.clickhouse.migrate import migrate

WALLBOARD_GEN = """
INSERT INTO calls_partial (tenant_id, call_id, event_id, type, at, queue_id, agent_id, queued_at, answered_at,
                           answer_wait_ms, dequeued_at, outcome, dequeue_wait_ms, agent_ended_at, bridge_ms, ended_at)
SELECT
    ['acme', 'globex', 'initech', 'umbrella', 'hooli'][(call % 5) + 1] AS tenant_id,
    concat({prefix:String}, toString(call)) AS call_id,
    generateUUIDv4(number) AS event_id,
    ['call.offered', 'call.queued', 'call.answered', 'call.dequeued', 'call.agent_ended', 'call.hold',
     'call.ended'][step + 1] AS type,
    ts AS at,
    ['sales', 'support', 'billing'][(call % 3) + 1] AS queue_id,
    if(step IN (2, 4) AND NOT abandon, concat('agent-', toString(call % 40)), '') AS agent_id,
    if(step = 1, ts, NULL) AS queued_at,
    if(step = 2 AND NOT abandon, ts, NULL) AS answered_at,
    if(step = 2 AND NOT abandon, toUInt32(call % 45000), NULL) AS answer_wait_ms,
    if(step = 3, ts, NULL) AS dequeued_at,
    if(step = 3, if(abandon, 'abandoned', 'answered'), NULL) AS outcome,
    if(step = 3, toUInt32(call % 60000), NULL) AS dequeue_wait_ms,
    if(step = 4 AND NOT abandon, ts, NULL) AS agent_ended_at,
    if(step = 4 AND NOT abandon, toUInt32(60000), NULL) AS bridge_ms,
    if(step = 6, ts, NULL) AS ended_at
FROM
(
    SELECT number, intDiv(number, 7) AS call, number % 7 AS step, call % 20 = 0 AS abandon,
           {now:DateTime64(3, 'UTC')} - toIntervalMillisecond(({n:UInt64} - number) * 30) AS ts
    FROM numbers({n:UInt64})
)
"""


_LIVE_COLUMNS = ("tenant_id", "call_id", "event_id", "type", "at", "queue_id", "agent_id", "queued_at",
                 "answered_at", "answer_wait_ms", "dequeued_at", "outcome", "dequeue_wait_ms", "agent_ended_at",
                 "bridge_ms", "ended_at")
_TIME_COLUMNS = {"at", "queued_at", "answered_at", "dequeued_at", "agent_ended_at", "ended_at"}
_TYPES = ("call.offered", "call.queued", "call.answered", "call.dequeued", "call.agent_ended", "call.hold",
          "call.ended")
_TENANTS = ("acme", "globex", "initech", "umbrella", "hooli")


def live_rows(n: int, now_ms: int, prefix: str) -> dict[str, list[Any]]:
    """WALLBOARD_GEN's rows for ``n`` facts, built in Python: a live batch as the sink inserts it
    (column lists, epoch-ms times) through the client's ``insert``."""
    cols: dict[str, list[Any]] = {c: [] for c in _LIVE_COLUMNS}
    for number in range(n):
        call, step = divmod(number, 7)
        abandon, ts = call % 20 == 0, now_ms - (n - number) * 30
        talk = not abandon and step in (2, 4)
        for name, value in (
            ("tenant_id", _TENANTS[call % 5]), ("call_id", f"{prefix}{call}"), ("event_id", str(uuid.uuid4())),
            ("type", _TYPES[step]), ("at", ts), ("queue_id", ("sales", "support", "billing")[call % 3]),
            ("agent_id", f"agent-{call % 40}" if talk else ""), ("queued_at", ts if step == 1 else None),
            ("answered_at", ts if step == 2 and not abandon else None),
            ("answer_wait_ms", call % 45000 if step == 2 and not abandon else None),
            ("dequeued_at", ts if step == 3 else None),
            ("outcome", ("abandoned" if abandon else "answered") if step == 3 else None),
            ("dequeue_wait_ms", call % 60000 if step == 3 else None),
            ("agent_ended_at", ts if step == 4 and not abandon else None),
            ("bridge_ms", 60000 if step == 4 and not abandon else None), ("ended_at", ts if step == 6 else None),
        ):
            cols[name].append(value)
    return cols


def redeliver(client: Any, since_ms: int, legacy: bool) -> None:
    """A re-delivery: seven call facts of acme from about two hours ago inserted again, same event ids."""
    select = ", ".join(
        (c if legacy else f"toUnixTimestamp64Milli({c})") + f" AS {c}" if c in _TIME_COLUMNS
        else f"toString(event_id) AS {c}" if c == "event_id" else c for c in _LIVE_COLUMNS)
    since = "{since:UInt64}" if legacy else "fromUnixTimestamp64Milli({since:Int64}, 'UTC')"
    rows = client.query(f"SELECT {select} FROM calls_partial WHERE tenant_id = 'acme' AND at >= {since} "
                        "ORDER BY at, event_id LIMIT 7", {"since": since_ms})
    client.insert("calls_partial", {c: [r[c] for r in rows] for c in _LIVE_COLUMNS})


def settle(client: Any, timeout: float = 180.0) -> float:
    """Merge the freshly generated data as background merges eventually would (a steady-state
    database: merged parts, then small live inserts), so that the timed runs do not race the
    merges of 10 M bulk-loaded rows that a live database spreads over days."""
    started = time.perf_counter()
    for r in client.query("SELECT name FROM system.tables WHERE database = {db:String} AND engine LIKE '%MergeTree'",
                          {"db": client.database}):
        client.command(f"OPTIMIZE TABLE {r['name']} FINAL")
    while time.perf_counter() - started < timeout:
        rows = client.query("SELECT count() AS n FROM system.merges WHERE database = {db:String}",
                            {"db": client.database})
        if not rows[0]["n"]:
            break
        time.sleep(0.5)
    return time.perf_counter() - started


def legacy_gen(sql: str) -> str:
    """The generator SQL for 18.16: epoch-ms UInt64 times instead of DateTime64."""
    return (sql.replace("{now:DateTime64(3, 'UTC')} - toIntervalMillisecond(({n:UInt64} - number) * 30)",
                        "{now:UInt64} - ({n:UInt64} - number) * 30")
               .replace("generateUUIDv4(number)", "generateUUIDv4()"))


def bench_wallboard_server(ch: Any, n: int, runs: int = 15) -> float:
    """The same wallboard on the 18.16 server (legacy SQL over the call facts), same data shape."""

    client = NativeClient(ch.host, ch.port, f"wallboard_{uuid.uuid4().hex[:6]}")
    migrate(client)
    now = datetime.now(UTC).replace(microsecond=0)
    now_ms = int(now.timestamp() * 1000)
    started = time.perf_counter()
    client.command(legacy_gen(WALLBOARD_GEN), {"n": n, "now": now_ms, "prefix": "c"})
    client.command(
        "INSERT INTO events_raw (tenant_id, occurred_at, event_id, type, schema_version, call_id, queue_id, "
        "source_service, payload) SELECT ['acme', 'globex', 'initech', 'umbrella', 'hooli'][(number % 5) + 1], "
        "{now:UInt64} - number * 30, generateUUIDv4(), 'call.queued', 1, concat('c', toString(intDiv(number, 7))), "
        "'sales', 'bench', '{}' FROM numbers({n:UInt64})", {"n": n, "now": now_ms})
    client.command(
        "INSERT INTO agent_state_changes (tenant_id, agent_id, kind, value, previous, changed_at, event_id) "
        "SELECT ['acme', 'globex', 'initech', 'umbrella', 'hooli'][(number % 5) + 1], "
        "concat('agent-', toString(number % 40)), if(number % 2 = 0, 'state', 'status'), "
        "if(number % 2 = 0, ['Waiting', 'In a queue call', 'After Call Work'][(number % 3) + 1], 'Available'), '', "
        "{now:UInt64} - number * 1000, generateUUIDv4() FROM numbers(200000)", {"now": now_ms})
    print(f"server wallboard data: {n:,} events generated in clickhouse-server {client.server_major} in "
          f"{time.perf_counter() - started:.1f}s; merged in {settle(client):.1f}s")

    def live(run: int) -> None:
        client.insert("calls_partial", live_rows(35, now_ms - 1000, f"live{run}-"))
        redeliver(client, now_ms - 7_200_000, legacy=True)

    median = _time_wallboard(client, now, runs, "server wallboard", live)
    client.command(f"DROP DATABASE {client.database}")
    client.close()
    return median


def bench_wallboard(n: int, runs: int = 15) -> float:
    """Wallboard on ``n`` raw events in embedded chDB: rows generated in SQL, then median query time."""

    path = Path(tempfile.mkdtemp(prefix="bench-chdb-"))
    client = ChdbClient(path, f"wallboard_{uuid.uuid4().hex[:6]}")
    migrate(client)
    now = datetime.now(UTC).replace(microsecond=0)
    started = time.perf_counter()
    client.command(WALLBOARD_GEN, {"n": n, "now": now, "prefix": "c"})
    # events_raw at the same size (analysts' table; not read by the wallboard, but it is there)
    client.command(
        "INSERT INTO events_raw (tenant_id, occurred_at, event_id, type, schema_version, call_id, queue_id, "
        "source_service, payload) SELECT ['acme', 'globex', 'initech', 'umbrella', 'hooli'][(number % 5) + 1], "
        "{now:DateTime64(3, 'UTC')} - toIntervalMillisecond(number * 30), generateUUIDv4(), 'call.queued', 1, "
        "concat('c', toString(intDiv(number, 7))), 'sales', 'bench', '{}' FROM numbers({n:UInt64})",
        {"n": n, "now": now})
    client.command(
        "INSERT INTO agent_state_changes (tenant_id, agent_id, kind, value, previous, changed_at, event_id) "
        "SELECT ['acme', 'globex', 'initech', 'umbrella', 'hooli'][(number % 5) + 1], "
        "concat('agent-', toString(number % 40)), if(number % 2 = 0, 'state', 'status'), "
        "if(number % 2 = 0, ['Waiting', 'In a queue call', 'After Call Work'][(number % 3) + 1], 'Available'), '', "
        "{now:DateTime64(3, 'UTC')} - toIntervalSecond(number), generateUUIDv4() FROM numbers(200000)",
        {"now": now})
    print(f"wallboard data: {n:,} events generated in chDB in {time.perf_counter() - started:.1f}s; "
          f"merged in {settle(client):.1f}s")

    now_ms = int(now.timestamp() * 1000)

    def live(run: int) -> None:
        client.insert("calls_partial", live_rows(35, now_ms - 1000, f"live{run}-"))
        redeliver(client, now_ms - 7_200_000, legacy=False)

    median = _time_wallboard(client, now, runs, "wallboard", live)
    # chDB stays open until the process ends: drop the 10 M rows now (the temp dir was left at ~1.8 GB)
    client.command(f"DROP DATABASE {client.database} SYNC")
    return median


def _time_wallboard(client: Any, now: Any, runs: int, label: str, live: Callable[[int], None]) -> float:
    """Median ms of the wallboard (all queues of one tenant, now) after one cold run; before each
    run ``live`` inserts new and re-delivered call facts (untimed). On chDB the same runs also
    time the SQL-only read (``Reports(live=False)``: the baseline), interleaved."""
    from ccod_fs.reports import Reports

    reports, by_sql = Reports(client), Reports(client, live=False)
    t = time.perf_counter()
    reports.wallboard("acme", now)
    cold = (time.perf_counter() - t) * 1000
    embedded = isinstance(client, ChdbClient)
    samples: list[float] = []
    sql_samples: list[float] = []
    board: dict[str, Any] = {}
    for run in range(runs):
        for target, out in ((reports, samples), (by_sql, sql_samples)) if embedded else ((reports, samples),):
            live(run * 2 + (out is sql_samples))
            t = time.perf_counter()
            answer = target.wallboard("acme", now)
            out.append((time.perf_counter() - t) * 1000)
            if target is reports:
                board = answer
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if reports.queue_today_cached("acme", midnight) != reports.queue_today("acme", midnight):
        raise AssertionError("wallboard counters differ from queue_today.sql")
    board = reports.wallboard("acme", now)
    expected = by_sql.wallboard("acme", now)
    if (board["queues"], board["agents"]) != (expected["queues"], expected["agents"]):
        raise AssertionError("the wallboard differs from the one read by SQL alone")
    median = statistics.median(samples)
    baseline = f"; SQL-only read: median {statistics.median(sql_samples):.1f} ms" if sql_samples else ""
    print(f"{label} (acme, {len(board['queues'])} queues): median {median:.1f} ms over {runs} runs "
          f"(min {min(samples):.1f}, max {max(samples):.1f}; first, cold: {cold:.1f}){baseline}; "
          f"today's counters equal queue_today.sql, the board equals the SQL-only read")
    return median
