"""Values the contract used to accept but the ClickHouse columns cannot hold are dead letters now.

``schema_version`` > 255 (UInt8), ``source.event_sequence`` >= 2**64 (UInt64) and timestamps outside
1970-01-01T00:00:00.000Z .. 2299-12-31T23:59:59.999Z (DateTime64(3); UInt64 epoch ms on 18.16) passed
validation, then failed the insert of their whole batch, retried forever. Every decode path (decode,
the Python batch path, the native decoder) now dead-letters them with pydantic's reason and derives
no row; the values at the edges of the ranges stay valid, fast-checked and written alike.
"""

from __future__ import annotations

import functools
import itertools
import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from ccod_fs.contract.deadletter import DeadLetter
from ccod_fs.contract.envelope import UTC_MS_MAX_EPOCH_MS
from ccod_fs.contract.events import serialize_event
from ccod_fs.sink import native_rows
from ccod_fs.sink.builders import PythonRowBuilder
from ccod_fs.sink.decode import decode
from ccod_fs.sink.fastcheck import fast_record
from ccod_fs.sink.rows import TABLES
from ccod_fs.sink.synthetic import EventFactory, agent_states, call_events

T0 = datetime(2026, 3, 1, 9, 0, 0, 250_000, tzinfo=UTC)
RANGE_MSG = "1970-01-01T00:00:00.000Z .. 2299-12-31T23:59:59.999Z"
_IDS = itertools.count(1)

BAD_TIMES = [
    "1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999999+00:00", "1900-01-01T00:00:00Z", "0001-01-01T00:00:00Z",
    "2300-01-01T00:00:00Z", "2300-01-01T00:00:00.000+00:00", "9999-12-31T23:59:59.999999Z",
    "2299-12-31T23:00:00-01:00", "1970-01-01T00:59:59.999+01:00", "9999-12-31T23:00:00-05:00", -1,
]
EDGE_TIMES = [("1970-01-01T00:00:00Z", 0), ("1970-01-01T00:00:00.000999Z", 0),
              ("2299-12-31T23:59:59.999Z", UTC_MS_MAX_EPOCH_MS), ("2299-12-31T23:59:59.999999Z", UTC_MS_MAX_EPOCH_MS)]


@functools.cache
def base_events() -> dict[str, dict[str, Any]]:
    """One serialized event per type that feeds a column from a timestamp (first of each type)."""
    f = EventFactory(core_uuid="00000000-0000-4000-8000-00000000bbbb")
    evs = call_events(f, tenant="acme", queue="q", start=T0, agent="a1", holds=((1_000, 2_000),))
    evs += call_events(f, tenant="acme", queue="q", start=T0, outcome="abandoned", wait_ms=4_000)
    evs += agent_states(f, tenant="acme", agent="a1", at=T0, states=(("Available", 0),), kind="status")
    out: dict[str, dict[str, Any]] = {}
    for e in evs:
        out.setdefault(e.type, orjson.loads(serialize_event(e)))
    assert {"call.offered", "call.queued", "call.answered", "call.agent_ended", "call.dequeued", "call.ended",
            "agent.status_changed"} <= set(out)
    return out


def time_keys(d: dict[str, Any]) -> list[str]:
    """``occurred_at`` and the payload's timestamps (``payload.<name>``) set in this event."""
    return ["occurred_at", *(f"payload.{k}" for k, v in d["payload"].items() if k.endswith("_at") and v)]


def with_value(d: dict[str, Any], key: str, value: Any) -> bytes:
    """The event with one field replaced, as JSON (stdlib: orjson cannot write ints beyond 64 bits)."""
    d = json.loads(json.dumps(d))
    where, _, name = key.rpartition(".")
    (d[where] if where else d)[name] = value
    d["event_id"] = d["event_id"][:-6] + f"{next(_IDS):06x}"  # distinct: no in-batch dedupe
    return json.dumps(d, separators=(",", ":"), ensure_ascii=False).encode()


def poison() -> list[tuple[str, bytes, str]]:
    """(case id, record value, the field pydantic names in its reason)."""
    out = []
    for t, d in base_events().items():
        for key in time_keys(d):
            for v in BAD_TIMES:
                out.append((f"{t}:{key}={v}", with_value(d, key, v), key.rpartition(".")[2]))
    d = base_events()["call.answered"]
    for v in (256, 1_000, 2**16, 2**64):
        out.append((f"schema_version={v}", with_value(d, "schema_version", v), "schema_version"))
    for v in (2**64, 2**64 + 1, 2**70, 10**30):
        out.append((f"event_sequence={v}", with_value(d, "source.event_sequence", v), "event_sequence"))
    return out


