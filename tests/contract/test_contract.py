"""The event contract: schemas match the models, events round-trip, bad events are rejected."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from ccod_fs.contract import EVENT_TYPES, Source, fs_event_id, parse_event, serialize_event
from ccod_fs.contract.events import CallAnswered, CallQueued
from ccod_fs.contract.schema_export import SCHEMA_DIR, render_schemas


def test_checked_in_schemas_match_the_models() -> None:
    rendered = render_schemas()
    on_disk = {p.name: p.read_text() for p in SCHEMA_DIR.glob("*.json")}
    assert set(on_disk) == set(rendered), "run `ccod-fs schemas` to regenerate schemas/events"
    drifted = [name for name, text in rendered.items() if on_disk[name] != text]
    assert drifted == [], f"schemas drifted from the models: {drifted}; run `ccod-fs schemas`"


def test_every_event_type_has_a_schema_with_its_literal_type() -> None:
    for type_name in EVENT_TYPES:
        schema = json.loads((SCHEMA_DIR / f"{type_name}.v1.json").read_text())
        assert schema["properties"]["type"]["const"] == type_name


def _queued(**over: object) -> CallQueued:
    base: dict[str, object] = {
        "event_id": fs_event_id("core", 42),
        "tenant_id": "acme",
        "occurred_at": datetime(2026, 11, 25, 17, 59, 4, 45727, tzinfo=UTC),
        "source": Source(service="esl-ingest", node="fs1", core_uuid="core", event_sequence=42),
        "call_id": "c1",
        "queue_id": "support",
        "payload": {"queue": "support"},
    }
    base.update(over)
    return CallQueued.model_validate(base)


def test_round_trip_keeps_millisecond_utc_time() -> None:
    event = _queued()
    assert event.occurred_at == datetime(2026, 11, 25, 17, 59, 4, 45000, tzinfo=UTC)
    wire = serialize_event(event)
    assert b'"occurred_at":"2026-11-25T17:59:04.045000Z"' in wire
    back = parse_event(wire)
    assert isinstance(back, CallQueued) and back == event


def test_offset_timestamps_are_normalised_to_utc() -> None:
    tz = timezone(timedelta(hours=2))
    event = _queued(occurred_at=datetime(2026, 11, 25, 19, 0, 0, 123456, tzinfo=tz))
    assert event.occurred_at == datetime(2026, 11, 25, 17, 0, 0, 123000, tzinfo=UTC)


def test_naive_timestamps_are_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        _queued(occurred_at=datetime(2026, 11, 25, 17, 0, 0))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(type="call.nope"),
        lambda d: d.update(tenant_id=""),
        lambda d: d.update(tenant_id="acme corp"),
        lambda d: d["payload"].pop("queue"),
        lambda d: d.update(extra_field=1),
        lambda d: d.update(event_id="not-a-uuid"),
    ],
)
def test_invalid_events_are_rejected(mutate: object) -> None:
    data = json.loads(serialize_event(_queued()))
    mutate(data)  # type: ignore[operator]
    with pytest.raises(ValidationError):
        parse_event(json.dumps(data))


def test_fs_event_ids_are_deterministic_and_distinct() -> None:
    assert fs_event_id("a", 1) == fs_event_id("a", 1)
    ids = {fs_event_id("a", 1), fs_event_id("a", 2), fs_event_id("b", 1), fs_event_id("a", 1, 1)}
    assert len(ids) == 4
    assert all(isinstance(i, uuid.UUID) for i in ids)


def test_answered_payload_rejects_negative_wait() -> None:
    with pytest.raises(ValidationError):
        CallAnswered.model_validate(
            {
                "event_id": fs_event_id("c", 1),
                "tenant_id": "acme",
                "occurred_at": datetime.now(UTC),
                "source": {"service": "esl-ingest"},
                "payload": {"queue": "q", "agent": "1000", "answered_at": datetime.now(UTC), "wait_ms": -1},
            }
        )
