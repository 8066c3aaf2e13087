"""Kafka record value -> validated record, or a dead letter saying why not (pure).

Fast path: orjson + the compiled checks of :mod:`ccod_fs.sink.fastcheck`, which only accept
what the contract models accept. Anything else is validated by the pydantic models, which
decide: valid (coerced the contract's way) or a dead letter with pydantic's reason.
"""

from __future__ import annotations

import orjson
from pydantic import ValidationError

from ccod_fs.contract.deadletter import DeadLetter
from ccod_fs.contract.events import parse_event
from ccod_fs.sink.fastcheck import Record, fast_record
from ccod_fs.sink.rows import model_record

STAGE = "sink-validate"
_dumps = orjson.dumps


def decode(value: bytes | None, *, origin: str, topic: str, partition: int, offset: int) -> Record | DeadLetter:
    """Validate one record value; never raises on bad input."""
    if not value:
        return DeadLetter.of(stage=STAGE, reason="empty-record", detail="record has no value", origin=origin,
                             raw=b"", topic=topic, partition=partition, offset=offset)
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        data = None  # pydantic's parser decides and explains
    rec = fast_record(data) if data is not None else None
    if rec is not None:
        rec["payload_json"] = _dumps(data["payload"]).decode("utf-8")
        return rec
    try:
        return model_record(parse_event(value))
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        reason = "invalid-json" if any(e.get("type") == "json_invalid" for e in errors) else "invalid-event"
        return DeadLetter.of(stage=STAGE, reason=reason, detail=str(exc), origin=origin, raw=value,
                             topic=topic, partition=partition, offset=offset)
    except (ValueError, UnicodeDecodeError) as exc:
        return DeadLetter.of(stage=STAGE, reason="invalid-json", detail=str(exc), origin=origin, raw=value,
                             topic=topic, partition=partition, offset=offset)
