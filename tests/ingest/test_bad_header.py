"""A JSON number, boolean, object or non-string array where the normalizer reads a string header.

FreeSWITCH only sends strings (and lists of strings for array variables); the JSON decoder does not
check value types, so the normalizer does: such a value is dead-lettered as ``bad-header`` with a
detail naming the header and the JSON type found, the same from the Python reference and the
native core, never as a raw ``TypeError`` (``unexpected-error``) nor as ``bad-event-name``, which
stays for Event-Name / Event-Subclass / CC-Action. The same holds for headers that are only tested or
compared (``Call-Direction == "inbound"``, ``variable_cc_member_session_uuid``, the hangup disposition,
``CC-Cause`` / ``Hangup-Cause`` / ``Answer-State`` of member-queue-end, a registration's ``ccod_tenant``...):
an odd type there, a falsy ``0``, ``false`` or ``{}`` included, is no absent header and no mismatch.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from native_parity import Pair, all_capture_bodies

from ccod_fs.bus.memory import MemoryBus
from ccod_fs.esl.decode import decode_json_body
from ccod_fs.ingest.esl_values import json_type
from ccod_fs.ingest.normalize import Normalizer
from ccod_fs.ingest.pipeline import IngestPipeline

# (value, JSON type named in the detail) of the shapes FreeSWITCH never sends
ODD: list[tuple[Any, str]] = [
    (7, "number"), (2.5, "number"), (-1, "number"), (0, "number"), (True, "boolean"), (False, "boolean"),
    ({"a": "b"}, "object"), ({}, "object"), ([1, "x"], "array"), ([None], "array"), ([{"a": 1}], "array"),
]
# shapes that are no header type error: absent, FreeSWITCH array variables
ORDINARY: list[Any] = [None, ["a", "b"], [], ""]


def _first(event_name: str, cc_action: str | None = None) -> dict[str, Any]:
    for body in all_capture_bodies():
        data = orjson.loads(body)
        if data.get("Event-Name") == event_name and (cc_action is None or data.get("CC-Action") == cc_action):
            return dict(data)
    raise AssertionError((event_name, cc_action))


def _queue_start() -> dict[str, Any]:
    event = _first("CUSTOM", "member-queue-start")
    assert event["variable_ccod_tenant"] == "acme" and event["Call-Direction"] == "inbound"
    return event


def _channel_create() -> dict[str, Any]:
    return {**_first("CHANNEL_CREATE"), "variable_ccod_tenant": "acme"}  # offered at once: reads the caller


def _hangup() -> dict[str, Any]:
    return {**_first("CHANNEL_HANGUP_COMPLETE"), "variable_ccod_tenant": "acme"}


def _outbound_hangup(**headers: str) -> dict[str, Any]:
    """A first-seen outbound leg's hang-up: the new-leg reads past the member / ccod_call_id checks."""
    return {**_hangup(), "Call-Direction": "outbound", **headers}


def _transfer() -> dict[str, Any]:
    return {**_channel_create(), "Event-Name": "CUSTOM", "Event-Subclass": "ccod::queue",
            "ccod_action": "transfer", "ccod_transfer_target": "sales"}


def _agent_leg_dtmf() -> list[dict[str, Any]]:
    """An agent leg's CHANNEL_CREATE, then a DTMF on it: a known agent leg with a tenant learns its agent."""
    create = {**_channel_create(), "Unique-ID": "agent-leg-1", "Call-Direction": "outbound",
              "variable_cc_member_session_uuid": _channel_create()["Unique-ID"], "variable_cc_agent": "1000@default"}
    dtmf = {**create, "Event-Name": "DTMF", "DTMF-Digit": "5", "Event-Sequence": str(int(create["Event-Sequence"]) + 1)}
    return [create, dtmf]


def _cc_event(action: str, **headers: str) -> dict[str, Any]:
    """The first capture event of a mod_callcenter action whose given headers are as stated."""
    for body in all_capture_bodies():
        data = orjson.loads(body)
        if data.get("CC-Action") == action and all(data.get(k) == v for k, v in headers.items()):
            return dict(data)
    raise AssertionError((action, headers))


def _break_out(**headers: str) -> dict[str, Any]:
    """A member-queue-end of a caller who hung up in the queue (Cancel + BREAK_OUT): abandoned."""
    return {**_cc_event("member-queue-end", **{"CC-Cause": "Cancel", "CC-Cancel-Reason": "BREAK_OUT"}), **headers}


