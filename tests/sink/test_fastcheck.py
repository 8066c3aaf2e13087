"""The fast validator may only accept what the pydantic contract accepts, with the same values."""

from __future__ import annotations

import copy
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from ccod_fs.contract.events import EVENT_TYPES, parse_event, serialize_event
from ccod_fs.sink.decode import decode
from ccod_fs.sink.fastcheck import CHECKS, Reject, fast_record, general_check, record_of, ts_ms
from ccod_fs.sink.synthetic import EventFactory, agent_states, call_events

T0 = datetime(2026, 3, 1, 9, 0, 0, 250_000, tzinfo=UTC)


def corpus() -> list[bytes]:
    f = EventFactory()
    evs = call_events(f, tenant="acme", queue="q", start=T0, agent="a", holds=((1_000, 2_000),), acw_ms=3_000)
    evs += call_events(f, tenant="acme", queue="q", start=T0, outcome="abandoned")
    evs += agent_states(f, tenant="acme", agent="a", at=T0, states=(("Available", 0),), kind="status")
    return [serialize_event(e) for e in evs]


def pydantic_record(raw: bytes) -> dict[str, Any] | None:
    try:
        return record_of(parse_event(raw))
    except ValidationError:
        return None


def mutations(d: dict[str, Any]) -> list[dict[str, Any]]:
    """Wrong types, missing/extra keys, odd timestamps and ids, constraint edges."""
    out = []
    bad_values: list[Any] = [None, "", "x", 0, -1, 1.5, 5.0, True, "5", [], {}, "2026-03-01T09:00:00Z",
                             "2026-03-01T09:00:00.123+02:00", "2026-03-01 09:00:00Z", "2026-03-01T09:00:00",
                             "2026-02-30T09:00:00Z", "2026-03-01T24:00:00Z", 1772355600,
                             "\u0662\u0660\u0662\u0666-03-01T09:00:00Z", "\uff12\uff10\uff12\uff16-03-01T09:00:00Z",
                             "6F1D3C2E-8A4B-5C6D-9E0F-1A2B3C4D5E6F", "6f1d3c2e8a4b5c6d9e0f1a2b3c4d5e6f",
                             "abc\n", "a" * 65, "caller", "answered", "-tenant",
                             # the store's range: ints and instants at and beyond what the columns hold
                             255, 256, 2**64 - 1, "1970-01-01T00:00:00Z", "1969-12-31T23:59:59.999Z",
                             "1969-12-31T23:59:59.999999+00:00", "2299-12-31T23:59:59.999999Z",
                             "2300-01-01T00:00:00Z", "2300-01-01T00:00:00.000+00:00", "0001-01-01T00:00:00Z",
                             "9999-12-31T23:59:59.999999Z", "2299-12-31T23:00:00-01:00"]
    for key in list(d):
        for v in bad_values:
            m = copy.deepcopy(d)
            m[key] = v
            out.append(m)
        m = copy.deepcopy(d)
        del m[key]
        out.append(m)
    for key in list(d.get("payload") or {}):
        for v in bad_values:
            m = copy.deepcopy(d)
            m["payload"][key] = v
            out.append(m)
        m = copy.deepcopy(d)
        del m["payload"][key]
        out.append(m)
    for key in list(d.get("source") or {}):
        for v in [*bad_values[:10], 2**63, 2**64 - 1]:
            m = copy.deepcopy(d)
            m["source"][key] = v
            out.append(m)
    m = copy.deepcopy(d)
    m["extra"] = 1
    out.append(m)
    m = copy.deepcopy(d)
    m["payload"]["extra"] = 1
    out.append(m)
    return out


def test_every_event_type_has_a_fast_check() -> None:
    assert set(CHECKS) == set(EVENT_TYPES)


def test_fast_path_equals_pydantic_on_valid_events() -> None:
    for raw in corpus():
        fast = fast_record(orjson.loads(raw))
        assert fast is not None, raw
        assert fast == pydantic_record(raw)


def test_fast_path_never_accepts_what_pydantic_rejects() -> None:
    accepted = rejected_by_both = 0
    for raw in corpus():
        for m in mutations(orjson.loads(raw)):
            blob = orjson.dumps(m)
            fast = fast_record(orjson.loads(blob))
            slow = pydantic_record(blob)
            if fast is not None:
                accepted += 1
                assert slow == fast, m  # accepted: pydantic agrees, same normalised values
            elif slow is None:
                rejected_by_both += 1
    assert accepted > 100 and rejected_by_both > 1000  # both branches were exercised


@pytest.mark.parametrize("text", [
    "1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999999+00:00", "0001-01-01T00:00:00Z", "2300-01-01T00:00:00Z",
    "2300-01-01T00:00:00.000001Z", "9999-12-31T23:59:59.999Z",
])
def test_timestamps_outside_the_contract_range_are_rejected(text: str) -> None:
    with pytest.raises(Reject):
        ts_ms(text)
    with pytest.raises(Reject):  # not memoised either
        ts_ms(text)


@pytest.mark.parametrize(("text", "ms"), [
    ("1970-01-01T00:00:00Z", 0),
    ("1970-01-01T00:00:00.000999+00:00", 0),
    ("2299-12-31T23:59:59.999999Z", 10_413_791_999_999),
    ("2026-03-01T09:00:00.250Z", 1772355600250),
    ("2026-03-01T09:00:00.250999+00:00", 1772355600250),
    ("2024-02-29T23:59:59.9Z", 1709251199900),
])
def test_timestamps_truncate_to_ms_like_the_contract(text: str, ms: int) -> None:
    assert ts_ms(text) == ms
    base = datetime(1970, 1, 1, tzinfo=UTC)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert (parsed - base) // timedelta(milliseconds=1) == ms


def test_decode_falls_back_to_pydantic_for_coercible_input() -> None:
    raw = orjson.loads(corpus()[1])
    raw["occurred_at"] = "2026-03-01T11:00:02.250+02:00"  # valid, but not the canonical form
    rec = decode(orjson.dumps(raw), origin="t", topic="x", partition=0, offset=0)
    assert isinstance(rec, dict)
    assert rec["occurred_at"] == 1772355602250
    assert rec["payload_json"].startswith("{")


@pytest.mark.parametrize(("value", "reason"), [
    (b"", "empty-record"), (b"{not json", "invalid-json"), (b"[]", "invalid-event"),
    (b'{"type": "call.unknown"}', "invalid-event"),
])
def test_decode_dead_letters_with_reason(value: bytes, reason: str) -> None:
    out = decode(value, origin="sink", topic="ccod.events.v1", partition=2, offset=7)
    assert not isinstance(out, dict)
    assert (out.reason, out.stage, out.partition, out.offset) == (reason, "sink-validate", 2, 7)


def test_mutation_count_is_large() -> None:
    assert sum(1 for _ in itertools.islice((m for r in corpus() for m in mutations(orjson.loads(r))), 5000)) == 5000


def test_full_shape_check_equals_the_general_check() -> None:
    """The in-place check for fully populated dicts decides and normalises like the general one."""
    general = {name: general_check(cls) for name, cls in EVENT_TYPES.items()}

    def run(check: Any, d: dict[str, Any]) -> Any:
        try:
            return check(copy.deepcopy(d))
        except Reject:
            return "rejected"

    compared = 0
    for raw in corpus():
        original = orjson.loads(raw)
        for m in [original, *mutations(original)]:
            kind = original["type"]
            assert run(CHECKS[kind], m) == run(general[kind], m), m
            compared += 1
    assert compared > 1000
