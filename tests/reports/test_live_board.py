"""The embedded wallboard's in-memory board (ccod_fs/reports/live_board.py).

Two kinds of proof: the pure board on hand-built rows, with every expected number worked out
here; and on chDB, under simulated traffic delivered late, out of order and twice, the board's
answer after every batch equals the SQL-only wallboard (``Reports(live=False)``), also across
SQL commands that write behind the board's back, an overflowing feed and a moment in the past.
"""

from __future__ import annotations

import gc
import random
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ccod_fs.clickhouse import client as client_module
from ccod_fs.clickhouse.client import ChdbClient
from ccod_fs.clickhouse.migrate import migrate
from ccod_fs.contract.events import serialize_event
from ccod_fs.reports import Reports
from ccod_fs.reports.library import SlPolicy
from ccod_fs.reports.live_board import WAIT_WINDOW_MS, LiveBoard, interval_of
from ccod_fs.sink.builders import new_builder
from ccod_fs.sink.synthetic import EventFactory, agent_states, call_events
from ccod_fs.sink.writer import Sink

T0 = 1_795_000_000_000 // 900_000 * 900_000  # an interval start, epoch ms


def _board(now_ms: int = T0 + 600_000) -> LiveBoard:
    return LiveBoard("acme", floor_s=interval_of(T0) - 3600, horizon_ms=now_ms - WAIT_WINDOW_MS,
                     sl_threshold_ms=20_000, short_abandon_ms=5_000, last_now_ms=now_ms)


def _facts(*rows: dict[str, Any]) -> dict[str, list[Any]]:
    """calls_partial columns from a few rows (missing columns are NULL, as in an insert)."""
    names = ("tenant_id", "call_id", "type", "at", "queue_id", "queued_at", "answered_at", "answer_wait_ms",
             "outcome", "dequeue_wait_ms", "ended_at")
    return {n: [r.get(n, "acme" if n == "tenant_id" else "" if n in ("queue_id",) else None) for r in rows]
            for n in names}


def _call(call_id: str, queued_s: float, *, wait_s: float, outcome: str = "answered", queue: str = "sales",
          tenant: str = "acme") -> list[dict[str, Any]]:
    queued, left = T0 + int(queued_s * 1000), T0 + int((queued_s + wait_s) * 1000)
    base = {"tenant_id": tenant, "call_id": call_id, "queue_id": queue}
    rows = [{**base, "type": "call.queued", "at": queued, "queued_at": queued}]
    if outcome == "answered":
        rows.append({**base, "type": "call.answered", "at": left, "answered_at": left,
                     "answer_wait_ms": int(wait_s * 1000)})
    rows.append({**base, "type": "call.dequeued", "at": left, "outcome": outcome,
                 "dequeue_wait_ms": int(wait_s * 1000)})
    rows.append({**base, "type": "call.ended", "at": left + 60_000, "queue_id": "", "ended_at": left + 60_000})
    return rows


def test_interval_counters_count_distinct_calls_and_waits() -> None:
    board = _board()
    # c1 answered after 10 s, c2 after 30 s (over the 20 s threshold), c3 abandoned after 3 s
    # (a short abandon: under 5 s), c4 abandoned after 40 s; all in the first interval
    rows = _call("c1", 10, wait_s=10) + _call("c2", 20, wait_s=30) + _call("c3", 30, wait_s=3, outcome="abandoned") \
        + _call("c4", 40, wait_s=40, outcome="abandoned")
    board.apply_calls(_facts(*rows))
    board.apply_calls(_facts(*rows[::-1]))  # every fact again, in reverse: sets, so nothing moves
    (counters,) = board.interval_counters()
    assert counters == {"queue": "sales", "interval_s": interval_of(T0), "offered": 4, "answered": 2, "abandoned": 2,
                        "waits_n": 2, "waits_ms": 40_000, "answered_in_sl": 1, "abandon_waits_n": 2,
                        "short_abandons": 1}
    # another tenant's rows and rows before the floor are not this board's
    board.apply_calls(_facts(*_call("x1", 50, wait_s=1, tenant="globex")))
    board.apply_calls(_facts(*_call("old", -7200, wait_s=1)))
    assert [c["offered"] for c in board.interval_counters()] == [4]


