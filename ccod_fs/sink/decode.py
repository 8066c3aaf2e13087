"""Kafka record value -> validated record, or a dead letter saying why not (pure).

Fast path: orjson + the compiled checks of :mod:`ccod_fs.sink.fastcheck`, which only accept
what the contract models accept. Anything else is validated by the pydantic models, which
decide: valid (coerced the contract's way) or a dead letter with pydantic's reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import orjson
from pydantic import ValidationError

from ccod_fs.contract.deadletter import DeadLetter
from ccod_fs.contract.events import parse_event
from ccod_fs.sink.fastcheck import CHECKS, Record, Reject, fast_record
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
    if type(data) is dict and type(data.get("payload")) is dict:
        payload_json = _dumps(data["payload"])  # before the check turns its timestamps into ms
        rec = fast_record(data)
        if rec is not None:
            rec["payload_json"] = payload_json.decode("utf-8")
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


def decode_run(values: Sequence[bytes | None], offsets: Sequence[int], *, add: Callable[[Record], None],
               dead: list[DeadLetter], origin: str, topic: str, partition: int) -> None:
    """Validate a run of record values into ``add`` (valid) or ``dead`` (dead letters).

    The batch form of :func:`decode`, with the fast path inlined (no per-record call into
    ``decode``/``fast_record``): same decisions, since whatever the compiled check does not
    prove valid still goes through :func:`decode` and pydantic.
    """
    loads = orjson.loads
    checks = CHECKS
    for value, offset in zip(values, offsets, strict=True):
        rec = None
        if value:
            try:
                data = loads(value)
            except orjson.JSONDecodeError:
                data = None
            if type(data) is dict:
                kind = data.get("type")
                check = checks.get(kind) if type(kind) is str else None
                payload = data.get("payload")
                if check is not None and type(payload) is dict:
                    payload_json = _dumps(payload)  # before the check turns its timestamps into ms
                    try:
                        rec = check(data)
                    except Reject:
                        rec = None
        if rec is not None:
            rec["payload_json"] = payload_json.decode("utf-8")
            add(rec)
            continue
        item = decode(value, origin=origin, topic=topic, partition=partition, offset=offset)
        if isinstance(item, DeadLetter):
            dead.append(item)
        else:
            add(item)
