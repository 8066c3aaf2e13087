"""Pure derivation: validated events (as records) -> column-wise rows per ClickHouse table.

No I/O here. A *record* is an event as a plain dict with timestamps as epoch milliseconds and
UUIDs as canonical strings (see :mod:`ccod_fs.sink.fastcheck`; event ids stay text in the rows,
the native client encodes them); the Kafka path builds records straight from JSON, in-process
callers pass models through :func:`derive_rows`. Each call event becomes one narrow
``calls_partial`` row carrying only what that event knows about its call; ClickHouse folds them
per call (the ``calls`` view), so batches can be cut anywhere and events may arrive late or twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

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


def _u32(value: int | None) -> int | None:
    if value is None or 0 <= value <= _U32:
        return value
    return min(max(value, 0), _U32)


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
# Per call event type: the fact columns it sets and a function returning their values as a
# tuple in that order (None: the event adds no row). Rows are grouped by type when the batch is
# finished, so every fact column of a group is one C-level transpose, and the columns a type
# never sets are one ``[None] * n``: no per-row dict merge, no per-row loop over 23 columns.


def _offered(r: Record, p: dict[str, Any]) -> tuple[Any, ...]:
    return (r["occurred_at"], p["direction"], p["caller_number"], p["destination"])


def _queued(r: Record, p: dict[str, Any]) -> tuple[Any, ...]:
    return (p["joined_at"] or r["occurred_at"], p["caller_number"])


def _answered(r: Record, p: dict[str, Any]) -> tuple[Any, ...]:
    wait = p["wait_ms"] if p["wait_ms"] is not None else _between(p["answered_at"], p["joined_at"])
    ring = p["ring_ms"] if p["ring_ms"] is not None else _between(p["answered_at"], p["called_at"])
    return (p["answered_at"], _u32(wait), _u32(ring))


def _agent_ended(r: Record, p: dict[str, Any]) -> tuple[Any, ...]:
    talk = p["talk_ms"] if p["talk_ms"] is not None else _between(p["ended_at"], p["answered_at"])
    return (p["ended_at"], _u32(talk) or 0)


def _dequeued(r: Record, p: dict[str, Any]) -> tuple[Any, ...]:
    wait = p["wait_ms"] if p["wait_ms"] is not None else _between(p["left_at"], p["joined_at"])
    return (p["left_at"], p["outcome"], _u32(wait) or 0)


def _hold(r: Record, p: dict[str, Any]) -> tuple[Any, ...]:
    return (1 if p["held"] else 0,)


def _recording(r: Record, p: dict[str, Any]) -> tuple[Any, ...]:
    return (1 if p["started"] else 0,)


def _ended(r: Record, p: dict[str, Any]) -> tuple[Any, ...] | None:
    if p["leg_role"] != "caller" and p["leg_uuid"] != r["call_id"]:
        return None  # an agent or outbound leg: the call goes on
    return (p["ended_at"], p["hangup_cause"], p["hangup_by"], _u32(p["duration_ms"]), _u32(p["billable_ms"]),
            p["read_codec"], p["write_codec"], _u32(p["codec_rate"]), p["caller_number"], p["destination"],
            p["direction"])


def _marker(r: Record, p: dict[str, Any]) -> tuple[Any, ...]:
    return ()


FactFn = Callable[[Record, dict[str, Any]], "tuple[Any, ...] | None"]
_FACTS: dict[str, tuple[tuple[str, ...], FactFn]] = {
    "call.offered": (("offered_at", "direction", "caller_number", "destination"), _offered),
    "call.queued": (("queued_at", "caller_number"), _queued),
    "call.answered": (("answered_at", "answer_wait_ms", "ring_ms"), _answered),
    "call.agent_ended": (("agent_ended_at", "bridge_ms"), _agent_ended),
    "call.dequeued": (("dequeued_at", "outcome", "dequeue_wait_ms"), _dequeued),
    "call.hold": (("held",), _hold),
    "call.recording": (("recorded",), _recording),
    "call.ended": (("ended_at", "hangup_cause", "hangup_by", "duration_ms", "billable_ms", "read_codec",
                    "write_codec", "codec_rate", "caller_number", "destination", "direction"), _ended),
    # events that matter by their mere presence (counted per call): no fact columns
    "call.agent_offered": ((), _marker),
    "call.agent_failed": ((), _marker),
    "call.transferred": ((), _marker),
}
assert all(set(cols) <= set(CALL_FACTS) for cols, _fn in _FACTS.values())


def call_facts(r: Record) -> dict[str, Any] | None:
    """The fact columns one call event sets, or None when it adds nothing to the call's row."""
    spec = _FACTS.get(r["type"])
    if spec is None:
        return None
    values = spec[1](r, r["payload"])
    return None if values is None else dict(zip(spec[0], values, strict=True))