def test_a_row_reaching_an_interval_known_only_by_counters_asks_for_its_sets() -> None:
    board = _board()
    interval = interval_of(T0)
    board.load_counters([{"queue": "sales", "interval_s": interval, "offered": 5, "answered": 5, "abandoned": 0,
                          "waits_n": 5, "waits_ms": 50_000, "answered_in_sl": 5, "abandon_waits_n": 0,
                          "short_abandons": 0}])
    board.apply_calls(_facts(*_call("c9", 100, wait_s=1, queue="support")))
    assert board.needs_sets == {interval}
    # the sets, as live_interval_sets.sql returns them, replace the counters of every queue there
    board.load_sets(interval, [{"queue": "sales", "interval_s": interval, "offered": ["a", "b"], "answered": ["a"],
                                "abandoned": ["b"], "answer_waits": [["a", 1000]], "abandon_waits": [["b", 70_000]]}])
    assert board.needs_sets == set()
    assert {c["queue"]: (c["offered"], c["answered"], c["abandoned"], c["short_abandons"])
            for c in board.interval_counters()} == {"sales": (2, 1, 1, 0)}
    board.apply_calls(_facts(*_call("c9", 100, wait_s=1, queue="support")))  # now applied: new queue, new sets
    assert {c["queue"]: c["offered"] for c in board.interval_counters()} == {"sales": 2, "support": 1}


def test_waiting_calls_follow_queue_and_end_facts_in_any_order() -> None:
    now = T0 + 600_000  # 10 minutes into the interval
    board = _board(now)
    waits = [
        {"call_id": "w1", "type": "call.queued", "at": now - 90_000, "queue_id": "sales", "queued_at": now - 90_000},
        {"call_id": "w2", "type": "call.queued", "at": now - 30_000, "queue_id": "sales", "queued_at": now - 30_000},
        {"call_id": "w3", "type": "call.queued", "at": now - 10_000, "queue_id": "support",
         "queued_at": now - 12_000},
    ]
    # w4 ended before its queue fact arrives (a late fact): it never waits
    board.apply_calls(_facts({"call_id": "w4", "type": "call.ended", "at": now - 5_000, "ended_at": now - 5_000}))
    board.apply_calls(_facts(*waits, {"call_id": "w4", "type": "call.queued", "at": now - 50_000,
                                      "queue_id": "sales", "queued_at": now - 50_000}))
    assert board.waiting_now(now) == [
        {"queue": "sales", "calls_waiting": 2, "longest_wait_ms": 90_000, "longest_waiting_call": "w1"},
        {"queue": "support", "calls_waiting": 1, "longest_wait_ms": 12_000, "longest_waiting_call": "w3"}]
    # w1 is answered 1 s after now: still waiting at now, gone a second later
    board.apply_calls(_facts({"call_id": "w1", "type": "call.answered", "at": now + 1_000, "queue_id": "sales",
                              "answered_at": now + 1_000, "answer_wait_ms": 91_000}))
    assert board.waiting_now(now)[0]["calls_waiting"] == 2
    assert board.waiting_now(now + 2_000)[0] == {"queue": "sales", "calls_waiting": 1, "longest_wait_ms": 32_000,
                                                 "longest_waiting_call": "w2"}
    # 4 hours after it was queued, an unanswered call no longer counts (waiting_now.sql's window):
    # w2 (queued 30 s before now) has left it, w3 (its queue fact 10 s before now) has not
    late = now - 20_000 + WAIT_WINDOW_MS
    assert board.waiting_now(late) == [{"queue": "support", "calls_waiting": 1,
                                        "longest_wait_ms": late - (now - 12_000), "longest_waiting_call": "w3"}]


def test_agents_keep_their_newest_change() -> None:
    board = _board()
    changes = {"tenant_id": ["acme"] * 4, "agent_id": ["a1", "a1", "a1", "a2"],
               "kind": ["status", "status", "state", "status"],
               "value": ["Available", "On Break", "Waiting", "Available"],
               "changed_at": [T0 + 2_000, T0 + 1_000, T0, T0 + 900_000]}
    board.apply_agents(changes)
    assert sorted(board.agents_latest(T0 + 600_000), key=lambda r: (r["agent_id"], r["kind"])) == [
        {"agent_id": "a1", "kind": "state", "latest": "Waiting", "after_now": 0},
        {"agent_id": "a1", "kind": "status", "latest": "Available", "after_now": 0},  # the older On Break lost
        {"agent_id": "a2", "kind": "status", "latest": "Available", "after_now": 1}]


