"""Every report formula on a small hand-built data set; expected values are worked out by hand.

Data (T = 2026-03-02 08:00:00 UTC; every call spends 2 s in the IVR before it is queued;
SL threshold 20 s, short abandon < 5 s). "bridge" is the agent bridge, hold included:

 call  queue    start     outcome     wait  bridge  hold          acw   agent
 s1    sales    08:00:00  answered    10 s  120 s   20 s at +30   30 s  a1
 s2    sales    08:01:00  answered    25 s   60 s   -             10 s  a2
 s3    sales    08:02:00  abandoned    3 s   -      -             -     -
 s4    sales    08:03:00  abandoned   40 s   -      -             -     -
 p1    support  08:04:00  answered    50 s  200 s   -             20 s  a3
 s5    sales    08:05:00  answered    20 s   90 s   -             none  a1 (no agent state events)
 s6    sales    08:10:00  timeout     60 s   -      -             -     -
 s7    sales    08:20:00  answered     5 s   30 s   -              5 s  a2
 g1    globex/sales 08:00:30 answered 100 s  10 s   -              1 s  a1 (another tenant, same ids)

Every event is written twice (the second time shuffled and in small batches): no number may move.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from ccod_fs.clickhouse.client import ChdbClient
from ccod_fs.clickhouse.migrate import migrate
from ccod_fs.reports import Reports, SlPolicy
from ccod_fs.sink.synthetic import EventFactory, agent_states, call_events
from ccod_fs.sink.writer import Sink

T = datetime(2026, 3, 2, 8, 0, 0, tzinfo=UTC)
POLICY = SlPolicy(threshold_s=20, mode="abandons_fail", short_abandon_s=5)


def at(minutes: int = 0, seconds: int = 0) -> datetime:
    return T + timedelta(minutes=minutes, seconds=seconds)


def dataset() -> list:
    f = EventFactory()
    ev = []
    ev += agent_states(f, tenant="acme", agent="a1", at=at(-1), states=(("Available", 0),), kind="status")
    ev += agent_states(f, tenant="acme", agent="a2", at=at(-1), states=(("Available", 0),), kind="status")
    ev += agent_states(f, tenant="acme", agent="a3", at=at(-1), states=(("Available", 0),), kind="status")
    ev += agent_states(f, tenant="acme", agent="a4", at=at(-1), states=(("Available", 0), ("Logged Out", 120_000)),
                       kind="status")
    ev += agent_states(f, tenant="acme", agent="a5", at=at(0), states=(("On Break", 0),), kind="status")
    acme = {"tenant": "acme"}
    ev += call_events(f, **acme, queue="sales", start=at(0), call_id="s1", agent="a1", wait_ms=10_000,
                      talk_ms=120_000, holds=((30_000, 20_000),), acw_ms=30_000)
    ev += call_events(f, **acme, queue="sales", start=at(1), call_id="s2", agent="a2", wait_ms=25_000,
                      talk_ms=60_000, acw_ms=10_000)
    ev += call_events(f, **acme, queue="sales", start=at(2), call_id="s3", outcome="abandoned", wait_ms=3_000)
    ev += call_events(f, **acme, queue="sales", start=at(3), call_id="s4", outcome="abandoned", wait_ms=40_000)
    ev += call_events(f, **acme, queue="support", start=at(4), call_id="p1", agent="a3", wait_ms=50_000,
                      talk_ms=200_000, acw_ms=20_000)
    ev += call_events(f, **acme, queue="sales", start=at(5), call_id="s5", agent="a1", wait_ms=20_000,
                      talk_ms=90_000)
    ev += call_events(f, **acme, queue="sales", start=at(10), call_id="s6", outcome="timeout", wait_ms=60_000)
    ev += call_events(f, **acme, queue="sales", start=at(20), call_id="s7", agent="a2", wait_ms=5_000,
                      talk_ms=30_000, acw_ms=5_000)
    ev += call_events(f, tenant="globex", queue="sales", start=at(0, 30), call_id="g1", agent="a1",
                      wait_ms=100_000, talk_ms=10_000, acw_ms=1_000)
    return ev


@pytest.fixture(scope="module")
def reports(chdb_path) -> Reports:
    client = ChdbClient(chdb_path, f"reports_{uuid.uuid4().hex[:8]}")
    migrate(client)
    sink = Sink(client)
    events = dataset()
    sink.write_events(events)
    again = events[:]
    random.Random(3).shuffle(again)
    for i in range(0, len(again), 7):
        sink.write_events(again[i : i + 7])
    return Reports(client)


def _by(rows: list[dict], *keys: str) -> dict:
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in rows}


def test_queue_kpis_15_minutes(reports: Reports) -> None:
    rows = _by(reports.queue_kpis("acme", at(0), at(30), interval_min=15, policy=POLICY, now=at(30)),
               "interval_start", "queue")
    sales = rows[("2026-03-02 08:00:00", "sales")]
    # offered: s1..s6 queued 08:00-08:15; answered s1, s2, s5; abandoned s3, s4; s6 timed out
    assert (sales["offered"], sales["answered"], sales["abandoned"], sales["other_outcomes"]) == (6, 3, 2, 1)
    assert sales["short_abandons"] == 1  # s3 (3 s < 5 s)
    assert sales["answered_in_sl"] == 2  # s1 (10 s), s5 (20 s: "within" includes the threshold)
    assert sales["abandoned_in_sl"] == 1  # s3
    assert sales["sl_answered_only"] == pytest.approx(2 / 3)  # 2 / 3 answered
    assert sales["sl_abandons_fail"] == pytest.approx(2 / 5)  # 2 / (3 + 2)
    assert sales["sl_short_excluded"] == pytest.approx(2 / 4)  # 2 / (3 + 2 - 1)
    assert sales["sl_abandons_in_t_ok"] == pytest.approx(3 / 5)  # (2 + 1) / (3 + 2)
    assert sales["service_level"] == pytest.approx(2 / 5)  # the tenant's policy: abandons fail
    assert sales["asa_ms"] == pytest.approx((10_000 + 25_000 + 20_000) / 3)
    # handle = talk (bridge - hold) + hold + acw: s1 100+20+30, s2 60+0+10, s5 90+0+0 seconds
    assert sales["aht_ms"] == pytest.approx((150_000 + 70_000 + 90_000) / 3)
    assert (sales["talk_ms"], sales["hold_ms"], sales["acw_ms"]) == (250_000, 20_000, 40_000)
    assert sales["abandon_rate"] == pytest.approx(2 / 6)
    assert sales["avg_abandon_ms"] == pytest.approx((3_000 + 40_000) / 2)
    late = rows[("2026-03-02 08:15:00", "sales")]
    assert (late["offered"], late["answered"], late["asa_ms"], late["aht_ms"]) == (1, 1, 5_000, 35_000)
    assert late["abandon_rate"] == 0 and late["avg_abandon_ms"] is None
    total = rows[("2026-03-02 08:00:00", "*")]  # sales + support p1 (50 s wait, 200 + 20 s handle)
    assert (total["offered"], total["answered"], total["abandoned"]) == (7, 4, 2)
    assert total["sl_answered_only"] == pytest.approx(2 / 4)
    assert total["sl_abandons_fail"] == pytest.approx(2 / 6)
    assert total["asa_ms"] == pytest.approx((10_000 + 25_000 + 20_000 + 50_000) / 4)
    assert total["aht_ms"] == pytest.approx((150_000 + 70_000 + 90_000 + 220_000) / 4)


def test_queue_kpis_60_minutes_and_policies(reports: Reports) -> None:
    policy = SlPolicy(threshold_s=20, mode="short_abandons_excluded", short_abandon_s=5)
    rows = _by(reports.queue_kpis("acme", at(0), at(60), interval_min=60, policy=policy, now=at(60)), "queue")
    sales = rows["sales"]  # s1..s7: answered s1 s2 s5 s7 (10, 25, 20, 5 s), abandoned s3 s4
    assert (sales["offered"], sales["answered"], sales["abandoned"], sales["answered_in_sl"]) == (7, 4, 2, 3)
    assert sales["sl_answered_only"] == pytest.approx(3 / 4)
    assert sales["service_level"] == pytest.approx(3 / (4 + 2 - 1))
    assert sales["asa_ms"] == pytest.approx(60_000 / 4)
    assert rows["support"]["service_level"] == 0  # p1 answered after 50 s
    strict = SlPolicy(threshold_s=10, mode="answered_only")
    rows = _by(reports.queue_kpis("acme", at(0), at(60), interval_min=30, policy=strict, now=at(60)),
               "interval_start", "queue")
    assert rows[("2026-03-02 08:00:00", "sales")]["service_level"] == pytest.approx(2 / 4)  # s1 10 s, s7 5 s


def test_tenant_isolation(reports: Reports) -> None:
    globex = reports.queue_kpis("globex", at(0), at(60), interval_min=60, policy=POLICY, now=at(60))
    assert [(r["queue"], r["offered"], r["asa_ms"]) for r in globex] == [("*", 1, 100_000), ("sales", 1, 100_000)]
    assert reports.queue_kpis("nobody", at(0), at(60), interval_min=60, now=at(60)) == []
    with pytest.raises(ValueError):
        reports.queue_kpis("", at(0), at(60))
    # same agent id "a1" in globex: its 1 s of ACW and 10 s bridge never reach acme's a1
    a1 = _by(reports.agent_kpis("acme", at(0), at(15), interval_min=15, now=at(30)), "agent_id")["a1"]
    assert a1["acw_ms"] == 30_000


def test_agent_kpis_and_occupancy(reports: Reports) -> None:
    rows = _by(reports.agent_kpis("acme", at(0), at(30), interval_min=15, now=at(30)),
               "interval_start", "agent_id")
    a1 = rows[("2026-03-02 08:00:00", "a1")]
    # s1 + s5: talk 100 + 90 s, hold 20 s, acw 30 s; AHT (150 + 90) / 2
    assert (a1["answered"], a1["talk_ms"], a1["hold_ms"], a1["acw_ms"]) == (2, 190_000, 20_000, 30_000)
    assert a1["aht_ms"] == pytest.approx(120_000)
    # states: in a call 08:00:12-08:02:12, ACW until 08:02:42, then Waiting until 08:15
    assert (a1["on_contact_ms"], a1["idle_ms"]) == (150_000, 738_000)
    assert a1["occupancy"] == pytest.approx(150 / 888)
    a2 = rows[("2026-03-02 08:00:00", "a2")]  # call 08:01:27-08:02:27, ACW 10 s, Waiting from 08:02:37
    assert (a2["on_contact_ms"], a2["idle_ms"]) == (70_000, 743_000)
    a2_late = rows[("2026-03-02 08:15:00", "a2")]  # Waiting 08:15-08:20:07, call 30 s, ACW 5 s, Waiting
    assert (a2_late["answered"], a2_late["on_contact_ms"], a2_late["idle_ms"]) == (1, 35_000, 307_000 + 558_000)
    assert a2_late["occupancy"] == pytest.approx(35 / 900)
    a1_late = rows[("2026-03-02 08:15:00", "a1")]  # idle the whole interval, no calls
    assert (a1_late["answered"], a1_late["on_contact_ms"], a1_late["idle_ms"], a1_late["occupancy"]) == (
        0, 0, 900_000, 0)


def test_waiting_now_and_longest_wait(reports: Reports) -> None:
    assert reports.waiting_now("acme", at(3, 30)) == [
        {"queue": "sales", "calls_waiting": 1, "longest_wait_ms": 28_000, "longest_waiting_call": "s4"}]
    # 08:04:30: p1 queued 08:04:02, answered only at 08:04:52; s4 left at 08:03:42
    assert [(r["queue"], r["longest_wait_ms"]) for r in reports.waiting_now("acme", at(4, 30))] == [
        ("support", 28_000)]
    # 08:05:10: p1 is answered by now; s5 queued 08:05:02
    assert [(r["queue"], r["longest_wait_ms"]) for r in reports.waiting_now("acme", at(5, 10))] == [
        ("sales", 8_000)]
    assert reports.waiting_now("acme", at(40)) == []
    assert reports.waiting_now("globex", at(1)) == [
        {"queue": "sales", "calls_waiting": 1, "longest_wait_ms": 28_000, "longest_waiting_call": "g1"}]


def test_agents_by_state_now(reports: Reports) -> None:
    rows = reports.agents_now("acme", at(2, 20))
    got = {(r["status"], r["state"]): sorted(r["agent_ids"]) for r in rows}
    assert got == {
        ("Available", ""): ["a3"],
        ("Available", "After Call Work"): ["a1"],
        ("Available", "In a queue call"): ["a2"],
        ("On Break", ""): ["a5"],
    }  # a4 logged out at 07:59 + 2 min and is not shown


def test_queue_today_from_the_interval_aggregates(reports: Reports) -> None:
    rows = _by(reports.queue_today("acme", at(0), POLICY), "queue")
    sales = rows["sales"]
    assert (sales["offered"], sales["answered"], sales["abandoned"]) == (7, 4, 2)
    assert (sales["answered_in_sl"], sales["short_abandons"]) == (3, 1)
    assert sales["sl_answered_only"] == pytest.approx(3 / 4)
    assert sales["sl_abandons_fail"] == pytest.approx(3 / 6)
    assert sales["sl_short_excluded"] == pytest.approx(3 / 5)
    assert sales["asa_ms"] == pytest.approx(15_000)
    assert sales["abandon_rate"] == pytest.approx(2 / 7)
    assert rows["support"]["asa_ms"] == 50_000


def test_wallboard_combines_today_waiting_and_agents(reports: Reports) -> None:
    board = reports.wallboard("acme", at(4, 30), SlPolicy(threshold_s=20, mode="answered_only"))
    queues = _by(board["queues"], "queue")
    assert queues["support"]["calls_waiting"] == 1 and queues["support"]["longest_wait_ms"] == 28_000
    assert "calls_waiting" not in queues["sales"]
    assert queues["sales"]["service_level"] == pytest.approx(3 / 4)
    assert sum(r["agents"] for r in board["agents"]) == 4
