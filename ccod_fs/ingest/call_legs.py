"""Which call each FreeSWITCH leg belongs to, and which tenant owns that call.

Most ESL events say nothing about tenants: ``variable_*`` headers only ride on
a whitelist of events, and mod_callcenter's bare events (``agent-offering``,
``bridge-agent-fail``) carry only the member's session UUID. This book keeps
the little state needed to resolve them: leg UUID -> (call, role, tenant) and
call id -> tenant plus the queue times that make ms-precise KPIs possible.

A call id is the caller leg's UUID (or the outbound leg's, for an originate);
agent legs join it through ``cc_member_session_uuid``. Hung-up legs are kept
until ``retention`` more legs have ended, so late events (``bridge-agent-fail``
after the caller hung up, ``member-queue-end`` after ``CHANNEL_HANGUP_COMPLETE``)
still resolve and never re-offer the call; then they are forgotten oldest
first: memory stays bounded and eviction depends only on the event stream.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, fields
from typing import Any

CALLER = "caller"
AGENT = "agent"
OUTBOUND = "outbound"
OTHER = "other"


@dataclass(slots=True)
class Leg:
    uuid: str
    call_id: str
    role: str
    direction: str
    tenant: str | None = None
    offered: bool = False
    agent: str | None = None
    created_us: int | None = None
    ended: bool = False


@dataclass(slots=True)
class Call:
    call_id: str
    tenant: str
    joined_us: int | None = None
    answered_us: int | None = None
    hangup_by: str | None = None
    """Who ended the call, from the first leg whose far end hung up (caller/agent)."""
    agent: str | None = None  # the agent who answered it last (the one who can transfer it)


_LEG_FIELDS = tuple(f.name for f in fields(Leg))
_CALL_FIELDS = tuple(f.name for f in fields(Call))


class CallBook:
    """Legs and calls currently known on one FreeSWITCH node."""

    __slots__ = ("_ended", "calls", "legs", "retention")

    def __init__(self, retention: int = 20_000) -> None:
        self.legs: dict[str, Leg] = {}
        self.calls: dict[str, Call] = {}
        self.retention = retention
        self._ended: deque[str] = deque()

    def open_call(self, call_id: str, tenant: str) -> Call:
        call = self.calls.get(call_id)
        if call is None:
            call = self.calls[call_id] = Call(call_id, tenant)
        return call

    def end_leg(self, leg: Leg) -> None:
        """A leg hung up. Ended legs (and the call, with its owning leg) are forgotten
        only after ``retention`` further legs have ended, oldest first."""
        if leg.ended:
            return
        leg.ended = True
        self._ended.append(leg.uuid)
        while len(self._ended) > self.retention:
            gone = self.legs.pop(self._ended.popleft(), None)
            if gone is not None and gone.call_id == gone.uuid:
                self.calls.pop(gone.call_id, None)

    def snapshot(self) -> dict[str, Any]:
        return {
            "legs": [[getattr(g, name) for name in _LEG_FIELDS] for g in self.legs.values()],
            "calls": [[getattr(c, name) for name in _CALL_FIELDS] for c in self.calls.values()],
            "ended": list(self._ended),
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.legs = {row[0]: Leg(*row) for row in data.get("legs", ())}
        self.calls = {row[0]: Call(*row) for row in data.get("calls", ())}
        self._ended = deque(data.get("ended", ()))
