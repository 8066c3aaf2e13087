"""Synthetic canonical events with exactly known timings: ground truth for tests and benchmarks.

One call = offered -> queued -> (agent offered -> answered -> [hold/unhold] -> agent ended)
or (dequeued abandoned/timeout) -> caller leg ended. Agents' state changes are emitted
around an answered call (In a queue call, After Call Work, Waiting) so ACW is measurable.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ccod_fs.contract.envelope import Envelope, Source, fs_event_id
from ccod_fs.contract.events import (
    AgentStateChanged,
    AgentStatusChanged,
    CallAgentEnded,
    CallAgentOffered,
    CallAnswered,
    CallDequeued,
    CallEnded,
    CallHold,
    CallOffered,
    CallQueued,
)


def _ms(n: int) -> timedelta:
    return timedelta(milliseconds=n)


@dataclass
class EventFactory:
    """Builds envelopes with deterministic ids (node core uuid + sequence), like the ingest does."""

    node: str = "fs1"
    core_uuid: str = "00000000-0000-4000-8000-000000000001"
    _seq: Any = None

    def __post_init__(self) -> None:
        self._seq = itertools.count(1)

    def make(self, cls: type[Envelope], *, tenant: str, at: datetime, call_id: str | None = None,
             agent_id: str | None = None, queue_id: str | None = None, **payload: Any) -> Envelope:
        seq = next(self._seq)
        payload_cls: Any = cls.model_fields["payload"].annotation
        return cls(  # type: ignore[call-arg]  # concrete event classes add ``payload``
            event_id=fs_event_id(self.core_uuid, seq),
            tenant_id=tenant,
            occurred_at=at,
            source=Source(service="esl-ingest", node=self.node, core_uuid=self.core_uuid, event_sequence=seq),
            call_id=call_id,
            agent_id=agent_id,
            queue_id=queue_id,
            payload=payload_cls(**payload),
        )


def call_events(f: EventFactory, *, tenant: str, queue: str, start: datetime, call_id: str | None = None,
                agent: str | None = None, wait_ms: int = 10_000, ring_ms: int = 3_000, talk_ms: int = 60_000,
                holds: tuple[tuple[int, int], ...] = (), acw_ms: int | None = None,
                outcome: str = "answered", ivr_ms: int = 2_000, codec: str = "PCMA",
                hangup_cause: str = "NORMAL_CLEARING", caller: str = "+4930123456") -> list[Envelope]:
    """Events of one call. ``talk_ms`` is the whole bridge (hold included, as FreeSWITCH counts it);
    ``holds`` are (offset from answer, duration) pairs in ms; ``acw_ms`` emits agent state changes."""
    cid = call_id or str(uuid.uuid4())
    common: dict[str, Any] = {"tenant": tenant, "call_id": cid}
    queued = start + _ms(ivr_ms)
    evs: list[Envelope] = [
        f.make(CallOffered, at=start, **common, caller_number=caller, destination="+498001234"),
        f.make(CallQueued, at=queued, queue_id=queue, **common, queue=queue, joined_at=queued),
    ]
    if outcome == "answered":
        assert agent is not None, "an answered call needs an agent"
        answered = queued + _ms(wait_ms)
        offered = answered - _ms(ring_ms)
        ended = answered + _ms(talk_ms)
        evs += [
            f.make(CallAgentOffered, at=offered, queue_id=queue, agent_id=agent, **common, queue=queue, agent=agent),
            f.make(CallAnswered, at=answered, queue_id=queue, agent_id=agent, **common, queue=queue, agent=agent,
                   joined_at=queued, called_at=offered, answered_at=answered, wait_ms=wait_ms, ring_ms=ring_ms),
            f.make(CallDequeued, at=answered, queue_id=queue, **common, queue=queue, outcome="answered",
                   joined_at=queued, left_at=answered, wait_ms=wait_ms, agent=agent),
        ]
        for off, dur in holds:
            evs.append(f.make(CallHold, at=answered + _ms(off), **common, held=True))
            evs.append(f.make(CallHold, at=answered + _ms(off + dur), **common, held=False))
        evs.append(f.make(CallAgentEnded, at=ended, queue_id=queue, agent_id=agent, **common, queue=queue,
                          agent=agent, answered_at=answered, ended_at=ended, talk_ms=talk_ms,
                          hangup_cause=hangup_cause))
        if acw_ms is not None:
            evs += agent_states(f, tenant=tenant, agent=agent, at=answered, states=(
                ("In a queue call", 0), ("After Call Work", talk_ms), ("Waiting", talk_ms + acw_ms)))
        end_at, billable = ended, talk_ms
    else:
        left = queued + _ms(wait_ms)
        evs.append(f.make(CallDequeued, at=left, queue_id=queue, **common, queue=queue, outcome=outcome,
                          joined_at=queued, left_at=left, wait_ms=wait_ms))
        end_at, billable = left, 0
    evs.append(f.make(CallEnded, at=end_at, **common, leg_uuid=cid, leg_role="caller", direction="inbound",
                      hangup_cause=hangup_cause, created_at=start, answered_at=start, ended_at=end_at,
                      duration_ms=int((end_at - start).total_seconds() * 1000),
                      billable_ms=billable, caller_number=caller, destination="+498001234",
                      read_codec=codec, write_codec=codec, codec_rate=8000))
    return evs


def agent_states(f: EventFactory, *, tenant: str, agent: str, at: datetime,
                 states: tuple[tuple[str, int], ...], kind: str = "state") -> list[Envelope]:
    """agent.state_changed (or status_changed) at ``at + offset`` for each (value, offset ms)."""
    out: list[Envelope] = []
    previous: str | None = None
    for value, off in states:
        if kind == "state":
            out.append(f.make(AgentStateChanged, tenant=tenant, agent_id=agent, at=at + _ms(off), state=value,
                              previous=previous))
        else:
            out.append(f.make(AgentStatusChanged, tenant=tenant, agent_id=agent, at=at + _ms(off), status=value,
                              previous=previous))
        previous = value
    return out