# ---- on chDB, against the SQL-only wallboard -----------------------------------------------------

BASE = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
POLICIES = (SlPolicy(threshold_s=20, mode="abandons_fail", short_abandon_s=5),
            SlPolicy(threshold_s=15, mode="short_abandons_excluded", short_abandon_s=3))


def _traffic(seed: int, calls: int = 240) -> list[Any]:
    """Calls of three tenants over 2 hours: answered (some with after-call work) or abandoned,
    waits up to 3 minutes, so some are waiting at every probe."""
    rnd = random.Random(seed)
    f = EventFactory()
    events: list[Any] = []
    for i in range(calls):
        tenant = ("acme", "globex", "initech")[i % 3]
        start = BASE + timedelta(seconds=rnd.uniform(0, 7200))
        answered = rnd.random() < 0.8
        agent = f"a{rnd.randrange(6)}"
        events += call_events(f, tenant=tenant, queue=rnd.choice(("sales", "support")), start=start,
                              call_id=f"{tenant}-{i}", agent=agent if answered else None,
                              outcome="answered" if answered else "abandoned",
                              wait_ms=rnd.randrange(1_000, 180_000), talk_ms=rnd.randrange(20_000, 300_000),
                              acw_ms=rnd.randrange(5_000, 60_000) if answered and rnd.random() < 0.5 else None)
    for tenant in ("acme", "globex"):
        for a in range(6):
            events += agent_states(f, tenant=tenant, agent=f"a{a}", at=BASE - timedelta(minutes=5 - a),
                                   states=(("Available", 0),), kind="status")
    return events


def _same(reports: Reports, by_sql: Reports, tenant: str, now: datetime, policy: SlPolicy) -> dict[str, Any]:
    board = reports.wallboard(tenant, now, policy)
    expected = by_sql.wallboard(tenant, now, policy)
    assert board["queues"] == expected["queues"], (tenant, now)
    assert board["agents"] == expected["agents"], (tenant, now)
    return board


@pytest.fixture
def chdb_db(chdb_path: Path) -> ChdbClient:
    client = ChdbClient(chdb_path, f"board_{uuid.uuid4().hex[:10]}")
    migrate(client)
    return client


class _Writer:
    """Writes envelopes as the sink service does: Kafka values through a row builder (the native
    decoder or the Python one)."""

    def __init__(self, client: ChdbClient, decoder: str) -> None:
        self.sink, self.decoder = Sink(client), decoder

    def write_events(self, events: list[Any]) -> None:
        builder = new_builder(self.decoder)
        builder.add_run([serialize_event(e) for e in events], list(range(len(events))), dead=[], origin="t",
                        topic="ccod.events", partition=0)
        self.sink.write_rows(builder.finish())