POISON = poison()


def edges() -> list[tuple[str, bytes]]:
    out = []
    for t, d in base_events().items():
        for key in time_keys(d):
            for text, _ms in EDGE_TIMES:
                out.append((f"{t}:{key}={text}", with_value(d, key, text)))
    d = base_events()["call.answered"]
    out.append(("schema_version=255", with_value(d, "schema_version", 255)))
    out.append(("event_sequence=2**64-1", with_value(d, "source.event_sequence", 2**64 - 1)))
    return out


EDGES = edges()


def build(builder: Any, values: list[bytes]) -> tuple[dict[str, Any], list[DeadLetter]]:
    dead: list[DeadLetter] = []
    builder.add_run(values, list(range(len(values))), dead=dead, origin="t", topic="ccod.events.v1", partition=0)
    return builder.finish().tables, dead


def builders() -> list[Any]:
    assert native_rows.available(), "ccod_fs_native has no sink decoder: run `make venv`"
    return [PythonRowBuilder(), native_rows.NativeRowBuilder()]


def test_the_poison_list_covers_every_timestamp_column_feed() -> None:
    keys = {case.split("=")[0] for case, _v, _f in POISON}
    for column_feed in ("call.answered:payload.answered_at", "call.agent_ended:payload.ended_at",
                        "call.dequeued:payload.left_at", "call.ended:payload.ended_at",
                        "call.queued:payload.joined_at", "agent.status_changed:occurred_at"):
        assert column_feed in keys
    assert len(POISON) > 150


@pytest.mark.parametrize(("case", "value", "field"), POISON, ids=[c for c, _v, _f in POISON])
def test_decode_dead_letters_each_poison_value_with_the_reason(case: str, value: bytes, field: str) -> None:
    out = decode(value, origin="sink", topic="ccod.events.v1", partition=1, offset=9)
    assert isinstance(out, DeadLetter), case
    assert (out.reason, out.stage, out.offset) == ("invalid-event", "sink-validate", 9)
    assert field in out.detail
    if field not in ("schema_version", "event_sequence"):
        assert RANGE_MSG in out.detail
    else:
        assert "less than or equal to" in out.detail
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:  # an int beyond 64 bits: orjson does not read it (pydantic does)
        return
    assert fast_record(data) is None  # never taken by the fast path


def test_every_poison_value_is_dead_lettered_and_never_a_row_on_both_paths() -> None:
    values = [v for _c, v, _f in POISON]
    for builder in builders():
        tables, dead = build(builder, values)
        assert [d.offset for d in dead] == list(range(len(values))), type(builder).__name__
        assert all(d.reason == "invalid-event" for d in dead)
        assert all(len(next(iter(cols.values()))) == 0 for cols in tables.values()), type(builder).__name__


def test_a_poison_value_between_valid_ones_takes_only_its_own_place() -> None:
    valid = [serialize_event(e) for e in call_events(EventFactory(), tenant="acme", queue="q", start=T0, agent="a")]
    values: list[bytes] = []
    for i, v in enumerate(valid):
        values += [v, POISON[(i * 37) % len(POISON)][1]]
    results = [build(b, values) for b in builders()]
    for tables, dead in results:
        assert [d.offset for d in dead] == list(range(1, len(values), 2))
        assert len(tables["events_raw"]["event_id"]) == len(valid)
    assert results[0][0] == results[1][0]  # the same rows natively


@pytest.mark.parametrize(("case", "value"), EDGES, ids=[c for c, _v in EDGES])
def test_edge_values_stay_valid_and_fast(case: str, value: bytes) -> None:
    rec = fast_record(orjson.loads(value))
    assert rec is not None, case
    out = decode(value, origin="sink", topic="x", partition=0, offset=0)
    assert isinstance(out, dict)
    assert {k: v for k, v in out.items() if k != "payload_json"} == {k: v for k, v in rec.items()}


def test_edge_values_become_the_same_rows_on_both_paths() -> None:
    values = [v for _c, v in EDGES]
    results = [build(b, values) for b in builders()]
    for tables, dead in results:
        assert dead == []
        raw = tables["events_raw"]
        assert len(raw["event_id"]) == len(values)
        assert {0, UTC_MS_MAX_EPOCH_MS} <= set(raw["occurred_at"])
        assert 255 in raw["schema_version"] and 2**64 - 1 in raw["source_sequence"]
        assert min(raw["occurred_at"]) >= 0 and max(raw["occurred_at"]) <= UTC_MS_MAX_EPOCH_MS
    py, nat = results[0][0], results[1][0]
    for table in TABLES:
        assert py[table] == nat[table], table