def _break_out_caller_up() -> dict[str, Any]:
    """As :func:`_break_out` without a Hangup-Cause: Answer-State is read (the caller may still be up)."""
    return {k: v for k, v in _break_out().items() if k != "Hangup-Cause"}


def _register() -> dict[str, Any]:
    """The capture's sofia::register: no ccod_tenant, the tenant comes from its SIP domain."""
    for body in all_capture_bodies():
        data = orjson.loads(body)
        if data.get("Event-Subclass") == "sofia::register":
            assert "ccod_tenant" not in data
            return dict(data)
    raise AssertionError("sofia::register")


# (base event, header): a queue event header, the switch name, channel-event headers (optional and required)
CASES = {
    "queue-CC-Queue": (_queue_start, "CC-Queue"),
    "queue-CC-Member-CID-Name": (_queue_start, "CC-Member-CID-Name"),
    "queue-switchname": (_queue_start, "FreeSWITCH-Switchname"),
    "heartbeat-switchname": (lambda: _first("HEARTBEAT"), "FreeSWITCH-Switchname"),
    "heartbeat-version": (lambda: _first("HEARTBEAT"), "FreeSWITCH-Version"),
    "create-caller-number": (_channel_create, "Caller-Caller-ID-Number"),
    "create-channel-name": (_channel_create, "Channel-Name"),
    "create-switchname": (_channel_create, "FreeSWITCH-Switchname"),
    "create-unique-id": (_channel_create, "Unique-ID"),
    "create-core-uuid": (_channel_create, "Core-UUID"),
    "create-event-sequence": (_channel_create, "Event-Sequence"),
    "create-timestamp": (_channel_create, "Event-Date-Timestamp"),
    "hangup-cause": (_hangup, "Hangup-Cause"),
    # only tested or compared (esl_values.checked()): before, an odd type read as absent or as a mismatch
    "create-call-direction": (_channel_create, "Call-Direction"),
    "create-ccod-tenant": (_channel_create, "variable_ccod_tenant"),
    "create-caller-ccod-agent": (_channel_create, "variable_ccod_agent"),
    "hangup-member-session": (_hangup, "variable_cc_member_session_uuid"),
    "hangup-ccod-call-id": (_hangup, "variable_ccod_call_id"),
    "hangup-linked-ccod-agent": (lambda: {**_hangup(), "variable_ccod_call_id": "call-9"}, "variable_ccod_agent"),
    "hangup-originating-leg": (lambda: _outbound_hangup(variable_originating_leg_uuid="leg-0"),
                               "variable_originating_leg_uuid"),
    "hangup-other-type": (_outbound_hangup, "Other-Type"),
    "hangup-originator-other-leg": (lambda: _outbound_hangup(**{"Other-Type": "originator"}), "Other-Leg-Unique-ID"),
    "hangup-disposition": (_hangup, "variable_sip_hangup_disposition"),
    "agent-leg-cc-agent": (_agent_leg_dtmf, "variable_cc_agent"),
    "transfer-unique-id": (_transfer, "Unique-ID"),
    "transfer-ccod-action": (_transfer, "ccod_action"),
    "transfer-kind": (_transfer, "ccod_transfer_kind"),
    # the same in the mod_callcenter and registration handlers (cc_actions, node_events)
    "bridge-start-member-session": (lambda: _cc_event("bridge-agent-start"), "CC-Member-Session-UUID"),
    "bridge-end-member-session": (lambda: _cc_event("bridge-agent-end"), "CC-Member-Session-UUID"),
    "queue-end-cc-cause": (lambda: _cc_event("member-queue-end"), "CC-Cause"),
    "queue-end-hangup-cause": (_break_out, "Hangup-Cause"),
    "queue-end-answer-state": (_break_out_caller_up, "Answer-State"),
    "register-ccod-tenant": (_register, "ccod_tenant"),
}


def _outcome(base: dict[str, Any] | list[dict[str, Any]], header: str, value: Any) -> Any:
    """Both normalizers (fresh, no node name: the switch name is read) on the event (after the ones before it,
    for a list); the outcome they agree on."""
    *before, event = base if isinstance(base, list) else [base]
    pair = Pair({"domain_tenants": {"default": "acme", "127.0.0.1": "acme"}})
    pair.feed_all(orjson.dumps(earlier) for earlier in before)
    outcome = pair.feed(orjson.dumps({**event, header: value}))  # asserts Python == native
    pair.assert_same_state()
    return outcome