# ---- building a batch ---------------------------------------------------------------------------


Row = tuple[Any, ...]


def record_rows(r: Record) -> tuple[Row, str | None, Row | None, Row | None, Row | None]:
    """What one record adds: its ``events_raw`` row, its call event type with the fixed and fact
    parts of its ``calls_partial`` row (or Nones), and its ``agent_state_changes`` row (or None)."""
    uid = r["event_id"]  # canonical UUID text: the native client encodes it (no UUID object per event)
    t = r["type"]
    src = r["source"]
    tenant = r["tenant_id"]
    at = r["occurred_at"]
    call_id = r["call_id"]
    agent_id = r["agent_id"]
    queue_id = r["queue_id"]
    raw = (tenant, at, uid, t, r["schema_version"], call_id or "", agent_id or "", queue_id or "",
           src["service"], src["node"] or "", src["core_uuid"] or "", src["event_sequence"] or 0, r["payload_json"])
    if call_id and t.startswith("call."):
        spec = _FACTS.get(t)
        if spec is not None:
            p = r["payload"]
            facts = spec[1](r, p)
            if facts is not None:
                queue, agent = p.get("queue") or queue_id or "", p.get("agent") or agent_id or ""
                return raw, t, (tenant, call_id, uid, t, at, queue, agent), facts, None
    elif t == "agent.status_changed" or t == "agent.state_changed":
        p = r["payload"]
        status = t == "agent.status_changed"
        return raw, None, None, None, (tenant, agent_id or "", "status" if status else "state",
                                       p["status"] if status else p["state"], p["previous"] or "", at, uid)
    return raw, None, None, None, None


class RowBuilder:
    """Accumulates the rows of one batch, event by event, as tuples; :meth:`finish` transposes.

    Duplicates inside the batch (same event_id) are written once. One tuple per table row and
    a few dict lookups per event keep the per-event Python work small (the Python decoder's hot
    loop; :mod:`ccod_fs.sink.native_rows` is the native twin).
    """

    __slots__ = ("_agents", "_calls", "_raw", "_seen", "events")

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._raw: list[tuple[Any, ...]] = []
        self._calls: dict[str, tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]] = {}
        self._agents: list[tuple[Any, ...]] = []
        self.events = 0  # records added, duplicates included

    def add(self, r: Record) -> None:
        self.events += 1
        eid = r["event_id"]
        if eid in self._seen:
            return
        self._seen.add(eid)
        raw, group, fixed, facts, agent = record_rows(r)
        self._raw.append(raw)
        if group is not None and fixed is not None and facts is not None:
            rows = self._calls.get(group)
            if rows is None:
                rows = self._calls[group] = ([], [])
            rows[0].append(fixed)
            rows[1].append(facts)
        elif agent is not None:
            self._agents.append(agent)

    def finish(self) -> RowBatch:
        batch = RowBatch()
        _fill(batch.tables["events_raw"], EVENTS_RAW, self._raw)
        _fill(batch.tables["agent_state_changes"], AGENT_STATE_CHANGES, self._agents)
        calls = batch.tables["calls_partial"]
        for t, (fixed, facts) in self._calls.items():
            n = len(fixed)
            for name, values in zip(CALLS_PARTIAL[:7], zip(*fixed, strict=True), strict=True):
                calls[name] += values
            names = _FACTS[t][0]
            for name, values in zip(names, zip(*facts, strict=True), strict=True):
                calls[name] += values
            missing = [None] * n
            for name in CALL_FACTS:
                if name not in names:
                    calls[name] += missing
        return batch


def _fill(cols: dict[str, list[Any]], names: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    if rows:
        for name, values in zip(names, zip(*rows, strict=True), strict=True):
            cols[name] += values


def derive_rows_from_records(records: Iterable[Record]) -> RowBatch:
    """Rows for every table; duplicates inside the batch (same event_id) are written once."""
    builder = RowBuilder()
    for r in records:
        builder.add(r)
    return builder.finish()


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
