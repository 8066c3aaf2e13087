"""Kafka record value -> validated event, or a dead letter saying why not (pure)."""

from __future__ import annotations

from pydantic import ValidationError

from ccod_fs.contract.deadletter import DeadLetter
from ccod_fs.contract.envelope import Envelope
from ccod_fs.contract.events import parse_event

STAGE = "sink-validate"


def decode(value: bytes | None, *, origin: str, topic: str, partition: int, offset: int) -> Envelope | DeadLetter:
    """Validate one record with the contract models; never raises on bad input."""
    if not value:
        return DeadLetter.of(stage=STAGE, reason="empty-record", detail="record has no value", origin=origin,
                             raw=b"", topic=topic, partition=partition, offset=offset)
    try:
        return parse_event(value)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        json_error = any(e.get("type") == "json_invalid" for e in errors)
        reason = "invalid-json" if json_error else "invalid-event"
        return DeadLetter.of(stage=STAGE, reason=reason, detail=str(exc), origin=origin, raw=value,
                             topic=topic, partition=partition, offset=offset)
    except (ValueError, UnicodeDecodeError) as exc:
        return DeadLetter.of(stage=STAGE, reason="invalid-json", detail=str(exc), origin=origin, raw=value,
                             topic=topic, partition=partition, offset=offset)