@pytest.mark.parametrize("case", CASES)
def test_the_unchanged_event_maps(case: str) -> None:
    make, _ = CASES[case]
    outcome = _outcome(make(), "X-Unread", "x")
    assert isinstance(outcome, list) and outcome, outcome


@pytest.mark.parametrize(("value", "kind"), ODD, ids=[repr(v) for v, _ in ODD])
@pytest.mark.parametrize("case", CASES)
def test_an_odd_json_type_is_bad_header_on_both_paths(case: str, value: Any, kind: str) -> None:
    make, header = CASES[case]
    expected = ("NormalizeError", "bad-header", f"{header} is a JSON {kind}, not a string")
    assert _outcome(make(), header, value) == expected


@pytest.mark.parametrize("value", ORDINARY, ids=repr)
@pytest.mark.parametrize("case", CASES)
def test_null_and_string_arrays_are_no_header_type_error(case: str, value: Any) -> None:
    make, header = CASES[case]
    outcome = _outcome(make(), header, value)
    assert isinstance(outcome, list) or (outcome[0] == "NormalizeError" and outcome[1] != "bad-header"), outcome


@pytest.mark.parametrize("value", [{"a": "b"}, ["CHANNEL_CREATE"], [1]], ids=repr)
@pytest.mark.parametrize("header", ["Event-Name", "Event-Subclass", "CC-Action"])
def test_bad_event_name_stays_for_the_names(header: str, value: Any) -> None:
    outcome = _outcome(_queue_start(), header, value)
    assert outcome == ("NormalizeError", "bad-event-name", "Event-Name, Event-Subclass or CC-Action is not a string")


@pytest.mark.parametrize(("header", "absent_outcome"), [
    ("Call-Direction", "call.offered outbound"), ("variable_ccod_agent", "call.offered inbound"),
    ("variable_ccod_tenant", "nothing"), ("ccod_transfer_kind", "blind transfer"),
])
@pytest.mark.parametrize("value", [0, False, {}], ids=repr)
def test_a_falsy_odd_type_is_no_absent_header(header: str, absent_outcome: str, value: Any) -> None:
    """What the event maps to with the header absent, and what a falsy odd value gives instead."""
    base = _transfer() if header == "ccod_transfer_kind" else _channel_create()
    absent = _outcome({k: v for k, v in base.items() if k != header}, "X-Unread", "x")
    found = {"call.offered outbound": any(b'"direction":"outbound"' in raw for _, raw in absent),
             "call.offered inbound": any(b'"direction":"inbound"' in raw for _, raw in absent),
             "nothing": absent == [], "blind transfer": any(b'"kind":"blind"' in raw for _, raw in absent)}
    assert found[absent_outcome], absent
    assert _outcome(base, header, value)[:2] == ("NormalizeError", "bad-header")


def test_an_odd_type_is_checked_before_the_event_is_skipped() -> None:
    """A ccod::queue event whose Unique-ID is empty is skipped; one whose Unique-ID is 0 or {} is a dead letter."""
    assert _outcome(_transfer(), "Unique-ID", "") == []
    assert _outcome(_transfer(), "Unique-ID", {}) == ("NormalizeError", "bad-header",
                                                      "Unique-ID is a JSON object, not a string")


def test_a_string_array_in_a_compared_header_keeps_its_meaning() -> None:
    """FreeSWITCH array variables are no bad-header; a list is never equal to a fixed string (no join)."""
    offered = _outcome(_channel_create(), "Call-Direction", ["inbound"])
    assert isinstance(offered, list) and b'"direction":"outbound"' in offered[0][1]
    assert _outcome(_channel_create(), "variable_ccod_tenant", ["acme"])[:2] == ("NormalizeError", "invalid-tenant")
    assert _outcome(_transfer(), "ccod_transfer_kind", ["blind"])[:2] == ("NormalizeError", "bad-transfer-kind")


def _dequeued_outcome(outcome: Any) -> str:
    assert isinstance(outcome, list), outcome
    return next(orjson.loads(raw)["payload"]["outcome"] for _, raw in outcome if b'"call.dequeued"' in raw)