@pytest.mark.parametrize("decoder", ["native", "python"])
def test_board_equals_sql_under_late_duplicated_traffic(chdb_db: ChdbClient, decoder: str) -> None:
    rnd = random.Random(5)
    events = _traffic(seed=5)
    delivery = events + rnd.sample(events, len(events) // 4)  # a quarter delivered twice
    rnd.shuffle(delivery)  # late and out of order: batches are not in time order
    sink, reports, by_sql = _Writer(chdb_db, decoder), Reports(chdb_db), Reports(chdb_db, live=False)
    sink.write_events(delivery[:200])  # before the first read: the cold read sees these
    now = BASE + timedelta(minutes=20)
    waited = 0
    _same(reports, by_sql, "acme", now, POLICIES[0])
    warm = reports._boards[("acme", 20_000, 5_000)]
    for i in range(200, len(delivery), 90):
        sink.write_events(delivery[i : i + 90])
        now += timedelta(minutes=4)
        for tenant in ("acme", "globex", "initech"):
            for policy in POLICIES:
                board = _same(reports, by_sql, tenant, now, policy)
                waited += sum(q.get("calls_waiting", 0) for q in board["queues"])
    assert waited > 20  # the probes saw waiting calls, not only empty queues
    offered = sum(q.get("offered", 0) for q in _same(reports, by_sql, "acme", now, POLICIES[0])["queues"])
    assert offered == 80  # every acme call, once, though a quarter of the facts came twice
    # one board per tenant and policy, kept warm across every batch (never rebuilt from the tables)
    assert len(reports._boards) == 6
    assert reports._boards[("acme", 20_000, 5_000)] is warm


def test_board_is_rebuilt_after_sql_writes_and_answers_the_past_by_sql(chdb_db: ChdbClient) -> None:
    events = _traffic(seed=9, calls=90)
    sink, reports, by_sql = Sink(chdb_db), Reports(chdb_db), Reports(chdb_db, live=False)
    sink.write_events(events[: len(events) // 2])
    now = BASE + timedelta(hours=1)
    _same(reports, by_sql, "acme", now, POLICIES[0])
    first = reports._boards[("acme", 20_000, 5_000)]
    # an analyst's SQL writes a call the board could not see: the command makes it start over
    chdb_db.command(
        "INSERT INTO calls_partial (tenant_id, call_id, event_id, type, at, queue_id, queued_at) VALUES "
        "('acme', 'by-sql', generateUUIDv4(), 'call.queued', {at:DateTime64(3, 'UTC')}, 'sales', "
        "{at:DateTime64(3, 'UTC')})", {"at": now - timedelta(seconds=30)})
    board = _same(reports, by_sql, "acme", now, POLICIES[0])
    assert reports._boards[("acme", 20_000, 5_000)] is not first
    assert {q["queue"]: q.get("longest_waiting_call") for q in board["queues"]}["sales"] == "by-sql"
    sink.write_events(events[len(events) // 2 :])
    later = now + timedelta(minutes=30)
    _same(reports, by_sql, "acme", later, POLICIES[0])
    # a moment before the board's last answer: read by SQL, and the board stays as it was
    warm = reports._boards[("acme", 20_000, 5_000)]
    _same(reports, by_sql, "acme", now - timedelta(minutes=10), POLICIES[0])
    assert reports._boards[("acme", 20_000, 5_000)] is warm
    # more unread rows than the feed holds: dropped, and the board is rebuilt from the tables
    assert reports._feed is not None
    reports._feed.max_rows = 10
    sink.write_events(_traffic(seed=10, calls=30))
    _same(reports, by_sql, "acme", later + timedelta(minutes=1), POLICIES[0])
    assert reports._boards[("acme", 20_000, 5_000)] is not warm


def test_a_dropped_reports_stops_collecting(chdb_db: ChdbClient) -> None:
    reports = Reports(chdb_db)
    reports.wallboard("acme", BASE)
    assert len(client_module._watchers[chdb_db.database]) == 1
    del reports
    gc.collect()
    assert len(client_module._watchers[chdb_db.database]) == 0
    Sink(chdb_db).write_events(_traffic(seed=1, calls=3))  # no watcher left: the insert alone


def test_board_read_while_another_thread_writes(chdb_db: ChdbClient) -> None:
    """The sink's thread inserts while a reader refreshes: rows inserted during a cold read or
    between two reads are neither lost nor counted twice."""
    events = _traffic(seed=21, calls=150)
    rnd = random.Random(21)
    rnd.shuffle(events)
    writer, reports, by_sql = _Writer(chdb_db, "native"), Reports(chdb_db), Reports(chdb_db, live=False)
    now = BASE + timedelta(hours=2)
    done = threading.Event()
    reads = 0

    def write() -> None:
        for i in range(0, len(events), 25):
            writer.write_events(events[i : i + 25])
        done.set()

    thread = threading.Thread(target=write)
    thread.start()
    while not done.is_set():
        reports.wallboard("acme", now, POLICIES[0])
        reads += 1
    thread.join()
    assert reads >= 3
    board = _same(reports, by_sql, "acme", now, POLICIES[0])
    assert sum(q.get("offered", 0) for q in board["queues"]) == 50
