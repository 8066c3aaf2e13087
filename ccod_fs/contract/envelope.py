"""The one envelope every ccod-fs event travels in, on every topic.

The envelope is the public contract: FreeSWITCH header names never leak into it.
``event_id`` is the idempotency key downstream (Kafka consumers, ClickHouse
ReplacingMergeTree, webhook dedupe); for events derived from FreeSWITCH it is a
UUIDv5 of (Core-UUID, Event-Sequence, index) so re-ingesting the same ESL event
always yields the same id.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

# Namespace for deterministic event ids (UUIDv5); never change it.
EVENT_ID_NAMESPACE = uuid.UUID("6f1d3c2e-8a4b-5c6d-9e0f-1a2b3c4d5e6f")


# What the store holds: DateTime64(3) columns (UInt64 epoch ms on ClickHouse 18.16) take no
# instant before the epoch, and DateTime64 ends in 2299. An event outside is invalid (a dead
# letter), never an insert that fails forever.
UTC_MS_MIN = datetime(1970, 1, 1, tzinfo=UTC)
UTC_MS_MAX = datetime(2299, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC)
UTC_MS_MIN_EPOCH_MS = 0
UTC_MS_MAX_EPOCH_MS = 10_413_791_999_999  # UTC_MS_MAX in epoch milliseconds
SCHEMA_VERSION_MAX = 255  # events_raw.schema_version is UInt8
EVENT_SEQUENCE_MAX = 2**64 - 1  # events_raw.source_sequence is UInt64

_OUT_OF_RANGE = "timestamp must be within 1970-01-01T00:00:00.000Z .. 2299-12-31T23:59:59.999Z (the store's range)"


def _to_utc_ms(value: datetime) -> datetime:
    """Normalise to timezone-aware UTC with millisecond precision (the contract's grain), within the store's range."""
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware (UTC)")
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00:00-05:00: beyond any datetime, so beyond the range
        raise ValueError(_OUT_OF_RANGE) from None
    value = value.replace(microsecond=(value.microsecond // 1000) * 1000)
    if not UTC_MS_MIN <= value <= UTC_MS_MAX:
        raise ValueError(_OUT_OF_RANGE)
    return value


UtcMs = Annotated[datetime, AfterValidator(_to_utc_ms)]
"""A UTC timestamp truncated to milliseconds, within [UTC_MS_MIN, UTC_MS_MAX]."""

TenantId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


def fs_event_id(core_uuid: str, event_sequence: int, index: int = 0) -> uuid.UUID:
    """Deterministic id of the ``index``-th canonical event derived from one ESL event."""
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{core_uuid}:{event_sequence}:{index}")


def datetime_from_us(epoch_us: int) -> datetime:
    """FreeSWITCH ``Event-Date-Timestamp`` / ``CC-*-Time`` style epoch microseconds -> UTC ms."""
    return datetime.fromtimestamp((epoch_us // 1000) / 1000, tz=UTC)


class Source(BaseModel):
    """Where an event came from: the FreeSWITCH node and the service that emitted it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service: str = Field(description="ccod-fs service that emitted the event (esl-ingest, router, ...)")
    node: str | None = Field(default=None, description="FreeSWITCH node (FreeSWITCH-Switchname) the event is about")
    core_uuid: str | None = Field(default=None, description="FreeSWITCH Core-UUID (changes on every restart)")
    event_sequence: int | None = Field(
        default=None, ge=0, le=EVENT_SEQUENCE_MAX, description="FreeSWITCH Event-Sequence: per-core, totally ordered"
    )


class Envelope(BaseModel):
    """Fields common to every event; concrete events narrow ``type`` and ``payload``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID = Field(description="stable idempotency key")
    type: str = Field(description="event type, e.g. call.queued")
    schema_version: int = Field(default=SCHEMA_VERSION, ge=1, le=SCHEMA_VERSION_MAX)
    tenant_id: TenantId
    occurred_at: UtcMs = Field(
        description="when it happened, UTC, millisecond precision; every contract timestamp lies within "
        "1970-01-01T00:00:00.000Z .. 2299-12-31T23:59:59.999Z"
    )
    source: Source
    call_id: str | None = Field(default=None, description="the caller leg's UUID, shared by all legs of a call")
    agent_id: str | None = None
    queue_id: str | None = None