@pytest.mark.parametrize(("headers", "expected"), [
    ({}, "abandoned"),
    ({"Hangup-Cause": "", "Answer-State": "answered"}, "other"),  # caller still up (BREAK_OUT some other way)
    ({"Hangup-Cause": "", "Answer-State": "hangup"}, "abandoned"),
    ({"Hangup-Cause": ["NORMAL_CLEARING"]}, "abandoned"),  # a non-empty string array is true
    ({"Hangup-Cause": [], "Answer-State": ["hangup"]}, "other"),  # a list is never equal to a string
    ({"CC-Cause": ["Cancel"]}, "other"),
])
def test_string_shapes_of_the_queue_end_headers_keep_their_meaning(headers: dict[str, Any], expected: str) -> None:
    event = {**_break_out(), **headers}
    assert _dequeued_outcome(_outcome(event, "X-Unread", "x")) == expected


@pytest.mark.parametrize(("header", "value"), [("Hangup-Cause", 0), ("Hangup-Cause", {}), ("Answer-State", False),
                                                ("CC-Cause", 0), ("CC-Cause", {"c": "Cancel"})])
def test_a_falsy_or_odd_queue_end_header_is_no_other_outcome(header: str, value: Any) -> None:
    """Before, ``Hangup-Cause: 0`` read as a caller still up and ``CC-Cause: 0`` as outcome "other"."""
    event = {**_break_out(), "Hangup-Cause": ""} if header == "Answer-State" else _break_out()
    assert _outcome(event, header, value) == ("NormalizeError", "bad-header",
                                              f"{header} is a JSON {json_type(value)}, not a string")


@pytest.mark.parametrize("value", [0, False, {}, True, 5], ids=repr)
def test_an_odd_registration_tenant_is_bad_header_not_the_domain_nor_invalid_tenant(value: Any) -> None:
    """A falsy odd ``ccod_tenant`` read as absent (the SIP domain's tenant), a truthy one as invalid-tenant."""
    registered = _outcome(_register(), "X-Unread", "x")
    assert isinstance(registered, list) and registered[0][0] == "acme"
    assert _outcome(_register(), "ccod_tenant", ["acme"])[:2] == ("NormalizeError", "invalid-tenant")
    assert _outcome(_register(), "ccod_tenant", value)[:2] == ("NormalizeError", "bad-header")


def test_a_member_session_list_on_a_bridge_event_falls_back_to_the_leg_call() -> None:
    """CC-Member-Session-UUID of an agent leg's bridge event: a string array is ignored, as before."""
    agent_leg = _cc_event("bridge-agent-start")
    assert _outcome(agent_leg, "CC-Member-Session-UUID", [agent_leg["CC-Member-Session-UUID"]]) == \
        _outcome(agent_leg, "X-Unread", "x")


def test_the_pipeline_dead_letters_bad_header_not_unexpected_error() -> None:
    bus = MemoryBus()
    pipeline = IngestPipeline(normalizer=Normalizer(), publisher=bus, node="fs1", events_topic="ev",
                              dead_letter_topic="dl")
    for base, header in [(_channel_create(), "Caller-Caller-ID-Number"), (_queue_start(), "CC-Queue"),
                         (_first("HEARTBEAT"), "FreeSWITCH-Switchname"),
                         ({**_channel_create(), "Unique-ID": "leg-2"}, "Call-Direction"),  # read on a new leg
                         (_hangup(), "variable_sip_hangup_disposition"),
                         (_cc_event("member-queue-end"), "CC-Cause"), (_register(), "ccod_tenant")]:
        pipeline.on_event(decode_json_body(orjson.dumps({**base, header: 5})))
    letters = [orjson.loads(r.value) for r in bus.read("dl")]
    assert [(x["stage"], x["reason"], x["detail"]) for x in letters] == [
        ("normalize", "bad-header", "Caller-Caller-ID-Number is a JSON number, not a string"),
        ("normalize", "bad-header", "CC-Queue is a JSON number, not a string"),
        ("normalize", "bad-header", "FreeSWITCH-Switchname is a JSON number, not a string"),
        ("normalize", "bad-header", "Call-Direction is a JSON number, not a string"),
        ("normalize", "bad-header", "variable_sip_hangup_disposition is a JSON number, not a string"),
        ("normalize", "bad-header", "CC-Cause is a JSON number, not a string"),
        ("normalize", "bad-header", "ccod_tenant is a JSON number, not a string"),
    ]
