"""The normalizer over every event of every real FreeSWITCH capture, against the README's stated outcomes."""

from __future__ import annotations

import collections
import functools
import itertools
import random
from pathlib import Path

import orjson
import pytest

from ccod_fs.contract.envelope import Envelope, datetime_from_us, fs_event_id
from ccod_fs.contract.events import EVENT_TYPES, occurred_ms, parse_event, serialize_event
from ccod_fs.esl.decode import decode_capture
from ccod_fs.esl.event import EslEvent
from ccod_fs.ingest.normalize import NormalizeError, Normalizer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "freeswitch"
SCENARIOS = ["inbound-queue", "queue-edge-cases"]
CAPTURES = [f"esl-{fmt}-{scenario}.raw" for scenario in SCENARIOS for fmt in ("json", "plain")]

# The capture switch: one tenant, vanilla agent names ``<n>@default`` on SIP domain 127.0.0.1.
CONFIG = {"domain_tenants": {"default": "acme", "127.0.0.1": "acme"}}

# Canonical events per capture, from the README's scenario tables and event counts.
EXPECTED_TYPES = {
    "inbound-queue": {
        "agent.registered": 3, "agent.status_changed": 9, "agent.state_changed": 9,
        "call.offered": 5, "call.queued": 4, "call.agent_offered": 3, "call.answered": 3, "call.bridged": 3,
        "call.dtmf": 1, "call.ended": 8, "call.agent_ended": 3, "call.dequeued": 4,
        "node.heartbeat": 3, "command.result": 2,
    },
    "queue-edge-cases": {
        "agent.registered": 4, "agent.status_changed": 14, "agent.state_changed": 12,
        "call.offered": 5, "call.queued": 4, "call.agent_offered": 5, "call.agent_failed": 3, "call.answered": 2,
        "call.bridged": 2, "call.ended": 10, "call.agent_ended": 2, "call.dequeued": 4,
        "node.heartbeat": 4, "command.result": 1,
    },
}

Pairs = list[tuple[EslEvent, list[Envelope]]]


@functools.cache
def normalized(capture: str) -> Pairs:
    normalizer = Normalizer(**CONFIG)  # type: ignore[arg-type]
    return [(event, normalizer.normalize(event)) for event in decode_capture(FIXTURES / capture)]


def envelopes(capture: str) -> list[Envelope]:
    return [env for _, out in normalized(capture) for env in out]


def of_type(capture: str, type_: str) -> list[Envelope]:
    return [env for env in envelopes(capture) if env.type == type_]


def calls(capture: str) -> dict[str, list[Envelope]]:
    """Call id -> its events in order (dicts keep first-appearance order)."""
    out: dict[str, list[Envelope]] = {}
    for env in envelopes(capture):
        if env.call_id is not None:
            out.setdefault(env.call_id, []).append(env)
    return out


def by_caller_suffix(capture: str) -> dict[str, list[Envelope]]:
    """Inbound calls keyed by the caller number's last digit (E1..E4 / call 1..4 in the README)."""
    out = {}
    for events in calls(capture).values():
        offered = events[0]
        assert offered.type == "call.offered", [e.type for e in events]
        if offered.payload.direction == "inbound":  # type: ignore[attr-defined]
            out[offered.payload.caller_number[-1]] = events  # type: ignore[attr-defined]
    return out


def types(events: list[Envelope]) -> list[str]:
    return [e.type for e in events]


# ---- every event of every capture ------------------------------------------------------------------


@pytest.mark.parametrize("capture", CAPTURES)
def test_every_event_maps_to_valid_canonical_events(capture: str) -> None:
    for event, out in normalized(capture):
        for index, env in enumerate(out):
            assert isinstance(env, EVENT_TYPES[env.type])
            wire = serialize_event(env)
            parsed = parse_event(wire)
            assert parsed == env
            assert serialize_event(parsed) == wire
            assert parsed.model_dump() == env.model_dump()
            # The idempotency key and the source point back at exactly this ESL event.
            assert env.event_id == fs_event_id(event.get("Core-UUID"), int(event.get("Event-Sequence")), index)
            assert env.source.service == "esl-ingest"
            assert env.source.node == "vm"
            assert env.source.core_uuid == event.get("Core-UUID")
            assert env.source.event_sequence == int(event.get("Event-Sequence"))
            assert env.occurred_at == datetime_from_us(int(event.get("Event-Date-Timestamp")))
            expected_tenant = "system" if env.type == "node.heartbeat" else "acme"
            if env.type == "command.result" and env.payload.command == "status":  # type: ignore[attr-defined]
                expected_tenant = "system"
            assert env.tenant_id == expected_tenant


