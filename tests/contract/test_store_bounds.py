"""The contract holds only what the store can hold: ints and instants that fit their ClickHouse columns.

``events_raw.schema_version`` is UInt8, ``source_sequence`` UInt64, and every contract timestamp may
land in a DateTime64(3) column (UInt64 epoch ms on ClickHouse 18.16): 1970-01-01T00:00:00.000Z ..
2299-12-31T23:59:59.999Z. A value outside is a validation error (a dead letter in the sink), never
an insert that fails batch after batch.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from ccod_fs.contract import Source, datetime_from_us, fs_event_id, parse_event, serialize_event
from ccod_fs.contract.envelope import (
    EVENT_SEQUENCE_MAX,
    SCHEMA_VERSION_MAX,
    UTC_MS_MAX,
    UTC_MS_MAX_EPOCH_MS,
    UTC_MS_MIN,
    UTC_MS_MIN_EPOCH_MS,
)
from ccod_fs.contract.events import CallAnswered, CallEnded, occurred_ms

AT = datetime(2026, 11, 25, 17, 59, 4, 45000, tzinfo=UTC)
RANGE_MSG = "1970-01-01T00:00:00.000Z .. 2299-12-31T23:59:59.999Z"


def _answered_json(**over: Any) -> dict[str, Any]:
    event = CallAnswered.model_validate({
        "event_id": fs_event_id("core", 7), "tenant_id": "acme", "occurred_at": AT,
        "source": Source(service="esl-ingest", node="fs1", core_uuid="core", event_sequence=7), "call_id": "c1",
        "payload": {"queue": "q", "agent": "a1", "joined_at": AT, "called_at": AT, "answered_at": AT},
    })
    data: dict[str, Any] = json.loads(serialize_event(event))
    for key, value in over.items():
        if key.startswith("payload."):
            data["payload"][key.removeprefix("payload.")] = value
        elif key.startswith("source."):
            data["source"][key.removeprefix("source.")] = value
        else:
            data[key] = value
    return data


def test_the_bounds_are_the_columns() -> None:
    assert SCHEMA_VERSION_MAX == 2**8 - 1 and EVENT_SEQUENCE_MAX == 2**64 - 1
    assert (UTC_MS_MIN_EPOCH_MS, UTC_MS_MAX_EPOCH_MS) == (occurred_ms(UTC_MS_MIN), occurred_ms(UTC_MS_MAX))
    assert UTC_MS_MAX == datetime(2300, 1, 1, tzinfo=UTC) - timedelta(milliseconds=1)


@pytest.mark.parametrize(("over", "field"), [
    ({"schema_version": 256}, "schema_version"),
    ({"schema_version": 10**6}, "schema_version"),
    ({"source.event_sequence": 2**64}, "event_sequence"),
    ({"source.event_sequence": 2**70}, "event_sequence"),
])
def test_ints_beyond_their_column_are_rejected(over: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match="less than or equal to") as err:
        parse_event(json.dumps(_answered_json(**over)))
    assert field in str(err.value)


@pytest.mark.parametrize("key", ["occurred_at", "payload.answered_at", "payload.joined_at", "payload.called_at"])
@pytest.mark.parametrize("value", [
    "1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999999Z", "1900-01-01T00:00:00Z", "0001-01-01T00:00:00Z",
    "2300-01-01T00:00:00Z", "2300-01-01T00:00:00.000+00:00", "9999-12-31T23:59:59.999999Z",
    "2299-12-31T23:00:00-01:00", "1970-01-01T00:59:59.999+01:00",
    "9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00",  # beyond datetime once in UTC (no OverflowError)
    -1, -1.5, 10_413_792_000, -(10**12),  # unix seconds/ms pydantic reads as datetimes
])
def test_instants_outside_the_store_range_are_rejected(key: str, value: Any) -> None:
    with pytest.raises(ValidationError) as err:
        parse_event(json.dumps(_answered_json(**{key: value})))
    assert key.rsplit(".", 1)[-1] in str(err.value) and RANGE_MSG in str(err.value)


@pytest.mark.parametrize(("value", "ms"), [
    ("1970-01-01T00:00:00Z", 0), ("1970-01-01T00:00:00.000999Z", 0), ("1970-01-01T01:00:00+01:00", 0),
    ("2299-12-31T23:59:59.999Z", UTC_MS_MAX_EPOCH_MS), ("2299-12-31T23:59:59.999999Z", UTC_MS_MAX_EPOCH_MS),
    ("2299-12-31T22:59:59.999-01:00", UTC_MS_MAX_EPOCH_MS), (0, 0),
])
def test_instants_at_the_edges_are_valid(value: Any, ms: int) -> None:
    event = parse_event(json.dumps(_answered_json(occurred_at=value, **{"payload.answered_at": value})))
    assert isinstance(event, CallAnswered)
    assert occurred_ms(event.occurred_at) == occurred_ms(event.payload.answered_at) == ms


def test_ints_at_the_edges_are_valid() -> None:
    event = parse_event(json.dumps(_answered_json(schema_version=255, **{"source.event_sequence": 2**64 - 1})))
    assert (event.schema_version, event.source.event_sequence) == (255, 2**64 - 1)
    assert parse_event(serialize_event(event)) == event


def test_models_built_in_process_are_bounded_too() -> None:
    with pytest.raises(ValidationError, match="2299-12-31"):
        CallEnded.model_validate({
            "event_id": fs_event_id("c", 1), "tenant_id": "acme", "occurred_at": AT, "source": {"service": "x"},
            "payload": {"leg_uuid": "l", "leg_role": "caller", "direction": "inbound", "hangup_cause": "X",
                        "ended_at": AT, "created_at": datetime(1969, 12, 31, 23, 59, tzinfo=UTC), "duration_ms": 1},
        })
    with pytest.raises(ValidationError, match="event_sequence"):
        Source(service="x", event_sequence=2**64)


def test_freeswitch_times_stay_valid() -> None:
    """The ingest's timestamps: epoch microseconds from FreeSWITCH, recent (or 0 for 'never')."""
    for us in (0, 1_764_093_544_045_727, 1_900_000_000_000_000):
        at = datetime_from_us(us)
        event = CallAnswered.model_validate({
            "event_id": fs_event_id("c", 1), "tenant_id": "acme", "occurred_at": at, "source": {"service": "x"},
            "payload": {"queue": "q", "agent": "a", "answered_at": at, "joined_at": at},
        })
        assert occurred_ms(event.occurred_at) == us // 1000
    tz = timezone(timedelta(hours=-5))
    assert CallAnswered.model_validate({
        "event_id": fs_event_id("c", 1), "tenant_id": "acme", "occurred_at": datetime(1969, 12, 31, 19, tzinfo=tz),
        "source": {"service": "x"}, "payload": {"queue": "q", "agent": "a", "answered_at": AT},
    }).occurred_at == UTC_MS_MIN
