"""mod_callcenter ``CUSTOM callcenter::info`` events -> canonical call and agent events.

=======================================  =====================================================
CC-Action                                canonical event
=======================================  =====================================================
member-queue-start / member-queue-resume call.queued (``resumed``); call.offered first if
                                         the caller leg was not offered yet
agent-offering                           call.agent_offered
bridge-agent-fail                        call.agent_failed (``CC-Hangup-Cause``: NO_ANSWER,
                                         USER_BUSY, ORIGINATOR_CANCEL, ...)
bridge-agent-start                       call.answered (wait and ring ms)
bridge-agent-end                         call.agent_ended (talk ms)
member-queue-end                         call.dequeued: Terminated -> answered; Cancel +
                                         BREAK_OUT -> abandoned when the caller's channel is
                                         hanging up (else other: e.g. transferred out),
                                         TIMEOUT, NO_AGENT_TIMEOUT, EXIT_WITH_KEY; else other
agent-status-change / agent-state-change agent.status_changed / agent.state_changed
agent-contact-change                     nothing; teaches the agent's tenant
members-count, agent-add, ...            nothing
=======================================  =====================================================

Times: ``CC-*-Time`` headers are whole seconds, so KPIs use the µs times the
events also carry where possible: the agent leg's ``Caller-Channel-Created/
Answered/Hangup-Time`` (on bridge-agent-start/end) and the member-queue-start
event's own timestamp for the join. Without them (a restarted ingest with no
snapshot) the CC seconds are used. Every ``*_ms`` is the difference of the
ms-truncated timestamps it sits next to, so the numbers add up, and never < 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ccod_fs.contract.events import (
    AgentStateChanged,
    AgentStatePayload,
    AgentStatusChanged,
    AgentStatusPayload,
    CallAgentEnded,
    CallAgentEndedPayload,
    CallAgentFailed,
    CallAgentFailedPayload,
    CallAgentOffered,
    CallAgentOfferedPayload,
    CallAnswered,
    CallAnsweredPayload,
    CallDequeued,
    CallDequeuedPayload,
    CallQueued,
    CallQueuedPayload,
)
from ccod_fs.ingest.call_legs import Call
from ccod_fs.ingest.envelopes import EventBuilder, at, at_or_none, construct, span_ms
from ccod_fs.ingest.esl_values import Headers, checked, epoch_s_as_us, epoch_us, nonempty, text
from ccod_fs.ingest.normalize_error import NormalizeError

if TYPE_CHECKING:
    from ccod_fs.ingest.normalize import Normalizer

Action = Callable[["Normalizer", Headers, EventBuilder], None]

_CANCEL_OUTCOMES = {
    "BREAK_OUT": "abandoned",
    "TIMEOUT": "timeout",
    "NO_AGENT_TIMEOUT": "no_agent_timeout",
    "EXIT_WITH_KEY": "exit_with_key",
}


def _required(h: Headers, key: str) -> str:
    value = nonempty(h, key)
    if value is None:
        raise NormalizeError("missing-header", f"{h.get('CC-Action')} without {key}")
    return value




def _agent_leg_call(nz: Normalizer, h: Headers, b: EventBuilder) -> tuple[str, str, Call | None]:
    """(tenant, call_id, call) for bridge-agent-* events, which carry the agent leg's channel."""
    leg = nz.leg(h, b, offer=False)
    member = checked(h, "CC-Member-Session-UUID")  # a list is ignored, a number or an object is bad-header
    call = nz.book.calls.get(member) if type(member) is str else None
    if call is None:
        call = nz.book.calls.get(leg.call_id)
    if call is not None:
        return call.tenant, call.call_id, call
    return nz.call_tenant(leg), leg.call_id, None


