"""Pure derivation: validated events (as records) -> column-wise rows per ClickHouse table.

No I/O here. A *record* is an event as a plain dict with timestamps as epoch milliseconds and
UUIDs as strings (see :mod:`ccod_fs.sink.fastcheck`; event ids become ``uuid.UUID`` in the
rows); the Kafka path builds records straight from JSON, in-process callers pass models
through :func:`derive_rows`. Each call event becomes
one narrow ``calls_partial`` row carrying only what that event knows about its call; ClickHouse
folds them per call (the ``calls`` view), so batches can be cut anywhere and events may arrive
late or twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ccod_fs.clickhouse.client import fast_uuid
from ccod_fs.contract.envelope import Envelope
from ccod_fs.sink.fastcheck import Record, record_of

EVENTS_RAW = (
    "tenant_id", "occurred_at", "event_id", "type", "schema_version", "call_id", "agent_id", "queue_id",
    "source_service", "source_node", "source_core_uuid", "source_sequence", "payload",
)
CALL_FACTS = (
    "direction", "caller_number", "destination", "offered_at", "queued_at", "answered_at", "answer_wait_ms",
    "ring_ms", "agent_ended_at", "bridge_ms", "dequeued_at", "outcome", "dequeue_wait_ms", "held", "recorded",
    "ended_at", "hangup_cause", "hangup_by", "duration_ms", "billable_ms", "read_codec", "write_codec", "codec_rate",
)
CALLS_PARTIAL = ("tenant_id", "call_id", "event_id", "type", "at", "queue_id", "agent_id", *CALL_FACTS)
AGENT_STATE_CHANGES = ("tenant_id", "agent_id", "kind", "value", "previous", "changed_at", "event_id")

TABLES: dict[str, tuple[str, ...]] = {
    "events_raw": EVENTS_RAW,
    "calls_partial": CALLS_PARTIAL,
    "agent_state_changes": AGENT_STATE_CHANGES,
}

_U32 = 0xFFFFFFFF
_NO_FACTS: dict[str, Any] = dict.fromkeys(CALL_FACTS)


def _u32(value: int | None) -> int | None:
    return None if value is None else min(max(value, 0), _U32)


def _between(end: int | None, start: int | None) -> int | None:
    return None if end is None or start is None else _u32(end - start)


@dataclass
class RowBatch:
    """Column-wise rows per table, ready for a columnar insert."""

    tables: dict[str, dict[str, list[Any]]] = field(
        default_factory=lambda: {t: {c: [] for c in cols} for t, cols in TABLES.items()}
    )

    def count(self, table: str) -> int:
        return len(next(iter(self.tables[table].values())))


# ---- what each call event says about its call (timestamps in epoch ms) ------------------------


def _offered(r: Record, p: dict[str, Any]) -> dict[str, Any]:
    return {"offered_at": r["occurred_at"], "direction": p["direction"], "caller_number": p["caller_number"],
            "destination": p["destination"]}


def _queued(r: Record, p: dict[str, Any]) -> dict[str, Any]:
    return {"queued_at": p["joined_at"] or r["occurred_at"], "caller_number": p["caller_number"]}


def _answered(r: Record, p: dict[str, Any]) -> dict[str, Any]:
    wait = p["wait_ms"] if p["wait_ms"] is not None else _between(p["answered_at"], p["joined_at"])
    ring = p["ring_ms"] if p["ring_ms"] is not None else _between(p["answered_at"], p["called_at"])
    return {"answered_at": p["answered_at"], "answer_wait_ms": _u32(wait), "ring_ms": _u32(ring)}


def _agent_ended(r: Record, p: dict[str, Any]) -> dict[str, Any]:
    talk = p["talk_ms"] if p["talk_ms"] is not None else _between(p["ended_at"], p["answered_at"])
    return {"agent_ended_at": p["ended_at"], "bridge_ms": _u32(talk) or 0}


def _dequeued(r: Record, p: dict[str, Any]) -> dict[str, Any]:
    wait = p["wait_ms"] if p["wait_ms"] is not None else _between(p["left_at"], p["joined_at"])
    return {"dequeued_at": p["left_at"], "outcome": p["outcome"], "dequeue_wait_ms": _u32(wait) or 0}


def _hold(r: Record, p: dict[str, Any]) -> dict[str, Any]:
    return {"held": 1 if p["held"] else 0}


def _recording(r: Record, p: dict[str, Any]) -> dict[str, Any]:
    return {"recorded": 1 if p["started"] else 0}


def _ended(r: Record, p: dict[str, Any]) -> dict[str, Any] | None:
    if p["leg_role"] != "caller" and p["leg_uuid"] != r["call_id"]:
        return None  # an agent or outbound leg: the call goes on
    return {"ended_at": p["ended_at"], "hangup_cause": p["hangup_cause"], "hangup_by": p["hangup_by"],
            "duration_ms": _u32(p["duration_ms"]), "billable_ms": _u32(p["billable_ms"]),
            "read_codec": p["read_codec"], "write_codec": p["write_codec"], "codec_rate": _u32(p["codec_rate"]),
            "caller_number": p["caller_number"], "destination": p["destination"], "direction": p["direction"]}


_FACTS: dict[str, Callable[[Record, dict[str, Any]], dict[str, Any] | None]] = {
    "call.offered": _offered,
    "call.queued": _queued,
    "call.answered": _answered,
    "call.agent_ended": _agent_ended,
    "call.dequeued": _dequeued,
    "call.hold": _hold,
    "call.recording": _recording,
    "call.ended": _ended,
}
# events that matter by their mere presence (counted per call): no fact columns
_MARKERS = frozenset({"call.agent_offered", "call.agent_failed", "call.transferred"})


def call_facts(r: Record) -> dict[str, Any] | None:
    """The fact columns one call event sets, or None when it adds nothing to the call's row."""
    fn = _FACTS.get(r["type"])
    if fn is not None:
        return fn(r, r["payload"])
    return {} if r["type"] in _MARKERS else None


