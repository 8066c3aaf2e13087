"""Native twin of :class:`ccod_fs.ingest.normalize.Normalizer` for ``text/event-json`` bodies."""

from collections.abc import Mapping
from typing import Any

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
    @property
    def last_seen(self) -> tuple[str | None, str, int] | None: ...
    def state_snapshot(self) -> dict[str, Any]: ...
    def restore(self, snapshot: Mapping[str, Any]) -> None: ...