def member_queue_start(nz: Normalizer, h: Headers, b: EventBuilder) -> None:
    leg = nz.leg(h, b)
    tenant = nz.call_tenant(leg)
    queue = _required(h, "CC-Queue")
    call = nz.book.open_call(leg.call_id, tenant)
    call.joined_us = b.ts_us
    call.answered_us = None
    payload = construct(
        CallQueuedPayload,
        {
            "queue": queue,
            "member_uuid": text(h, "CC-Member-UUID"),
            "caller_number": text(h, "CC-Member-CID-Number"),
            "caller_name": text(h, "CC-Member-CID-Name"),
            "joined_at": b.occurred_at,
            "resumed": h.get("CC-Action") == "member-queue-resume",
        },
    )
    b.add(CallQueued, payload, tenant, leg.call_id, queue_id=queue)


def agent_offering(nz: Normalizer, h: Headers, b: EventBuilder) -> None:
    call = nz.member_call(h)
    agent, queue = _required(h, "CC-Agent"), _required(h, "CC-Queue")
    payload = construct(
        CallAgentOfferedPayload, {"queue": queue, "agent": agent, "member_uuid": text(h, "CC-Member-UUID")}
    )
    b.add(CallAgentOffered, payload, call.tenant, call.call_id, agent, queue)


def bridge_agent_fail(nz: Normalizer, h: Headers, b: EventBuilder) -> None:
    call = nz.member_call(h)
    agent, queue = _required(h, "CC-Agent"), _required(h, "CC-Queue")
    called_us = epoch_s_as_us(h.get("CC-Agent-Called-Time"))
    aborted_us = epoch_s_as_us(h.get("CC-Agent-Aborted-Time"))
    payload = construct(
        CallAgentFailedPayload,
        {
            "queue": queue,
            "agent": agent,
            "hangup_cause": nonempty(h, "CC-Hangup-Cause") or "UNKNOWN",
            "called_at": at_or_none(called_us),
            "aborted_at": at_or_none(aborted_us),
            "ring_ms": span_ms(called_us, aborted_us),
        },
    )
    b.add(CallAgentFailed, payload, call.tenant, call.call_id, agent, queue)


def bridge_agent_start(nz: Normalizer, h: Headers, b: EventBuilder) -> None:
    tenant, call_id, call = _agent_leg_call(nz, h, b)
    agent, queue = _required(h, "CC-Agent"), _required(h, "CC-Queue")
    answered_us = (
        epoch_us(h.get("Caller-Channel-Answered-Time")) or epoch_s_as_us(h.get("CC-Agent-Answered-Time")) or b.ts_us
    )
    called_us = epoch_us(h.get("Caller-Channel-Created-Time")) or epoch_s_as_us(h.get("CC-Agent-Called-Time"))
    joined_us = (call.joined_us if call else None) or epoch_s_as_us(h.get("CC-Member-Joined-Time"))
    if call is not None:
        call.answered_us = answered_us
        call.agent = agent
    payload = construct(
        CallAnsweredPayload,
        {
            "queue": queue,
            "agent": agent,
            "agent_leg_uuid": nonempty(h, "CC-Agent-UUID") or text(h, "Unique-ID"),
            "joined_at": at_or_none(joined_us),
            "called_at": at_or_none(called_us),
            "answered_at": at(answered_us),
            "wait_ms": span_ms(joined_us, answered_us),
            "ring_ms": span_ms(called_us, answered_us),
        },
    )
    b.add(CallAnswered, payload, tenant, call_id, agent, queue)


def bridge_agent_end(nz: Normalizer, h: Headers, b: EventBuilder) -> None:
    tenant, call_id, _ = _agent_leg_call(nz, h, b)
    agent, queue = _required(h, "CC-Agent"), _required(h, "CC-Queue")
    answered_us = epoch_us(h.get("Caller-Channel-Answered-Time")) or epoch_s_as_us(h.get("CC-Agent-Answered-Time"))
    ended_us = epoch_us(h.get("Caller-Channel-Hangup-Time")) or b.ts_us
    payload = construct(
        CallAgentEndedPayload,
        {
            "queue": queue,
            "agent": agent,
            "hangup_cause": nonempty(h, "Hangup-Cause") or nonempty(h, "CC-Hangup-Cause"),
            "answered_at": at_or_none(answered_us),
            "ended_at": at(ended_us),
            "talk_ms": span_ms(answered_us, ended_us),
        },
    )
    b.add(CallAgentEnded, payload, tenant, call_id, agent, queue)


