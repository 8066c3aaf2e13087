"""One node's normalizer state, served by the native core on the hot path.

``text/event-json`` frames (every event of a production ingest) go to
``ccod_fs_native.Normalizer`` through :mod:`ccod_fs.ingest.native_reader`: a Rust twin of
:class:`~ccod_fs.ingest.normalize.Normalizer` that frames, decodes, normalizes and serializes,
byte for byte what the Python path produces (``tests/ingest/test_native_parity.py`` holds the
two together on every capture, simulated streams and a mutation fuzz). The Python normalizer
stays the readable reference and serves the rare paths: ``text/event-plain`` events and the
reconnect resyncs, which run on it after the native state is copied over (the snapshot format
is shared) and copied back after.

Without the native package (a pip install without Rust) everything runs on the Python
reference, with the same output, at about a fifth of the rate; the service logs which one runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ccod_fs.contract.events import serialize_event
from ccod_fs.esl.event import EslEvent
from ccod_fs.ingest.normalize import Normalizer

Published = list[tuple[str, bytes]]
"""(tenant id, Kafka value) per canonical event, in emission order."""


class JsonNormalizer(Protocol):
    """What the native core offers (see ``native/ccod_fs_native.pyi``)."""

    def normalize_json(self, body: bytes) -> Published: ...

    def state_snapshot(self) -> dict[str, Any]: ...

    def restore(self, snapshot: dict[str, Any]) -> None: ...


def native_normalizer(reference: Normalizer, retention: int) -> JsonNormalizer | None:
    """The native twin configured like ``reference``, or None when the package is not installed."""
    try:
        import ccod_fs_native
    except ImportError:
        return None
    agents = reference.agents
    return ccod_fs_native.Normalizer(  # type: ignore[no-any-return]
        reference.node,
        system_tenant=reference.system_tenant,
        agent_tenants=dict(agents.agent_tenants) or None,
        domain_tenants=dict(agents.domain_tenants) or None,
        domain_is_tenant=agents.domain_is_tenant,
        ended_leg_retention=retention,
    )


class NodeNormalizer:
    """The normalizer of one FreeSWITCH node: its native twin (``native``, when built) reads the
    JSON frames; everything decoded in Python runs on the reference with the same state."""

    def __init__(self, reference: Normalizer, *, native: bool = True) -> None:
        self.reference = reference
        self.native = native_normalizer(reference, reference.book.retention) if native else None

    @property
    def engine(self) -> str:
        return "native" if self.native is not None else "python"

    def normalize_event(self, event: EslEvent) -> Published:
        """An already decoded event (``text/event-plain``): on the Python reference."""
        return self._on_reference(lambda: [(e.tenant_id, serialize_event(e)) for e in self.reference.normalize(event)])

    def resync(self, listing: str) -> Published:
        return self._on_reference(lambda: [(e.tenant_id, serialize_event(e)) for e in self.reference.resync(listing)])

    def resync_agents(self, listing: str) -> Published:
        return self._on_reference(
            lambda: [(e.tenant_id, serialize_event(e)) for e in self.reference.resync_agents(listing)])

    def _on_reference(self, run: Callable[[], Published]) -> Published:
        """Run on the Python reference with the native state (copied there and back, also on errors)."""
        if self.native is None:
            return run()
        self.reference.restore(self.native.state_snapshot())
        try:
            return run()
        finally:
            self.native.restore(self.reference.state_snapshot())

    def state_snapshot(self) -> dict[str, Any]:
        return self.native.state_snapshot() if self.native is not None else self.reference.state_snapshot()

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.reference.restore(snapshot)
        if self.native is not None:
            self.native.restore(snapshot)
