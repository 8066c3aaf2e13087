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
    @property
    def last_seen(self) -> tuple[str | None, str, int] | None: ...
    def state_snapshot(self) -> dict[str, Any]: ...
    def restore(self, snapshot: Mapping[str, Any]) -> None: ...

