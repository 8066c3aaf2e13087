"""A JSON number, boolean, object or non-string array where the normalizer reads a string header.

FreeSWITCH only sends strings (and lists of strings for array variables); the JSON decoder does not
check value types, so the normalizer does: such a value is dead-lettered as ``bad-header`` with a
detail naming the header and the JSON type found, the same from the Python reference and the
native core, never as a raw ``TypeError`` (``unexpected-error``) nor as ``bad-event-name``, which
stays for Event-Name / Event-Subclass / CC-Action.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from native_parity import Pair, all_capture_bodies

from ccod_fs.bus.memory import MemoryBus
from ccod_fs.esl.decode import decode_json_body
from ccod_fs.ingest.normalize import Normalizer
from ccod_fs.ingest.pipeline import IngestPipeline

# (value, JSON type named in the detail) of the shapes FreeSWITCH never sends
ODD: list[tuple[Any, str]] = [
    (7, "number"), (2.5, "number"), (-1, "number"), (True, "boolean"), (False, "boolean"),
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
}


def _outcome(base: dict[str, Any], header: str, value: Any) -> Any:
    """Both normalizers (fresh, no node name: the switch name is read) on the event; the outcome they agree on."""
    pair = Pair({"domain_tenants": {"default": "acme", "127.0.0.1": "acme"}})
    return pair.feed(orjson.dumps({**base, header: value}))  # asserts Python == native, state included


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


@pytest.mark.parametrize(("header", "value"), [("ccod_transfer_kind", 3), ("ccod_transfer_kind", {"k": "blind"})])
def test_transfer_kind_of_an_odd_type_is_bad_header(header: str, value: Any) -> None:
    base = {**_channel_create(), "Event-Name": "CUSTOM", "Event-Subclass": "ccod::queue",
            "ccod_action": "transfer", "ccod_transfer_target": "sales"}
    assert isinstance(_outcome(base, "X-Unread", "x"), list)
    outcome = _outcome(base, header, value)
    assert outcome[:2] == ("NormalizeError", "bad-header") and outcome[2].startswith(f"{header} is a JSON ")


def test_the_pipeline_dead_letters_bad_header_not_unexpected_error() -> None:
    bus = MemoryBus()
    pipeline = IngestPipeline(normalizer=Normalizer(), publisher=bus, node="fs1", events_topic="ev",
                              dead_letter_topic="dl")
    for base, header in [(_channel_create(), "Caller-Caller-ID-Number"), (_queue_start(), "CC-Queue"),
                         (_first("HEARTBEAT"), "FreeSWITCH-Switchname")]:
        pipeline.on_event(decode_json_body(orjson.dumps({**base, header: 5})))
    letters = [orjson.loads(r.value) for r in bus.read("dl")]
    assert [(x["stage"], x["reason"], x["detail"]) for x in letters] == [
        ("normalize", "bad-header", "Caller-Caller-ID-Number is a JSON number, not a string"),
        ("normalize", "bad-header", "CC-Queue is a JSON number, not a string"),
        ("normalize", "bad-header", "FreeSWITCH-Switchname is a JSON number, not a string"),
    ]
