"""The event contract: envelope, typed events, topics, dead letters. Source of truth for schemas/."""

from ccod_fs.contract.deadletter import DeadLetter
from ccod_fs.contract.envelope import SCHEMA_VERSION, Envelope, Source, datetime_from_us, fs_event_id
from ccod_fs.contract.events import EVENT_CLASSES, EVENT_TYPES, parse_event, serialize_event

__all__ = [
    "EVENT_CLASSES",
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "DeadLetter",
    "Envelope",
    "Source",
    "datetime_from_us",
    "fs_event_id",
    "parse_event",
    "serialize_event",
]
