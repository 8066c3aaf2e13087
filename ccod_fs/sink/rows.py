"""Pure derivation: validated canonical events -> column-wise rows per ClickHouse table.

No I/O here. Each call event becomes one *partial* row of ``calls_partial`` that carries only
what that event knows; ClickHouse merges partials by (tenant_id, call_id) with idempotent
aggregates, so batches can be cut anywhere and events may arrive late or twice. Timestamps
are epoch milliseconds (:class:`Ms`), the grain of the contract.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ccod_fs.clickhouse.client import Ms
from ccod_fs.contract.envelope import Envelope

EVENTS_RAW = (
    "tenant_id", "occurred_at", "event_id", "type", "schema_version", "call_id", "agent_id", "queue_id",
    "source_service", "source_node", "source_core_uuid", "source_sequence", "payload",
)
CALLS_PARTIAL = (
    "tenant_id", "call_id", "first_at", "last_at", "direction", "caller_number", "destination", "queue_id",
    "agent_id", "offered_at", "queued_at", "answered_at", "answer_wait_ms", "ring_ms", "agent_ended_at",
    "dequeued_at", "abandon_wait_ms", "ended_at", "hangup_cause", "hangup_by", "duration_ms", "billable_ms",
    "read_codec", "write_codec", "codec_rate", "recorded", "dequeues", "talk_segments", "hold_events",
    "offer_ids", "failed_offer_ids", "transfer_ids",
)
AGENT_STATE_CHANGES = ("tenant_id", "agent_id", "kind", "value", "previous", "changed_at", "event_id")

TABLES: dict[str, tuple[str, ...]] = {
    "events_raw": EVENTS_RAW,
    "calls_partial": CALLS_PARTIAL,
    "agent_state_changes": AGENT_STATE_CHANGES,
}

_U32 = 0xFFFFFFFF
_LIST_COLUMNS = frozenset({"dequeues", "talk_segments", "hold_events", "offer_ids", "failed_offer_ids",
                           "transfer_ids"})
_DEFAULTS: dict[str, Any] = {c: None for c in CALLS_PARTIAL} | {c: () for c in _LIST_COLUMNS} | {"recorded": 0}


def ms(value: datetime) -> Ms:
    return Ms(round(value.timestamp() * 1000))


def _opt_ms(value: datetime | None) -> Ms | None:
    return None if value is None else ms(value)


def _u32(value: int | None) -> int | None:
    return None if value is None else min(max(int(value), 0), _U32)


def _between(end: datetime | None, start: datetime | None) -> int | None:
    if end is None or start is None:
        return None
    return _u32(round((end - start).total_seconds() * 1000))


@dataclass
class RowBatch:
    """Column-wise rows per table, ready for a columnar insert."""

    tables: dict[str, dict[str, list[Any]]] = field(
        default_factory=lambda: {t: {c: [] for c in cols} for t, cols in TABLES.items()}
    )

    def count(self, table: str) -> int:
        cols = self.tables[table]
        return len(next(iter(cols.values())))


def call_facts(ev: Envelope) -> dict[str, Any] | None:
    """What one call event contributes to its call's row (None: nothing beyond first/last seen)."""
    p: Any = getattr(ev, "payload", None)
    t = ev.type
    if t == "call.offered":
        return {"offered_at": ms(ev.occurred_at), "direction": p.direction, "caller_number": p.caller_number,
                "destination": p.destination}
    if t == "call.queued":
        return {"queued_at": ms(p.joined_at or ev.occurred_at), "queue_id": p.queue,
                "caller_number": p.caller_number}
    if t == "call.answered":
        wait = p.wait_ms if p.wait_ms is not None else _between(p.answered_at, p.joined_at)
        ring = p.ring_ms if p.ring_ms is not None else _between(p.answered_at, p.called_at)
        return {"answered_at": ms(p.answered_at), "agent_id": p.agent, "queue_id": p.queue,
                "answer_wait_ms": _u32(wait), "ring_ms": _u32(ring)}
    if t == "call.agent_ended":
        talk = p.talk_ms if p.talk_ms is not None else _between(p.ended_at, p.answered_at)
        return {"agent_ended_at": ms(p.ended_at), "agent_id": p.agent, "queue_id": p.queue,
                "talk_segments": ((ev.event_id, _u32(talk) or 0),)}
    if t == "call.dequeued":
        wait = p.wait_ms if p.wait_ms is not None else _between(p.left_at, p.joined_at)
        wait = _u32(wait) or 0
        facts = {"dequeued_at": ms(p.left_at), "queue_id": p.queue,
                 "dequeues": ((ms(p.left_at), p.queue, p.outcome, wait),)}
        if p.outcome == "abandoned":
            facts["abandon_wait_ms"] = wait
        return facts
    if t == "call.agent_offered":
        return {"queue_id": p.queue, "offer_ids": (ev.event_id,)}
    if t == "call.agent_failed":
        return {"queue_id": p.queue, "failed_offer_ids": (ev.event_id,)}
    if t == "call.hold":
        return {"hold_events": ((ms(ev.occurred_at), 1 if p.held else 0),)}
    if t == "call.transferred":
        return {"transfer_ids": (ev.event_id,)}
    if t == "call.recording":
        return {"recorded": 1} if p.started else None
    if t == "call.ended":
        if p.leg_role != "caller" and p.leg_uuid != ev.call_id:
            return None
        return {"ended_at": ms(p.ended_at), "hangup_cause": p.hangup_cause, "hangup_by": p.hangup_by,
                "duration_ms": _u32(p.duration_ms), "billable_ms": _u32(p.billable_ms),
                "read_codec": p.read_codec, "write_codec": p.write_codec, "codec_rate": _u32(p.codec_rate),
                "caller_number": p.caller_number, "destination": p.destination, "direction": p.direction}
    return None


