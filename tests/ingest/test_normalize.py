"""Normalizer edge cases: hostile values, dead-letter reasons, tenant rules, hold/record, construct parity."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from ccod_fs.contract.envelope import fs_event_id
from ccod_fs.contract.events import (
    CallEndedPayload,
    CallQueued,
    CallQueuedPayload,
    occurred_ms,
    parse_event,
    serialize_event,
)
from ccod_fs.esl.decode import decode_json_body, decode_plain_body
from ccod_fs.esl.event import EslEvent
from ccod_fs.ingest.envelopes import construct, event_id
from ccod_fs.ingest.esl_values import dial_vars, is_tenant_id
from ccod_fs.ingest.normalize import NormalizeError, Normalizer

CORE = "05046284-7721-4a18-9f25-c5fe2b2d196b"
CALLER = "5d1506f5-733b-4103-b83c-3c2b94d22771"
AGENT_LEG = "1dfee10d-b05a-4a7f-ba70-abc87117a1b3"
T0 = 1795629548005086
_seq = iter(range(1000, 10**6))


def ev(name: str, **headers: Any) -> EslEvent:
    base: dict[str, Any] = {
        "Event-Name": name,
        "Core-UUID": CORE,
        "FreeSWITCH-Switchname": "vm",
        "Event-Date-Timestamp": str(T0 + 1000 * next(_seq)),
        "Event-Sequence": str(next(_seq)),
    }
    base.update({k.replace("__", "-"): v for k, v in headers.items()})
    return EslEvent(headers=base)


def caller(name: str, tenant: str | None = "acme", uuid: str = CALLER, **extra: Any) -> EslEvent:
    headers: dict[str, Any] = {
        "Unique-ID": uuid,
        "Call-Direction": "inbound",
        "Caller-Caller-ID-Number": "5551001",
        "Caller-Caller-ID-Name": "Caller 5551001",
        "Caller-Destination-Number": "7000",
        "Caller-Channel-Created-Time": str(T0),
        "Caller-Channel-Answered-Time": "0",
        "Caller-Channel-Hangup-Time": "0",
    }
    if tenant is not None:
        headers["variable_ccod_tenant"] = tenant
    headers.update(extra)
    return ev(name, **headers)


def cc(action: str, **headers: Any) -> EslEvent:
    return ev("CUSTOM", Event__Subclass="callcenter::info", CC__Action=action, **headers)


def roundtrip(events: list[Any]) -> None:
    for env in events:
        assert parse_event(serialize_event(env)) == env


# ---- hostile input -------------------------------------------------------------------------------


def test_hostile_caller_name_stays_one_value_plain_and_json() -> None:
    evil = "Mallory\nEvent-Name: CHANNEL_HANGUP\nHangup-Cause: CALL_REJECTED"
    fields = {
        "Event-Name": "CHANNEL_ANSWER", "Core-UUID": CORE, "Event-Sequence": "501",
        "Event-Date-Timestamp": str(T0), "Unique-ID": CALLER, "Call-Direction": "inbound",
        "Caller-Caller-ID-Name": evil, "Caller-Caller-ID-Number": "5551001", "variable_ccod_tenant": "acme",
    }
    plain = "".join(f"{k}: {quote(v, safe='')}\n" for k, v in fields.items()) + "\n"
    for event in (decode_plain_body(plain.encode()), decode_json_body(orjson.dumps(fields))):
        [offered] = Normalizer().normalize(event)
        assert offered.type == "call.offered"
        assert offered.payload.caller_name == evil  # type: ignore[attr-defined]
        assert offered.payload.caller_number == "5551001"  # type: ignore[attr-defined]
        roundtrip([offered])
        assert parse_event(serialize_event(offered)).payload.caller_name == evil  # type: ignore[attr-defined]


def test_list_valued_header_never_leaks_a_list_into_a_string_field() -> None:
    nz = Normalizer()
    [offered] = nz.normalize(caller("CHANNEL_ANSWER", Caller__Caller__ID__Name=["a", "b"]))
    assert offered.payload.caller_name == "a|b"  # type: ignore[attr-defined]
    roundtrip([offered])


# ---- dead-letter reasons ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "reason"),
    [
        ([caller("CHANNEL_HANGUP_COMPLETE", tenant=None, Hangup__Cause="NORMAL_CLEARING")], "tenant-missing"),
        ([caller("CHANNEL_CREATE", tenant=None), caller("DTMF", tenant=None, DTMF__Digit="1")], "tenant-missing"),
        ([ev("DTMF", Unique__ID="nobody", DTMF__Digit="1")], "tenant-missing"),
        ([caller("CHANNEL_ANSWER", tenant="ac me")], "invalid-tenant"),
        ([caller("CHANNEL_ANSWER", tenant="x" * 65)], "invalid-tenant"),
        ([caller("CHANNEL_ANSWER", Event__Date__Timestamp="soon")], "bad-timestamp"),
        ([caller("CHANNEL_ANSWER", Event__Date__Timestamp="-5")], "bad-timestamp"),
        ([caller("CHANNEL_ANSWER", Event__Date__Timestamp="99999999999999999999")], "bad-timestamp"),
        ([caller("CHANNEL_ANSWER", Event__Sequence="x")], "bad-event-sequence"),
        ([caller("CHANNEL_ANSWER", Core__UUID="")], "missing-core-uuid"),
        ([ev("CHANNEL_ANSWER")], "missing-unique-id"),
        ([caller("CHANNEL_ANSWER"), caller("DTMF", DTMF__Digit="55")], "bad-dtmf-digit"),
        ([cc("agent-offering", CC__Agent="1000@default", CC__Queue="q", CC__Member__Session__UUID="gone")],
         "call-unknown"),
        ([cc("agent-offering", CC__Agent="1000@default", CC__Queue="q")], "missing-header"),
        ([cc("agent-status-change", CC__Agent="1000@default", CC__Agent__Status="Available")],
         "agent-tenant-unresolved"),
        ([ev("CUSTOM", Event__Subclass="sofia::register", username="1000", realm="pbx.example")],
         "registration-tenant-unresolved"),
        ([ev("BACKGROUND_JOB")], "missing-header"),
    ],
)
def test_unmappable_input_raises_with_a_stable_reason(events: list[EslEvent], reason: str) -> None:
    nz = Normalizer()
    *setup, last = events
    for event in setup:
        nz.normalize(event)
    with pytest.raises(NormalizeError) as info:
        nz.normalize(last)
    assert info.value.reason == reason
    assert info.value.detail


def test_inbound_leg_without_tenant_yet_is_not_an_error() -> None:
    """CHANNEL_CREATE of an inbound leg precedes the dialplan that sets ccod_tenant."""
    nz = Normalizer()
    assert nz.normalize(caller("CHANNEL_CREATE", tenant=None)) == []
    [offered] = nz.normalize(caller("CHANNEL_ANSWER"))
    assert (offered.type, offered.tenant_id, offered.call_id) == ("call.offered", "acme", CALLER)
    assert nz.normalize(caller("CHANNEL_PARK")) == []  # offered once per leg


@pytest.mark.parametrize("name", ["API", "CHANNEL_STATE", "PRESENCE_IN", "RE_SCHEDULE", "CHANNEL_EXECUTE", "NOPE"])
def test_irrelevant_events_are_empty_even_when_malformed(name: str) -> None:
    assert Normalizer().normalize(EslEvent(headers={"Event-Name": name})) == []
    assert Normalizer().normalize(EslEvent(headers={"Event-Name": "CUSTOM", "Event-Subclass": "x::y"})) == []
    assert Normalizer().normalize(EslEvent(headers={"Event-Name": "CUSTOM", "Event-Subclass": "callcenter::info",
                                                   "CC-Action": "members-count"})) == []


# ---- tenants -----------------------------------------------------------------------------------------


def test_agent_tenant_rules_in_order() -> None:
    nz = Normalizer(agent_tenants={"7@x": "beta"}, domain_tenants={"default": "acme"}, domain_is_tenant=True)
    assert nz.agents.tenant_of("1000@default") == "acme"  # domain map
    assert nz.agents.tenant_of("7@x") == "beta"  # explicit agent map beats the domain
    assert nz.agents.tenant_of("9@gamma") == "gamma"  # domain is the tenant
    assert nz.agents.tenant_of("9@bad domain") is None
    assert nz.agents.tenant_of("nodomain") is None
    # Seen on an agent leg (the contact string's ccod_tenant) beats the domain map...
    nz.normalize(caller("CHANNEL_ANSWER", tenant="delta"))
    nz.normalize(ev("CHANNEL_CREATE", Unique__ID=AGENT_LEG, Call__Direction="outbound",
                    variable_cc_member_session_uuid=CALLER, variable_cc_agent="1000@default",
                    variable_cc_side="agent", variable_ccod_tenant="delta"))
    assert nz.agents.tenant_of("1000@default") == "delta"
    [status] = nz.normalize(cc("agent-status-change", CC__Agent="1000@default", CC__Agent__Status="On Break"))
    assert (status.tenant_id, status.agent_id, status.payload.status) == ("delta", "1000@default", "On Break")
    # ...but not an explicit agent mapping; the agent's own contact string beats everything.
    nz.agents.learn_leg("7@x", "delta")
    assert nz.agents.tenant_of("7@x") == "beta"
    nz.normalize(cc("agent-contact-change", CC__Agent="7@x",
                    CC__Agent__Contact="{x=1}[leg_timeout=10,ccod_tenant=omega]user/2000@10.0.0.1"))
    assert nz.agents.tenant_of("7@x") == "omega"


def test_agent_legs_inherit_the_callers_tenant() -> None:
    nz = Normalizer()
    nz.normalize(caller("CHANNEL_ANSWER"))
    nz.normalize(ev("CHANNEL_CREATE", Unique__ID=AGENT_LEG, Call__Direction="outbound",
                    variable_cc_member_session_uuid=CALLER, variable_cc_agent="1000@default"))
    [ended] = nz.normalize(ev("CHANNEL_HANGUP_COMPLETE", Unique__ID=AGENT_LEG, Call__Direction="outbound",
                              Hangup__Cause="NO_ANSWER", variable_sip_hangup_disposition="send_cancel",
                              Caller__Channel__Created__Time=str(T0)))
    assert (ended.tenant_id, ended.call_id, ended.agent_id) == ("acme", CALLER, None)
    assert (ended.payload.leg_role, ended.payload.hangup_by, ended.payload.billable_ms) == ("agent", "system", 0)


def test_registration_tenant_from_directory_variable_or_domain() -> None:
    nz = Normalizer(domain_tenants={"pbx.example": "acme"})
    [reg] = nz.normalize(ev("CUSTOM", Event__Subclass="sofia::register", username="1000", realm="pbx.example",
                            expires="3600", contact="<sip:1000@10.0.0.5>"))
    assert (reg.type, reg.tenant_id, reg.payload.user, reg.payload.expires_s) == ("agent.registered", "acme",
                                                                                   "1000", 3600)
    [unreg] = nz.normalize(ev("CUSTOM", Event__Subclass="sofia::unregister", ccod_tenant="beta",
                              **{"from-user": "1001", "from-host": "other.example"}))
    assert (unreg.type, unreg.tenant_id, unreg.payload.user) == ("agent.unregistered", "beta", "1001")
    roundtrip([reg, unreg])


def test_background_job_tenant_decision_and_no_arguments_leaked() -> None:
    nz = Normalizer(system_tenant="ops")
    arg = "{ccod_tenant=acme,ccod_decision_id=d-42,sip_auth_password=s3cret}sofia/gw/x/5551009 &park()"
    [result] = nz.normalize(ev("BACKGROUND_JOB", Job__UUID="j1", Job__Command="originate", Job__Command__Arg=arg))
    assert (result.tenant_id, result.payload.decision_id, result.payload.ok) == ("acme", "d-42", True)
    assert b"s3cret" not in serialize_event(result)
    event = ev("BACKGROUND_JOB", Job__UUID="j2", Job__Command="status")
    event.body = "-USAGE: nope\n"
    [result] = nz.normalize(event)
    assert (result.tenant_id, result.payload.ok, result.payload.result) == ("ops", False, "-USAGE: nope")


# ---- other channel events ------------------------------------------------------------------------------


def test_hold_unhold_and_recording() -> None:
    nz = Normalizer()
    nz.normalize(caller("CHANNEL_ANSWER"))
    [hold] = nz.normalize(ev("CHANNEL_HOLD", Unique__ID=CALLER))
    [unhold] = nz.normalize(ev("CHANNEL_UNHOLD", Unique__ID=CALLER))
    [rec] = nz.normalize(ev("RECORD_START", Unique__ID=CALLER, Record__File__Path="/rec/a.wav"))
    [stop] = nz.normalize(ev("RECORD_STOP", Unique__ID=CALLER, Record__File__Path="/rec/a.wav"))
    assert [(e.type, e.tenant_id, e.call_id) for e in (hold, unhold, rec, stop)] == [
        ("call.hold", "acme", CALLER), ("call.hold", "acme", CALLER),
        ("call.recording", "acme", CALLER), ("call.recording", "acme", CALLER),
    ]
    assert (hold.payload.held, unhold.payload.held, rec.payload.started, stop.payload.started) == (
        True, False, True, False
    )
    assert rec.payload.path == "/rec/a.wav"
    roundtrip([hold, unhold, rec, stop])


def test_member_queue_resume_and_break_out_without_hangup() -> None:
    nz = Normalizer()
    [offered, queued] = nz.normalize(caller("CUSTOM", Event__Subclass="callcenter::info",
                                            CC__Action="member-queue-resume", CC__Queue="support@default"))
    assert (offered.type, queued.type, queued.payload.resumed) == ("call.offered", "call.queued", True)
    [left] = nz.normalize(caller("CUSTOM", Event__Subclass="callcenter::info", CC__Action="member-queue-end",
                                 CC__Queue="support@default", CC__Cause="Cancel", CC__Cancel__Reason="BREAK_OUT",
                                 Answer__State="answered", CC__Member__Joined__Time=str(T0 // 10**6)))
    assert (left.payload.outcome, left.payload.cancel_reason) == ("other", "BREAK_OUT")


def test_ended_legs_are_forgotten_after_the_retention() -> None:
    nz = Normalizer(ended_leg_retention=2)
    for i in range(5):
        uuid = f"leg-{i}"
        nz.normalize(caller("CHANNEL_ANSWER", uuid=uuid))
        nz.normalize(caller("CHANNEL_HANGUP_COMPLETE", uuid=uuid, Hangup__Cause="NORMAL_CLEARING"))
    assert sorted(nz.book.legs) == ["leg-3", "leg-4"]
    assert sorted(nz.book.calls) == ["leg-3", "leg-4"]


# ---- helpers ------------------------------------------------------------------------------------------------


def test_construct_matches_model_construct() -> None:
    values: dict[str, Any] = {"queue": "support@default", "caller_name": "x"}
    fast, slow = construct(CallQueuedPayload, values), CallQueuedPayload.model_construct(**values)
    assert fast == slow and list(fast.__dict__) == list(slow.__dict__)
    assert fast.model_dump_json() == slow.model_dump_json()
    assert fast.model_fields_set == slow.model_fields_set
    assert isinstance(construct(CallQueued, {}), CallQueued)
    with pytest.raises(Exception):  # noqa: B017 - a required field left out must never serialize silently
        construct(CallEndedPayload, {"leg_uuid": "x"}).model_dump_json()


def test_dial_vars_and_tenant_rule() -> None:
    assert dial_vars("{a=1,b=2}[c=3]<d=4>user/1000@x") == {"a": "1", "b": "2", "c": "3", "d": "4"}
    assert dial_vars("user/1000@x") == {}
    assert dial_vars("{unterminated=1") == {}
    assert is_tenant_id("acme") and is_tenant_id("a.b-c_d") and not is_tenant_id("-x") and not is_tenant_id("")


def test_fast_event_id_is_exactly_fs_event_id() -> None:
    for core in (CORE, "x", "ü-node"):
        for seq in (0, 1, 512, 10**12):
            for index in range(3):
                fast, reference = event_id(core, seq, index), fs_event_id(core, seq, index)
                assert fast == reference and str(fast) == str(reference) and hash(fast) == hash(reference)
                assert fast.version == 5 and fast.variant == reference.variant


# ---- our own dialplan events, internal calls -----------------------------------------------------------


def test_ccod_queue_event_is_an_offer_point_and_agent_phones_are_internal() -> None:
    nz = Normalizer()
    [offered] = nz.normalize(caller("CUSTOM", Event__Subclass="ccod::queue", ccod_action="enter"))
    assert (offered.type, offered.payload.direction) == ("call.offered", "inbound")
    assert nz.normalize(ev("CUSTOM", Event__Subclass="ccod::agent", ccod_action="login")) == []
    phone = "99999999-0000-0000-0000-000000000001"
    [internal] = nz.normalize(caller("CUSTOM", uuid=phone, Event__Subclass="ccod::agent", ccod_action="login",
                                     variable_ccod_agent="1000", Caller__Destination__Number="*21"))
    assert (internal.payload.direction, internal.payload.destination) == ("internal", "*21")
    [ended] = nz.normalize(caller("CHANNEL_HANGUP_COMPLETE", uuid=phone, Hangup__Cause="NORMAL_CLEARING"))
    assert ended.payload.direction == "internal"


# ---- resync after an ESL reconnect ----------------------------------------------------------------------


def test_resync_closes_legs_freeswitch_no_longer_has() -> None:
    nz = Normalizer()
    assert nz.resync('{"row_count":0}') == []  # nothing seen yet
    nz.normalize(caller("CHANNEL_ANSWER"))
    nz.normalize(ev("CHANNEL_CREATE", Unique__ID=AGENT_LEG, Call__Direction="outbound",
                    variable_cc_member_session_uuid=CALLER, variable_cc_agent="1000@default",
                    Caller__Channel__Created__Time=str(T0 + 5000)))
    nz.normalize(caller("CHANNEL_CREATE", tenant=None, uuid="unattributed"))
    listing = orjson.dumps({"row_count": 1, "rows": [{"uuid": AGENT_LEG, "direction": "outbound"}]})
    [ended] = nz.resync(listing)
    assert (ended.type, ended.call_id, ended.tenant_id) == ("call.ended", CALLER, "acme")
    assert (ended.payload.leg_role, ended.payload.hangup_cause, ended.payload.hangup_by) == (
        "caller", "UNKNOWN", "unknown"
    )
    assert ended.payload.duration_ms == occurred_ms(ended.payload.ended_at) - occurred_ms(ended.payload.created_at)
    roundtrip([ended])
    assert nz.resync(listing) == []  # already closed
    [agent_end] = nz.resync('{"row_count":0}')
    assert (agent_end.payload.leg_role, agent_end.agent_id, agent_end.call_id) == ("agent", "1000@default", CALLER)
    with pytest.raises(NormalizeError) as info:
        nz.resync("-ERR no reply")
    assert info.value.reason == "bad-channel-listing"


def test_resync_survives_a_snapshot() -> None:
    nz = Normalizer()
    nz.normalize(caller("CHANNEL_ANSWER"))
    restored = Normalizer()
    restored.restore(orjson.loads(orjson.dumps(nz.state_snapshot())))
    assert [serialize_event(e) for e in restored.resync("{}")] == [serialize_event(e) for e in nz.resync("{}")]


def _api_body(name: str) -> str:
    raw = (Path(__file__).resolve().parents[1] / "fixtures" / "freeswitch" / name).read_text()
    return raw.split("\n\n", 1)[1]


def test_resync_agents_learns_tenants_from_the_switchs_agent_list() -> None:
    listing = _api_body("api-callcenter-agent-list.raw")
    nz = Normalizer()  # no tenant configuration at all
    assert nz.resync_agents(listing) == []  # nothing known before: only remembered
    assert {nz.agents.tenant_of(f"100{i}@default") for i in range(4)} == {"acme"}
    [status] = nz.normalize(cc("agent-status-change", CC__Agent="1003@default", CC__Agent__Status="Available"))
    assert (status.tenant_id, status.payload.previous, status.payload.status) == ("acme", "Logged Out", "Available")
    # 1003 went back to Logged Out while we were disconnected: one catch-up event, once.
    [caught_up] = nz.resync_agents(listing)
    assert (caught_up.type, caught_up.agent_id, caught_up.tenant_id) == ("agent.status_changed", "1003@default", "acme")
    assert (caught_up.payload.previous, caught_up.payload.status) == ("Available", "Logged Out")
    assert caught_up.source.event_sequence is None
    roundtrip([caught_up])
    assert nz.resync_agents(listing) == []
    with pytest.raises(NormalizeError) as info:
        nz.resync_agents("-ERR no such command")
    assert info.value.reason == "bad-agent-listing"


def test_actuator_legs_join_their_call_by_ccod_call_id() -> None:
    nz = Normalizer()
    nz.normalize(caller("CHANNEL_ANSWER"))
    leg = "22222222-0000-0000-0000-000000000002"
    assert nz.normalize(ev("CHANNEL_CREATE", Unique__ID=leg, Call__Direction="outbound",
                           variable_ccod_call_id=CALLER, variable_ccod_agent="1000")) == []
    [ended] = nz.normalize(ev("CHANNEL_HANGUP_COMPLETE", Unique__ID=leg, Call__Direction="outbound",
                              Hangup__Cause="NORMAL_CLEARING", variable_sip_hangup_disposition="recv_bye",
                              Caller__Channel__Answered__Time=str(T0 + 10**6)))
    assert (ended.call_id, ended.tenant_id, ended.payload.leg_role, ended.payload.hangup_by) == (
        CALLER, "acme", "agent", "agent"
    )