@pytest.mark.parametrize("capture", CAPTURES)
def test_canonical_event_counts(capture: str) -> None:
    scenario = capture.split("-", 2)[2].removesuffix(".raw")
    assert collections.Counter(types(envelopes(capture))) == EXPECTED_TYPES[scenario]
    ids = [env.event_id for env in envelopes(capture)]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("capture", CAPTURES)
def test_irrelevant_events_map_to_nothing(capture: str) -> None:
    ignored = {"API", "CHANNEL_STATE", "CHANNEL_CALLSTATE", "PRESENCE_IN", "RE_SCHEDULE", "CHANNEL_EXECUTE",
               "CHANNEL_EXECUTE_COMPLETE", "MESSAGE_QUERY", "CODEC", "CALL_UPDATE", "CHANNEL_DESTROY",
               "CHANNEL_OUTGOING", "CHANNEL_ORIGINATE", "PLAYBACK_START", "PLAYBACK_STOP", "RECV_INFO",
               "CHANNEL_HANGUP", "CHANNEL_UNBRIDGE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA"}
    for event, out in normalized(capture):
        if event.name in ignored or event.get("CC-Action") == "members-count" or (
            event.subclass in ("sofia::pre_register", "sofia::register_attempt")
        ):
            assert out == [], (event.name, event.get("Event-Sequence"))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_json_and_plain_runs_give_the_same_sequences(scenario: str) -> None:
    """Two live runs of one script: same canonical types per call and per agent, in the same order."""
    json_capture, plain_capture = f"esl-json-{scenario}.raw", f"esl-plain-{scenario}.raw"
    assert [types(v) for v in calls(json_capture).values()] == [types(v) for v in calls(plain_capture).values()]

    def per_agent(capture: str) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {}
        for env in envelopes(capture):
            if env.type in ("agent.status_changed", "agent.state_changed"):
                value = env.payload.model_dump()
                out.setdefault(env.agent_id, []).append((env.type, value.get("status") or value.get("state")))
        return out

    assert per_agent(json_capture) == per_agent(plain_capture)


# ---- scenario 1: inbound queue ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "plain"])
def test_scenario_inbound_queue_outcomes(fmt: str) -> None:
    capture = f"esl-{fmt}-inbound-queue.raw"
    assert [e.payload.queue for e in of_type(capture, "call.queued")] == ["support@default"] * 4
    assert [e.payload.agent for e in of_type(capture, "call.answered")] == [
        "1000@default", "1000@default", "1001@default"
    ]
    dequeued = collections.Counter(
        (e.payload.outcome, e.payload.cancel_reason) for e in of_type(capture, "call.dequeued")
    )
    assert dequeued == {("answered", None): 3, ("abandoned", "BREAK_OUT"): 1}
    [dtmf] = of_type(capture, "call.dtmf")
    assert (dtmf.payload.digit, dtmf.payload.source, dtmf.payload.duration_ms) == ("5", "ENDPOINT", 160)
    ended = of_type(capture, "call.ended")
    assert len(ended) == 8
    assert {e.payload.hangup_cause for e in ended} == {"NORMAL_CLEARING"}
    assert collections.Counter(e.payload.leg_role for e in ended) == {"caller": 4, "agent": 3, "outbound": 1}

    inbound = by_caller_suffix(capture)
    assert sorted(inbound) == ["1", "2", "3", "4"]
    answered_flow = [
        "call.offered", "call.queued", "call.agent_offered", "call.answered", "call.bridged",
        "call.ended", "call.ended", "call.agent_ended", "call.dequeued",
    ]
    assert types(inbound["1"]) == [*answered_flow[:5], "call.dtmf", *answered_flow[5:]]
    assert types(inbound["2"]) == answered_flow
    assert types(inbound["4"]) == answered_flow
    assert types(inbound["3"]) == ["call.offered", "call.queued", "call.dequeued", "call.ended"]
    assert dtmf.call_id == inbound["1"][0].call_id
    # Callers hung up (BYE from the caller); FreeSWITCH then hung up the agent legs.
    for events in inbound.values():
        assert {e.payload.hangup_by for e in events if e.type == "call.ended"} == {"caller"}

    outbound = [v for v in calls(capture).values() if v[0].payload.direction == "outbound"]  # type: ignore[attr-defined]
    [[offered, result, leg_end]] = outbound
    assert (offered.type, result.type, leg_end.type) == ("call.offered", "command.result", "call.ended")
    assert result.payload.ok is True and result.payload.command == "originate"
    assert result.payload.result == f"+OK {offered.call_id}"
    assert leg_end.payload.hangup_by == "system"
    [status] = [e for e in of_type(capture, "command.result") if e.payload.command == "status"]
    assert status.payload.ok is True and status.tenant_id == "system"