def _append_raw(cols: dict[str, list[Any]], ev: Envelope, at: Ms) -> None:
    src = ev.source
    payload = getattr(ev, "payload", None)
    cols["tenant_id"].append(ev.tenant_id)
    cols["occurred_at"].append(at)
    cols["event_id"].append(ev.event_id)
    cols["type"].append(ev.type)
    cols["schema_version"].append(ev.schema_version)
    cols["call_id"].append(ev.call_id or "")
    cols["agent_id"].append(ev.agent_id or "")
    cols["queue_id"].append(ev.queue_id or "")
    cols["source_service"].append(src.service)
    cols["source_node"].append(src.node or "")
    cols["source_core_uuid"].append(src.core_uuid or "")
    cols["source_sequence"].append(src.event_sequence or 0)
    cols["payload"].append(
        payload.__pydantic_serializer__.to_json(payload).decode("utf-8") if payload is not None else "{}"
    )


def _append_call(cols: dict[str, list[Any]], ev: Envelope, at: Ms) -> None:
    facts = call_facts(ev) or {}
    if facts.get("queue_id") is None and ev.queue_id:
        facts["queue_id"] = ev.queue_id
    row = _DEFAULTS | facts
    row["tenant_id"] = ev.tenant_id
    row["call_id"] = ev.call_id
    row["first_at"] = at
    row["last_at"] = at
    for name in CALLS_PARTIAL:
        cols[name].append(row[name])


def _append_agent(cols: dict[str, list[Any]], ev: Envelope, at: Ms) -> None:
    p: Any = ev.payload  # type: ignore[attr-defined]
    cols["tenant_id"].append(ev.tenant_id)
    cols["agent_id"].append(ev.agent_id or "")
    cols["kind"].append("status" if ev.type == "agent.status_changed" else "state")
    cols["value"].append(p.status if ev.type == "agent.status_changed" else p.state)
    cols["previous"].append(p.previous or "")
    cols["changed_at"].append(at)
    cols["event_id"].append(ev.event_id)


def derive_rows(events: Iterable[Envelope]) -> RowBatch:
    """Rows for every table; duplicates inside the batch (same event_id) are written once."""
    batch = RowBatch()
    raw, calls, agents = (batch.tables[t] for t in ("events_raw", "calls_partial", "agent_state_changes"))
    seen: set[Any] = set()
    for ev in events:
        if ev.event_id in seen:
            continue
        seen.add(ev.event_id)
        at = ms(ev.occurred_at)
        _append_raw(raw, ev, at)
        if ev.call_id and ev.type.startswith("call."):
            _append_call(calls, ev, at)
        elif ev.type in ("agent.status_changed", "agent.state_changed"):
            _append_agent(agents, ev, at)
    return batch
