"""The wallboard's fast paths (0006 serving tables, per-interval versions) on chDB and on 18.16.

Same hand-built data as test_reports.py (every event written twice). Late and re-delivered events
arrive after the wallboard has cached its per-interval counters: the numbers move exactly as
worked out by hand, never double count, and always equal the SQL-only reports.
"""

from __future__ import annotations

import random
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from test_reports import POLICY, at, dataset

from ccod_fs.clickhouse.client import ChdbClient, ClickHouseClient
from ccod_fs.clickhouse.migrate import SCHEMA_DIR, migrate
from ccod_fs.reports import Reports
from ccod_fs.sink.synthetic import EventFactory, agent_states, call_events
from ccod_fs.sink.writer import Sink


@pytest.fixture(params=["chdb", "server"])
def client(request: pytest.FixtureRequest, chdb_path: Path) -> ClickHouseClient:
    if request.param == "chdb":
        return ChdbClient(chdb_path, f"live_{uuid.uuid4().hex[:8]}")
    factory: Callable[[str | None], ClickHouseClient] = request.getfixturevalue("native_factory")
    return factory(None)


def _write_twice(sink: Sink, events: list, seed: int) -> None:
    sink.write_events(events)
    again = events[:]
    random.Random(seed).shuffle(again)
    for i in range(0, len(again), 5):
        sink.write_events(again[i : i + 5])


def _sorted_ids(rows: list[dict]) -> list[dict]:
    return [{**r, "agent_ids": sorted(r["agent_ids"])} for r in rows]


def _today(reports: Reports) -> dict[str, dict]:
    return {r["queue"]: r for r in reports.wallboard("acme", at(30), POLICY)["queues"]}


def test_cached_counters_follow_late_and_duplicate_events(client: ClickHouseClient) -> None:
    migrate(client)
    sink = Sink(client)
    events = dataset()
    _write_twice(sink, events, seed=7)
    reports = Reports(client)
    sales = _today(reports)["sales"]
    assert (sales["offered"], sales["answered"], sales["abandoned"], sales["answered_in_sl"]) == (7, 4, 2, 3)

    # every event once more, in another order: nothing moves, though every interval's version did
    _write_twice(sink, events, seed=8)
    assert _today(reports)["sales"] == sales

    # a late call into the 08:00 interval, which the wallboard has cached: s8 queued 08:01:32,
    # answered after 8 s (within the 20 s threshold); written twice
    late = call_events(EventFactory(), tenant="acme", queue="sales", start=at(1, 30), call_id="s8", agent="a3",
                       wait_ms=8_000, talk_ms=40_000)
    _write_twice(sink, late, seed=9)
    sales = _today(reports)["sales"]
    assert (sales["offered"], sales["answered"], sales["abandoned"]) == (8, 5, 2)
    assert (sales["answered_in_sl"], sales["short_abandons"]) == (4, 1)
    assert sales["asa_ms"] == pytest.approx((10 + 25 + 20 + 5 + 8) * 1000 / 5)
    assert sales["sl_abandons_fail"] == pytest.approx(4 / 7)
    assert sales["service_level"] == pytest.approx(4 / 7)
    assert sales["abandon_rate"] == pytest.approx(2 / 8)

    # the cached path equals the SQL-only report, and a fresh (cold) library agrees
    since = at(0).replace(hour=0, minute=0)
    assert reports.queue_today_cached("acme", since, POLICY) == reports.queue_today("acme", since, POLICY)
    assert Reports(client).queue_today_cached("acme", since, POLICY) == reports.queue_today("acme", since, POLICY)
    # other tenants keep their own counters and cache entries
    assert [r["offered"] for r in reports.queue_today_cached("globex", since, POLICY)] == [1]


def test_agents_now_live_table_and_replay(client: ClickHouseClient) -> None:
    migrate(client)
    sink = Sink(client)
    _write_twice(sink, dataset(), seed=3)
    reports = Reports(client)
    now = at(60)  # after every change: answered from agent_state_now alone
    assert not any(r["after_now"] for r in reports.run("agents_latest", tenant="acme", now=now))
    live = _sorted_ids(reports.agents_now("acme", now))
    assert live == _sorted_ids(reports.run("agents_now", tenant="acme", now=now))
    assert {(r["status"], r["state"]): r["agent_ids"] for r in live}[("On Break", "")] == ["a5"]

    # a late, older status change and a re-delivered one change nobody's current status
    f = EventFactory()
    stale = agent_states(f, tenant="acme", agent="a5", at=at(-5), states=(("Available", 0),), kind="status")
    _write_twice(sink, stale, seed=4)
    assert _sorted_ids(reports.agents_now("acme", now)) == live
    # a newer one does
    newer = agent_states(f, tenant="acme", agent="a5", at=at(45), states=(("Available", 0),), kind="status")
    sink.write_events(newer)
    got = {(r["status"], r["state"]): r["agent_ids"] for r in _sorted_ids(reports.agents_now("acme", now))}
    assert ("On Break", "") not in got and "a5" in got[("Available", "")]
    # a past moment (changes after it exist) is answered from the history, as of that moment
    past = _sorted_ids(reports.agents_now("acme", at(30)))
    assert past == _sorted_ids(reports.run("agents_now", tenant="acme", now=at(30)))
    assert {(r["status"], r["state"]): r["agent_ids"] for r in past}[("On Break", "")] == ["a5"]


def test_migration_0006_backfills_existing_rows(client: ClickHouseClient, tmp_path: Path) -> None:
    before = tmp_path / "schema"
    before.mkdir()
    for path in sorted(SCHEMA_DIR.glob("*.sql")):
        if int(path.name[:4]) < 6:
            shutil.copy(path, before / path.name)
    migrate(client, before)
    _write_twice(Sink(client), dataset(), seed=5)
    assert migrate(client) == [6]
    reports = Reports(client)
    sales = _today(reports)["sales"]
    assert (sales["offered"], sales["answered"], sales["abandoned"], sales["answered_in_sl"]) == (7, 4, 2, 3)
    assert reports.waiting_now("acme", at(3, 30)) == [
        {"queue": "sales", "calls_waiting": 1, "longest_wait_ms": 28_000, "longest_waiting_call": "s4"}]
    assert sum(r["agents"] for r in reports.agents_now("acme", at(60))) == 4


@pytest.mark.parametrize("minute", [3.5, 4.5, 5 + 1 / 6, 40])
def test_wallboard_round_trip_equals_the_separate_reports(client: ClickHouseClient, minute: float) -> None:
    """wallboard_now.sql (one round trip) gives what waiting_now, agents_now and queue_today give."""
    migrate(client)
    _write_twice(Sink(client), dataset(), seed=6)
    reports = Reports(client)
    now = at(0) + (at(1) - at(0)) * minute
    board = reports.wallboard("acme", now, POLICY)
    waiting = {r["queue"]: r for r in reports.waiting_now("acme", now)}
    assert {q["queue"]: {k: q[k] for k in ("calls_waiting", "longest_wait_ms", "longest_waiting_call")}
            for q in board["queues"] if "calls_waiting" in q} == {
        queue: {k: w[k] for k in ("calls_waiting", "longest_wait_ms", "longest_waiting_call")}
        for queue, w in waiting.items()}
    assert _sorted_ids(board["agents"]) == _sorted_ids(reports.run("agents_now", tenant="acme", now=now))
    today = reports.queue_today("acme", now.replace(hour=0, minute=0, second=0), POLICY)
    assert [{k: q[k] for k in today[0]} for q in board["queues"] if "offered" in q] == today
