"""Native twin of :class:`ccod_fs.ingest.normalize.Normalizer` for ``text/event-json`` bodies."""

from collections.abc import Mapping
from typing import Any, TypeAlias

from ccod_fs.esl.errors import FrameError
from ccod_fs.esl.frames import Frame

Normalized: TypeAlias = list[tuple[str, bytes]]
FeedItem: TypeAlias = Normalized | tuple[Frame, Exception] | Frame | FrameError

class Normalizer:
    def __init__(
        self,
        node: str | None = None,
        system_tenant: str = "system",
        agent_tenants: dict[str, str] | None = None,
        domain_tenants: dict[str, str] | None = None,
        domain_is_tenant: bool = False,
        ended_leg_retention: int = 20000,
    ) -> None: ...
    def normalize_json(self, body: bytes) -> list[tuple[str, bytes]]:
        """(tenant_id, ``serialize_event`` bytes) per canonical event of one event-json body.

        Raises ``EslDecodeError`` / ``NormalizeError`` (and ``TypeError``) exactly as
        ``decode_json_body`` + ``Normalizer.normalize`` do."""
    def feed(self, data: bytes) -> list[FeedItem]:
        """``FrameParser.feed`` + ``normalize_json`` per ``text/event-json`` frame, in stream order: the
        normalized list, or ``(frame, exception)`` when it raised; every other frame as a ``Frame``; then
        this read's ``FrameError``s (what ``FrameParser.take_errors()`` would return)."""
    def finish(self) -> list[FrameError]:
        """``FrameParser.finish()``: the ``truncated-frame`` error of a half-read frame, if any."""
    def take_sequence_anomalies(self) -> list[tuple[str, str]]:
        """``(kind, Event-Sequence)`` per anomaly ``SequenceWatch.observe`` would report ("core-change",
        "regression"), in stream order, since the last call (drained).

        Every ``text/event-json`` body that decodes is observed before it is normalized, through
        ``feed()`` and ``normalize_json()`` alike, also when it then raises ``NormalizeError``; one that
        raises ``EslDecodeError`` is not. Values are read as ``EslEvent.get()`` returns them."""
    @property
    def sequence_core_uuid(self) -> str | None:
        """``SequenceWatch.core_uuid``"""
    @property
    def sequence_last(self) -> int:
        """``SequenceWatch.last`` (-1 before the first observed sequence)"""
    @property
    def sequence_skipped(self) -> int:
        """``SequenceWatch.skipped``: sequence numbers jumped over"""
    @property
    def last_event_timestamp(self) -> str | None:
        """The raw ``Event-Date-Timestamp`` (``event.get()``) of the newest decoded event-json body
        that had one (normalized or raising alike); None before any."""
    @property
    def last_seen(self) -> tuple[str | None, str, int] | None: ...
    def state_snapshot(self) -> dict[str, Any]: ...
    def restore(self, snapshot: Mapping[str, Any]) -> None: ...

# ---- the sink's native decoder (native/src/sink/) ----------------------------------------------

class SinkSchema:
    """The contract's event models (``ccod_fs.sink.native_spec.event_specs()``), checked against
    the row layout it derives (``rows.TABLES`` and the fact columns per call event type)."""

    def __init__(
        self,
        events: dict[str, list[tuple[Any, ...]]],
        tables: dict[str, list[str]],
        facts: dict[str, list[str]],
    ) -> None: ...

class SinkRows:
    """The rows of one sink batch (``decode_run`` + ``RowBuilder`` natively)."""

    def __init__(self, schema: SinkSchema) -> None: ...
    @property
    def events(self) -> int:
        """Records added, duplicates included."""
    def add_run(self, values: list[bytes | None], start: int) -> int:
        """Adds ``values[start:]`` up to the first value not provably valid; returns its index
        (``len(values)``: all added). The GIL is released while decoding."""
    def add_rows(
        self,
        event_id: str,
        raw: tuple[Any, ...],
        group: str | None = None,
        fixed: tuple[Any, ...] | None = None,
        facts: tuple[Any, ...] | None = None,
        agent: tuple[Any, ...] | None = None,
    ) -> None:
        """The rows ``rows.record_rows`` derived for a record decoded in Python (deduplicated)."""
    def finish(self) -> tuple[int, dict[str, dict[str, list[Any]]]]:
        """``(events, RowBatch.tables)``; ends this builder."""

def encode_column(type_name: str, values: list[Any]) -> bytes | None:
    """The bytes clickhouse-driver's ``write_column`` writes for this column (state prefix and
    data) for (U)Int8..64, String, UUID text, DateTime64 ints, their Nullable forms and
    LowCardinality(String / Nullable(String)); None for anything it leaves to the driver."""