# ---- scenario 2: queue edge cases -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "plain"])
def test_scenario_queue_edge_cases_outcomes(fmt: str) -> None:
    capture = f"esl-{fmt}-queue-edge-cases.raw"
    e = by_caller_suffix(capture)
    assert sorted(e) == ["1", "2", "3", "4"]

    def only(events: list[Envelope], type_: str) -> list[Envelope]:
        return [x for x in events if x.type == type_]

    # E1: answered by 1000 after NO_ANSWER (1002) and USER_BUSY (1001).
    assert [x.payload.hangup_cause for x in only(e["1"], "call.agent_failed")] == ["NO_ANSWER", "USER_BUSY"]
    assert [x.agent_id for x in only(e["1"], "call.agent_failed")] == ["1002@default", "1001@default"]
    assert [x.payload.agent for x in only(e["1"], "call.answered")] == ["1000@default"]
    assert [x.payload.outcome for x in only(e["1"], "call.dequeued")] == ["answered"]
    e1_legs = {x.payload.leg_uuid: x.payload for x in only(e["1"], "call.ended")}
    assert sorted(p.hangup_cause for p in e1_legs.values()) == [
        "NORMAL_CLEARING", "NORMAL_CLEARING", "NO_ANSWER", "USER_BUSY"
    ]
    assert {p.hangup_cause: p.hangup_by for p in e1_legs.values()}["USER_BUSY"] == "agent"
    # E2: answered by 1003, the agent hung up, then FreeSWITCH hung up the caller.
    assert [x.payload.agent for x in only(e["2"], "call.answered")] == ["1003@default"]
    assert {x.payload.leg_role: x.payload.hangup_by for x in only(e["2"], "call.ended")} == {
        "agent": "agent", "caller": "agent"
    }
    # E3: abandoned while 1002 rang; the offer failed with ORIGINATOR_CANCEL.
    assert [(x.payload.outcome, x.payload.cancel_reason) for x in only(e["3"], "call.dequeued")] == [
        ("abandoned", "BREAK_OUT")
    ]
    assert [x.payload.hangup_cause for x in only(e["3"], "call.agent_failed")] == ["ORIGINATOR_CANCEL"]
    assert only(e["3"], "call.answered") == []
    # E4: sales@default, no agent: queue timeout, never answered; the dialplan hung up.
    assert [(x.queue_id, x.payload.outcome, x.payload.cancel_reason) for x in only(e["4"], "call.dequeued")] == [
        ("sales@default", "no_agent_timeout", "NO_AGENT_TIMEOUT")
    ]
    assert only(e["4"], "call.agent_offered") == [] and only(e["4"], "call.answered") == []
    assert [x.payload.hangup_by for x in only(e["4"], "call.ended")] == ["system"]

    assert sorted(x.payload.hangup_cause for x in of_type(capture, "call.agent_failed")) == [
        "NO_ANSWER", "ORIGINATOR_CANCEL", "USER_BUSY"
    ]
    assert len(of_type(capture, "call.ended")) == 10
    [result] = of_type(capture, "command.result")
    assert (result.payload.ok, result.payload.command, result.payload.result) == (
        False, "originate", "-ERR NORMAL_TEMPORARY_FAILURE"
    )
    assert result.tenant_id == "acme"


# ---- KPI times against mod_callcenter's own CC-* seconds ----------------------------------------------


def _cc_s(event: EslEvent, key: str) -> int:
    return int(event.get(key))


def _close(ms: int | None, cc_seconds: int) -> bool:
    """Our ms come from µs timestamps; CC-* are the same instants truncated to seconds."""
    return ms is not None and abs(ms - cc_seconds * 1000) < 1000


