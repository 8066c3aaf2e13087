"""Building canonical envelopes for one ESL event, without pydantic validation.

The normalizer has already checked every value it puts in (tenant ids against
the contract's rule, timestamps in range, durations clamped to >= 0), so
re-validating through pydantic would only cost time on the ingest hot path.
:func:`construct` does what ``BaseModel.model_construct`` does, minus its
per-field loop; a test pins it to ``model_construct`` so a pydantic upgrade
that changes model internals fails loudly instead of emitting broken events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from ccod_fs.contract.envelope import SCHEMA_VERSION, Envelope, Source, datetime_from_us, fs_event_id

SERVICE = "esl-ingest"

M = TypeVar("M", bound=BaseModel)

_new = object.__new__
_set = object.__setattr__
_DEFAULTS: dict[type[BaseModel], dict[str, Any]] = {}
_TYPES: dict[type[Envelope], str] = {}
_MISSING: Any = object()  # a required field left out fails loudly at serialization


def _template(cls: type[BaseModel]) -> dict[str, Any]:
    """Every field in declaration order (pydantic serializes ``__dict__`` in its order), with defaults."""
    found = _DEFAULTS.get(cls)
    if found is None:
        found = _DEFAULTS[cls] = {
            name: (_MISSING if field.is_required() else field.get_default(call_default_factory=True))
            for name, field in cls.model_fields.items()
        }
    return found


def construct(cls: type[M], values: dict[str, Any]) -> M:
    """A model instance from already-valid values (unset optional fields take their defaults)."""
    fields = _template(cls).copy()
    fields.update(values)  # keeps declaration order for known keys
    model = _new(cls)
    _set(model, "__dict__", fields)
    _set(model, "__pydantic_fields_set__", set(values))
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model


class EventBuilder:
    """Collects the canonical events derived from one ESL event (index = position)."""

    __slots__ = ("core_uuid", "occurred_at", "out", "sequence", "source", "ts_us")

    def __init__(self, node: str | None, core_uuid: str, sequence: int, ts_us: int) -> None:
        self.core_uuid = core_uuid
        self.sequence = sequence
        self.ts_us = ts_us
        self.occurred_at = datetime_from_us(ts_us)
        self.source = construct(
            Source, {"service": SERVICE, "node": node, "core_uuid": core_uuid, "event_sequence": sequence}
        )
        self.out: list[Envelope] = []

    def add(
        self,
        cls: type[Envelope],
        payload: BaseModel,
        tenant: str,
        call_id: str | None = None,
        agent_id: str | None = None,
        queue_id: str | None = None,
        occurred_at: datetime | None = None,
    ) -> None:
        out = self.out
        type_ = _TYPES.get(cls)
        if type_ is None:
            type_ = _TYPES[cls] = cls.model_fields["type"].default
        out.append(
            construct(
                cls,
                {
                    "event_id": fs_event_id(self.core_uuid, self.sequence, len(out)),
                    "type": type_,
                    "schema_version": SCHEMA_VERSION,
                    "tenant_id": tenant,
                    "occurred_at": occurred_at or self.occurred_at,
                    "source": self.source,
                    "call_id": call_id,
                    "agent_id": agent_id,
                    "queue_id": queue_id,
                    "payload": payload,
                },
            )
        )
