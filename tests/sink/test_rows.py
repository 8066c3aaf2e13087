"""Pure row derivation, table-driven: what each event contributes, in epoch milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime

from ccod_fs.contract.events import CallBridged, CallEnded
from ccod_fs.sink.rows import CALLS_PARTIAL, EVENTS_RAW, derive_rows
from ccod_fs.sink.synthetic import EventFactory, agent_states, call_events

T0 = datetime(2026, 3, 1, 9, 0, 0, 250_000, tzinfo=UTC)
T0_MS = 1772355600250  # 2026-03-01T09:00:00.250Z


def _rows(table: str, batch) -> list[dict]:
    cols = batch.tables[table]
    names = list(cols)
    return [dict(zip(names, vals, strict=True)) for vals in zip(*cols.values(), strict=True)]


def test_answered_call_facts_carry_exact_ms_and_durations() -> None:
    f = EventFactory()
    evs = call_events(f, tenant="acme", queue="sales", start=T0, call_id="c1", agent="a1", wait_ms=12_345,
                      ring_ms=2_000, talk_ms=60_000, holds=((5_000, 3_000),), ivr_ms=1_500)
    batch = derive_rows(evs)
    assert batch.count("events_raw") == len(evs)
    calls = _rows("calls_partial", batch)
    assert len(calls) == len(evs)  # every event of this call says something about it
    assert set(calls[0]) == set(CALLS_PARTIAL)
    by_type = {r["type"]: r for r in calls if r["type"] != "call.hold"}
    assert {r["event_id"] for r in calls} == {str(e.event_id) for e in evs}
    assert by_type["call.offered"]["offered_at"] == T0_MS == by_type["call.offered"]["at"]
    assert by_type["call.queued"]["queued_at"] == T0_MS + 1_500
    assert by_type["call.queued"]["queue_id"] == "sales"
    ans = by_type["call.answered"]
    assert ans["answered_at"] == T0_MS + 1_500 + 12_345
    assert (ans["answer_wait_ms"], ans["ring_ms"], ans["agent_id"]) == (12_345, 2_000, "a1")
    ended = by_type["call.agent_ended"]
    assert (ended["bridge_ms"], ended["agent_ended_at"]) == (60_000, T0_MS + 1_500 + 12_345 + 60_000)
    holds = [(r["at"], r["held"]) for r in calls if r["type"] == "call.hold"]
    assert holds == [(T0_MS + 13_845 + 5_000, 1), (T0_MS + 13_845 + 8_000, 0)]
    caller = by_type["call.ended"]
    assert (caller["ended_at"], caller["hangup_cause"], caller["read_codec"]) == (
        T0_MS + 73_845, "NORMAL_CLEARING", "PCMA")
    # an event that knows nothing about a column leaves it NULL
    assert by_type["call.offered"]["answered_at"] is None
    assert by_type["call.agent_offered"]["bridge_ms"] is None


def test_abandoned_and_timeout_outcomes() -> None:
    f = EventFactory()
    abandoned = derive_rows(call_events(f, tenant="acme", queue="q", start=T0, outcome="abandoned", wait_ms=4_000))
    timeout = derive_rows(call_events(f, tenant="acme", queue="q", start=T0, outcome="timeout", wait_ms=90_000))
    ab = next(r for r in _rows("calls_partial", abandoned) if r["type"] == "call.dequeued")
    to = next(r for r in _rows("calls_partial", timeout) if r["type"] == "call.dequeued")
    assert (ab["outcome"], ab["dequeue_wait_ms"], ab["queue_id"]) == ("abandoned", 4_000, "q")
    assert (to["outcome"], to["dequeue_wait_ms"]) == ("timeout", 90_000)


def test_raw_rows_keep_envelope_fields_and_payload_json() -> None:
    f = EventFactory(node="fs7", core_uuid="core-7")
    ev = call_events(f, tenant="t-1", queue="q", start=T0, outcome="abandoned")[0]
    raw = _rows("events_raw", derive_rows([ev]))[0]
    assert set(raw) == set(EVENTS_RAW)
    assert raw["event_id"] == str(ev.event_id)
    assert (raw["tenant_id"], raw["type"], raw["occurred_at"]) == ("t-1", "call.offered", T0_MS)
    assert (raw["source_node"], raw["source_core_uuid"], raw["source_sequence"]) == ("fs7", "core-7", 1)
    assert '"caller_number":"+4930123456"' in raw["payload"]


def test_duplicates_inside_a_batch_are_written_once() -> None:
    f = EventFactory()
    evs = call_events(f, tenant="acme", queue="q", start=T0, agent="a", acw_ms=1_000)
    batch = derive_rows(evs + evs[:4])
    assert batch.count("events_raw") == len(evs)
    assert batch.count("agent_state_changes") == 3


def test_agent_state_rows() -> None:
    f = EventFactory()
    evs = agent_states(f, tenant="acme", agent="a9", at=T0, states=(("Available", 0), ("On Break", 1_000)),
                       kind="status")
    rows = _rows("agent_state_changes", derive_rows(evs))
    assert [(r["kind"], r["value"], r["previous"], r["changed_at"]) for r in rows] == [
        ("status", "Available", "", T0_MS), ("status", "On Break", "Available", T0_MS + 1_000)]
    assert rows[0]["agent_id"] == "a9"


def test_agent_leg_end_and_bridges_add_no_call_facts() -> None:
    f = EventFactory()
    leg = f.make(CallEnded, tenant="acme", at=T0, call_id="c1", leg_uuid="agent-leg", leg_role="agent",
                 direction="outbound", hangup_cause="NORMAL_CLEARING", ended_at=T0, duration_ms=5)
    bridged = f.make(CallBridged, tenant="acme", at=T0, call_id="c1", other_leg_uuid="x")
    batch = derive_rows([leg, bridged])
    assert batch.count("events_raw") == 2
    assert batch.count("calls_partial") == 0