@pytest.mark.parametrize("capture", CAPTURES)
def test_wait_ring_talk_consistent_with_cc_times(capture: str) -> None:
    checked = collections.Counter()
    answered_wait: dict[str, int | None] = {}
    for event, out in normalized(capture):
        for env in out:
            p = env.payload
            if env.type == "call.answered":
                joined, called, answered = (_cc_s(event, f"CC-{k}-Time") for k in ("Member-Joined", "Agent-Called",
                                                                                   "Agent-Answered"))
                assert _close(p.wait_ms, answered - joined) and _close(p.ring_ms, answered - called)
                assert p.wait_ms == occurred_ms(p.answered_at) - occurred_ms(p.joined_at)
                assert p.ring_ms == occurred_ms(p.answered_at) - occurred_ms(p.called_at)
                answered_wait[env.call_id] = p.wait_ms
            elif env.type == "call.agent_ended":
                talk = _cc_s(event, "CC-Bridge-Terminated-Time") - _cc_s(event, "CC-Agent-Answered-Time")
                assert _close(p.talk_ms, talk)
                assert p.talk_ms == occurred_ms(p.ended_at) - occurred_ms(p.answered_at)
            elif env.type == "call.agent_failed":
                ring = _cc_s(event, "CC-Agent-Aborted-Time") - _cc_s(event, "CC-Agent-Called-Time")
                assert p.ring_ms == ring * 1000
            elif env.type == "call.dequeued":
                if p.outcome == "answered":
                    assert p.wait_ms == answered_wait[env.call_id]
                else:
                    left = _cc_s(event, "CC-Member-Leaving-Time") - _cc_s(event, "CC-Member-Joined-Time")
                    assert _close(p.wait_ms, left)
                    assert p.wait_ms == occurred_ms(p.left_at) - occurred_ms(p.joined_at)
            elif env.type == "call.ended":
                assert p.duration_ms == occurred_ms(p.ended_at) - occurred_ms(p.created_at)
                assert p.billable_ms == (occurred_ms(p.ended_at) - occurred_ms(p.answered_at) if p.answered_at else 0)
                assert p.duration_ms >= p.billable_ms >= 0
            else:
                continue
            checked[env.type] += 1
    assert checked["call.answered"] >= 2 and checked["call.agent_ended"] >= 2 and checked["call.dequeued"] == 4


# ---- determinism and restart --------------------------------------------------------------------------


@pytest.mark.parametrize("capture", CAPTURES)
def test_deterministic_and_restorable_mid_stream(capture: str) -> None:
    events = decode_capture(FIXTURES / capture)
    expected = [serialize_event(env) for env in envelopes(capture)]
    for cut in (len(events) // 3, len(events) // 2, 2 * len(events) // 3):
        first = Normalizer(**CONFIG)  # type: ignore[arg-type]
        head = [first.normalize(e) for e in events[:cut]]
        snapshot = orjson.loads(orjson.dumps(first.state_snapshot()))
        second = Normalizer(**CONFIG)  # type: ignore[arg-type]
        second.restore(snapshot)
        tail = [second.normalize(e) for e in events[cut:]]
        got = [serialize_event(env) for env in itertools.chain.from_iterable(head + tail)]
        assert got == expected


# ---- robustness: damaged events only ever raise NormalizeError ---------------------------------------------


@pytest.mark.parametrize("capture", CAPTURES)
def test_damaged_events_raise_only_normalize_error(capture: str) -> None:
    rng = random.Random(capture)
    junk: list[object] = ["", "0", "-1", "garbage", "\n", "ü" * 70, ["a", "b"], "9" * 40, "acme corp"]
    for _ in range(3):
        normalizer = Normalizer(**CONFIG)  # type: ignore[arg-type]
        for event in decode_capture(FIXTURES / capture):
            headers = dict(event.headers)
            if rng.random() < 0.5:
                for key in rng.sample(sorted(headers), k=min(3, len(headers))):
                    if rng.random() < 0.5:
                        del headers[key]
                    else:
                        headers[key] = rng.choice(junk)  # type: ignore[assignment]
            try:
                out = normalizer.normalize(EslEvent(headers=headers, body=event.body))  # type: ignore[arg-type]
            except NormalizeError as exc:
                assert exc.reason and exc.reason == exc.reason.lower() and " " not in exc.reason
                continue
            for env in out:
                assert parse_event(serialize_event(env)) == env
