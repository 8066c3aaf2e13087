"""serialize_event's orjson path writes exactly the bytes pydantic's ``to_json`` writes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ccod_fs.contract.envelope import Source
from ccod_fs.contract.events import (
    _ORJSON_EVENTS,
    EVENT_CLASSES,
    CallAgentFailed,
    CallAgentFailedPayload,
    parse_event,
    serialize_event,
)
from ccod_fs.esl.decode import decode_capture
from ccod_fs.ingest.normalize import NormalizeError, Normalizer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "freeswitch"


def test_every_catalogue_event_takes_the_fast_path() -> None:
    assert set(EVENT_CLASSES) == _ORJSON_EVENTS


@pytest.mark.parametrize("name", ["esl-json-inbound-queue.raw", "esl-json-queue-edge-cases.raw",
                                  "esl-plain-queue-edge-cases.raw"])
def test_capture_events_serialize_like_pydantic(name: str) -> None:
    normalizer = Normalizer(node="n1")
    checked = 0
    for event in decode_capture(FIXTURES / name):
        try:
            items = normalizer.normalize(event)
        except NormalizeError:
            continue
        for item in items:
            data = serialize_event(item)
            assert data == item.__pydantic_serializer__.to_json(item)
            assert parse_event(data) == item
            checked += 1
    assert checked > 20


TEXTS = ["".join(map(chr, range(128))), "é漢字😀", "\u2028\u2029", 'a"b\\c/d', ""]
TIMES = [
    datetime(2026, 1, 1, tzinfo=UTC),
    datetime(2026, 1, 1, 0, 0, 0, 123000, tzinfo=UTC),
    datetime(2026, 1, 1, 0, 0, 0, 1),
    datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2))),
    datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC")),
    datetime(2026, 6, 1, tzinfo=ZoneInfo("Europe/Paris")),
]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("when", TIMES)
@pytest.mark.parametrize("number", [0, 5, 2**63, 2**70, None])
def test_odd_values_serialize_like_pydantic(text: str, when: datetime, number: int | None) -> None:
    payload = CallAgentFailedPayload.model_construct(
        queue=text, agent="a", hangup_cause=text, called_at=when, aborted_at=None, ring_ms=number
    )
    source = Source.model_construct(service=text, node=None, core_uuid="c", event_sequence=number)
    event = CallAgentFailed.model_construct(
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, text), tenant_id="t", occurred_at=when, source=source,
        payload=payload, call_id=text,
    )
    assert serialize_event(event) == event.__pydantic_serializer__.to_json(event, warnings=False)