# ---- appending rows ----------------------------------------------------------------------------


def _append_raw(cols: dict[str, list[Any]], r: Record, eid: Any) -> None:
    src = r["source"]
    cols["tenant_id"].append(r["tenant_id"])
    cols["occurred_at"].append(r["occurred_at"])
    cols["event_id"].append(eid)
    cols["type"].append(r["type"])
    cols["schema_version"].append(r["schema_version"])
    cols["call_id"].append(r["call_id"] or "")
    cols["agent_id"].append(r["agent_id"] or "")
    cols["queue_id"].append(r["queue_id"] or "")
    cols["source_service"].append(src["service"])
    cols["source_node"].append(src["node"] or "")
    cols["source_core_uuid"].append(src["core_uuid"] or "")
    cols["source_sequence"].append(src["event_sequence"] or 0)
    cols["payload"].append(r["payload_json"])


def _append_call(cols: dict[str, list[Any]], r: Record, facts: dict[str, Any], eid: Any) -> None:
    p = r["payload"]
    cols["tenant_id"].append(r["tenant_id"])
    cols["call_id"].append(r["call_id"])
    cols["event_id"].append(eid)
    cols["type"].append(r["type"])
    cols["at"].append(r["occurred_at"])
    cols["queue_id"].append(p.get("queue") or r["queue_id"] or "")
    cols["agent_id"].append(p.get("agent") or r["agent_id"] or "")
    row = _NO_FACTS | facts if facts else _NO_FACTS
    for name in CALL_FACTS:
        cols[name].append(row[name])


def _append_agent(cols: dict[str, list[Any]], r: Record, eid: Any) -> None:
    p = r["payload"]
    status = r["type"] == "agent.status_changed"
    cols["tenant_id"].append(r["tenant_id"])
    cols["agent_id"].append(r["agent_id"] or "")
    cols["kind"].append("status" if status else "state")
    cols["value"].append(p["status"] if status else p["state"])
    cols["previous"].append(p["previous"] or "")
    cols["changed_at"].append(r["occurred_at"])
    cols["event_id"].append(eid)


def derive_rows_from_records(records: Iterable[Record]) -> RowBatch:
    """Rows for every table; duplicates inside the batch (same event_id) are written once."""
    batch = RowBatch()
    raw, calls, agents = (batch.tables[t] for t in ("events_raw", "calls_partial", "agent_state_changes"))
    seen: set[str] = set()
    for r in records:
        eid = r["event_id"]
        if eid in seen:
            continue
        seen.add(eid)
        uid = fast_uuid(eid)  # one UUID object shared by every table's event_id column
        _append_raw(raw, r, uid)
        t = r["type"]
        if t.startswith("call.") and r["call_id"]:
            facts = call_facts(r)
            if facts is not None:
                _append_call(calls, r, facts, uid)
        elif t == "agent.status_changed" or t == "agent.state_changed":
            _append_agent(agents, r, uid)
    return batch


def model_record(event: Envelope) -> Record:
    """Record of a validated model, with the canonical payload JSON for ``events_raw``."""
    rec = record_of(event)
    payload = getattr(event, "payload", None)
    rec["payload_json"] = (
        payload.__pydantic_serializer__.to_json(payload).decode("utf-8") if payload is not None else "{}"
    )
    return rec


def derive_rows(events: Iterable[Envelope]) -> RowBatch:
    """In-process entry: validated models -> rows (same derivation as the Kafka path)."""
    return derive_rows_from_records(model_record(ev) for ev in events)
