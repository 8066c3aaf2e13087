"""The wallboard reports on ClickHouse 18.16 (legacy SQL, epoch-ms times) give the chDB answers."""

from __future__ import annotations

import random

import pytest
from test_reports import POLICY, at, dataset

from ccod_fs.clickhouse.migrate import migrate
from ccod_fs.reports import Reports, SlPolicy
from ccod_fs.sink.writer import Sink


@pytest.fixture
def legacy(native) -> Reports:
    assert native.dialect.value == "legacy"
    migrate(native)
    events = dataset()
    sink = Sink(native)
    sink.write_events(events)
    again = events[:]
    random.Random(5).shuffle(again)
    for i in range(0, len(again), 9):  # every event delivered twice
        sink.write_events(again[i : i + 9])
    return Reports(native)


def test_legacy_wallboard_reports(legacy: Reports) -> None:
    assert legacy.waiting_now("acme", at(4, 30)) == [
        {"queue": "support", "calls_waiting": 1, "longest_wait_ms": 28_000, "longest_waiting_call": "p1"}]
    assert [(r["queue"], r["longest_wait_ms"]) for r in legacy.waiting_now("acme", at(5, 10))] == [("sales", 8_000)]
    got = {(r["status"], r["state"]): sorted(r["agent_ids"]) for r in legacy.agents_now("acme", at(2, 20))}
    assert got == {("Available", ""): ["a3"], ("Available", "After Call Work"): ["a1"],
                   ("Available", "In a queue call"): ["a2"], ("On Break", ""): ["a5"]}
    today = {r["queue"]: r for r in legacy.queue_today("acme", at(0), POLICY)}
    sales = today["sales"]
    assert (sales["offered"], sales["answered"], sales["abandoned"]) == (7, 4, 2)
    assert (sales["answered_in_sl"], sales["short_abandons"]) == (3, 1)
    assert sales["sl_abandons_fail"] == pytest.approx(3 / 6)
    assert sales["sl_short_excluded"] == pytest.approx(3 / 5)
    assert sales["asa_ms"] == pytest.approx(15_000)
    assert today["support"]["asa_ms"] == 50_000
    board = legacy.wallboard("acme", at(4, 30), SlPolicy(threshold_s=20, mode="answered_only"))
    assert {q["queue"]: q.get("calls_waiting") for q in board["queues"]} == {"sales": None, "support": 1}


def test_modern_only_reports_say_so(legacy: Reports) -> None:
    with pytest.raises(NotImplementedError):
        legacy.queue_kpis("acme", at(0), at(60))