def member_queue_end(nz: Normalizer, h: Headers, b: EventBuilder) -> None:
    leg = nz.leg(h, b)
    tenant = nz.call_tenant(leg)
    queue = _required(h, "CC-Queue")
    call = nz.book.calls.get(leg.call_id)
    # Only compared or tested, but through checked(): an odd JSON type is bad-header, not "other" / absent.
    cause = checked(h, "CC-Cause")
    reason = text(h, "CC-Cancel-Reason") if cause == "Cancel" else None
    if cause == "Terminated":
        outcome = "answered"
    elif cause == "Cancel":
        outcome = _CANCEL_OUTCOMES.get(reason or "", "other")
        if outcome == "abandoned" and not (checked(h, "Hangup-Cause") or checked(h, "Answer-State") == "hangup"):
            outcome = "other"  # BREAK_OUT with the caller still up: left the queue some other way
    else:
        outcome = "other"
    joined_us = (call.joined_us if call else None) or epoch_s_as_us(h.get("CC-Member-Joined-Time"))
    left_us = b.ts_us
    if outcome == "answered":
        answered_us = (call.answered_us if call else None) or epoch_s_as_us(h.get("CC-Agent-Answered-Time"))
        wait_ms = span_ms(joined_us, answered_us)
    else:
        wait_ms = span_ms(joined_us, left_us)
    agent = nonempty(h, "CC-Agent")
    payload = construct(
        CallDequeuedPayload,
        {
            "queue": queue,
            "outcome": outcome,
            "cancel_reason": reason,
            "joined_at": at_or_none(joined_us),
            "left_at": b.occurred_at,
            "wait_ms": wait_ms,
            "agent": agent,
        },
    )
    b.add(CallDequeued, payload, tenant, leg.call_id, agent, queue)


def _agent_tenant(nz: Normalizer, agent: str) -> str:
    tenant = nz.agents.tenant_of(agent)
    if tenant is None:
        raise NormalizeError("agent-tenant-unresolved", f"no tenant known for agent {agent[:80]!r}")
    return tenant


def agent_status_change(nz: Normalizer, h: Headers, b: EventBuilder) -> None:
    agent, status = _required(h, "CC-Agent"), _required(h, "CC-Agent-Status")
    previous = nz.agents.status.get(agent)
    nz.agents.status[agent] = status  # remembered even when the event is dead-lettered below
    tenant = _agent_tenant(nz, agent)
    b.add(AgentStatusChanged, construct(AgentStatusPayload, {"status": status, "previous": previous}), tenant,
          agent_id=agent)


def agent_state_change(nz: Normalizer, h: Headers, b: EventBuilder) -> None:
    agent, state = _required(h, "CC-Agent"), _required(h, "CC-Agent-State")
    previous = nz.agents.state.get(agent)
    nz.agents.state[agent] = state  # remembered even when the event is dead-lettered below
    tenant = _agent_tenant(nz, agent)
    b.add(AgentStateChanged, construct(AgentStatePayload, {"state": state, "previous": previous}), tenant,
          agent_id=agent)


def agent_contact_change(nz: Normalizer, h: Headers, b: EventBuilder) -> None:
    agent, contact = nonempty(h, "CC-Agent"), nonempty(h, "CC-Agent-Contact")
    if agent and contact:
        nz.agents.learn_contact(agent, contact)


CC_ACTIONS: dict[str, Action] = {
    "member-queue-start": member_queue_start,
    "member-queue-resume": member_queue_start,
    "agent-offering": agent_offering,
    "bridge-agent-fail": bridge_agent_fail,
    "bridge-agent-start": bridge_agent_start,
    "bridge-agent-end": bridge_agent_end,
    "member-queue-end": member_queue_end,
    "agent-status-change": agent_status_change,
    "agent-state-change": agent_state_change,
    "agent-contact-change": agent_contact_change,
}
