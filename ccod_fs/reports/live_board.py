"""The wallboard of one tenant kept in memory, fed by the rows the process itself inserts.

Why: with embedded chDB the process that writes is the only writer of its database, so it sees
every call fact and agent change as it is inserted. Re-reading the tables per refresh costs
chDB 45-65 ms (query analysis and new parts dominate, not data); applying the new rows to a few
sets costs well under a millisecond. The tables stay the truth: the board starts from a cold
read of them, loads an interval's sets from ``calls_partial`` the first time a new row touches
an interval it only holds counters for, and is rebuilt after any SQL command that could have
written behind its back (see :class:`~ccod_fs.clickhouse.client.ChdbClient.watch`).

The arithmetic mirrors the SQL exactly (tests/reports/test_live_board.py holds them together):

* per (queue, 15-minute interval) of ``at``, over call facts with a queue (0006's
  ``queue_interval_counters``): offered, answered and abandoned are distinct calls, and the
  answer and abandon waits are distinct (call, wait capped at 2^28-1 ms) pairs, which is what the
  SQL's packed ``groupUniqArray`` keeps; so re-delivered facts never double count;
* a call waits at ``now`` when it has a queued fact in (now-4h, now] and no answer, dequeue or
  ended fact in that window (waiting_now.sql); longest wait from its earliest ``queued_at``;
* an agent's latest status and state are the values of its newest change (agents_latest.sql).

No I/O here: :class:`~ccod_fs.reports.library.Reports` runs the queries and feeds the results in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

WAIT_CAP_MS = 268_435_455  # 2^28 - 1: the SQL packs each wait into 28 bits
WAIT_WINDOW_MS = 4 * 3600 * 1000  # waiting_now.sql: a call queued more than 4 h ago no longer counts
INTERVAL_S = 900
_GONE_TYPES = frozenset(("call.answered", "call.dequeued"))
# the columns the board reads from each table's inserts, in the order it unpacks them
CALL_COLUMNS = ("tenant_id", "call_id", "type", "at", "queue_id", "queued_at", "answered_at", "answer_wait_ms",
                "outcome", "dequeue_wait_ms", "ended_at")
AGENT_COLUMNS = ("tenant_id", "agent_id", "kind", "value", "changed_at")


def interval_of(at_ms: int) -> int:
    """toStartOfFifteenMinutes of an epoch-ms time, as epoch seconds."""
    return at_ms // 1000 // INTERVAL_S * INTERVAL_S


@dataclass
class IntervalSets:
    """What one queue's interval holds, as the sets the SQL states hold."""

    offered: set[str] = field(default_factory=set)
    answered: set[str] = field(default_factory=set)
    abandoned: set[str] = field(default_factory=set)
    answer_waits: set[tuple[str, int]] = field(default_factory=set)
    abandon_waits: set[tuple[str, int]] = field(default_factory=set)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> IntervalSets:
        """From live_interval_sets.sql: arrays of call ids and of [call id, wait] pairs."""
        return cls(set(row["offered"]), set(row["answered"]), set(row["abandoned"]),
                   {(c, int(w)) for c, w in row["answer_waits"]}, {(c, int(w)) for c, w in row["abandon_waits"]})

    def counters(self, sl_threshold_ms: int, short_abandon_ms: int) -> dict[str, int]:
        """queue_intervals.sql's counters for one policy."""
        waits = [w for _, w in self.answer_waits]
        ab_waits = [w for _, w in self.abandon_waits]
        return {"offered": len(self.offered), "answered": len(self.answered), "abandoned": len(self.abandoned),
                "waits_n": len(waits), "waits_ms": sum(waits),
                "answered_in_sl": sum(1 for w in waits if w <= sl_threshold_ms),
                "abandon_waits_n": len(ab_waits), "short_abandons": sum(1 for w in ab_waits if w < short_abandon_ms)}


@dataclass
class CallWait:
    """One call's queue-wait facts since the board's horizon."""

    queue: str = ""
    queued_ms: int | None = None  # earliest queued_at
    queued_fact_ms: int | None = None  # latest `at` of a queued fact: in the window or not
    gone_ms: int | None = None  # earliest answer / dequeue / end


def _rows(columns: Mapping[str, Sequence[Any]], names: tuple[str, ...]) -> Iterator[tuple[Any, ...]]:
    """Rows of ``names`` from an insert's column lists; a column the insert left out is NULL
    (none without the first, the tenant)."""
    if not columns.get(names[0]):
        return iter(())
    n = len(columns[names[0]])
    return zip(*(columns.get(name) or [None] * n for name in names), strict=True)


@dataclass
class LiveBoard:
    """One tenant's wallboard state for one service-level policy, since ``floor_s`` (midnight)."""

    tenant: str
    floor_s: int
    horizon_ms: int  # waits are known for facts after this (the cold read's now - 4 h)
    sl_threshold_ms: int
    short_abandon_ms: int
    last_now_ms: int
    frozen: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    frozen_intervals: set[int] = field(default_factory=set)
    sets: dict[tuple[str, int], IntervalSets] = field(default_factory=dict)
    needs_sets: set[int] = field(default_factory=set)  # intervals to load from calls_partial
    calls: dict[str, CallWait] = field(default_factory=dict)
    waiting: set[str] = field(default_factory=set)  # calls with a queued fact and no end seen
    agents: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    pruned_ms: int = 0

    # ---- cold reads ------------------------------------------------------------------------------

    def load_counters(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """queue_intervals.sql (every interval since the floor): counters, until a new row comes."""
        for r in rows:
            self.frozen[(r["queue"], int(r["interval_s"]))] = {k: r[k] for k in (
                "offered", "answered", "abandoned", "waits_n", "waits_ms", "answered_in_sl",
                "abandon_waits_n", "short_abandons")}
            self.frozen_intervals.add(int(r["interval_s"]))

    def load_sets(self, interval_s: int, rows: Iterable[Mapping[str, Any]]) -> None:
        """live_interval_sets.sql for one interval: its exact sets replace its counters."""
        for key in [k for k in self.frozen if k[1] == interval_s]:
            del self.frozen[key]
        self.frozen_intervals.discard(interval_s)
        for key in [k for k in self.sets if k[1] == interval_s]:
            del self.sets[key]
        for r in rows:
            self.sets[(r["queue"], int(r["interval_s"]))] = IntervalSets.from_row(r)
        self.needs_sets.discard(interval_s)

    def load_waits(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """live_wait_calls.sql: per call, its queue-wait facts after the horizon."""
        for r in rows:
            call = self.calls.setdefault(r["call_id"], CallWait())
            if int(r["queued_facts"]):
                self._queued(r["call_id"], call, r["queue"], int(r["queued_ms"]), int(r["queued_fact_ms"]))
            if int(r["gone_facts"]):
                self._gone(r["call_id"], call, int(r["gone_ms"]))

    def load_agents(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """live_agents.sql: each agent's newest status and state."""
        for r in rows:
            self._agent(r["agent_id"], r["kind"], str(r["latest"]), int(r["changed_ms"]))

    # ---- rows as they are inserted ---------------------------------------------------------------

    def apply_calls(self, columns: Mapping[str, Sequence[Any]]) -> None:
        """A ``calls_partial`` insert (epoch-ms times): this tenant's rows update intervals and waits."""
        rows = _rows(columns, CALL_COLUMNS)
        tenant, floor_s, horizon = self.tenant, self.floor_s, self.horizon_ms
        for t, call_id, typ, at, queue, queued_at, answered_at, answer_wait, outcome, dequeue_wait, ended_at in rows:
            if t != tenant:
                continue
            if queue and (interval := interval_of(at)) >= floor_s:
                self._interval_fact(queue, interval, call_id, queued_at, answered_at, answer_wait, outcome,
                                    dequeue_wait)
            if at > horizon:
                if typ == "call.queued":
                    call = self.calls.setdefault(call_id, CallWait())
                    self._queued(call_id, call, queue or "", queued_at if queued_at is not None else at, at)
                elif typ in _GONE_TYPES or (typ == "call.ended" and ended_at is not None):
                    self._gone(call_id, self.calls.setdefault(call_id, CallWait()), at)

    def apply_agents(self, columns: Mapping[str, Sequence[Any]]) -> None:
        """An ``agent_state_changes`` insert: this tenant's newer changes win."""
        for t, agent, kind, value, changed in _rows(columns, AGENT_COLUMNS):
            if t == self.tenant:
                self._agent(agent, kind, value, changed)

    def _interval_fact(self, queue: str, interval: int, call_id: str, queued_at: Any, answered_at: Any,
                       answer_wait: Any, outcome: Any, dequeue_wait: Any) -> None:
        key = (queue, interval)
        sets = self.sets.get(key)
        if sets is None:
            if interval in self.frozen_intervals or interval in self.needs_sets:
                # only counters are known here: the sets come from calls_partial, which already
                # holds this row (it is applied after its insert)
                self.needs_sets.add(interval)
                return
            sets = self.sets[key] = IntervalSets()
        if queued_at is not None:
            sets.offered.add(call_id)
        if answered_at is not None:
            sets.answered.add(call_id)
            sets.answer_waits.add((call_id, min(answer_wait or 0, WAIT_CAP_MS)))
        if outcome == "abandoned":
            sets.abandoned.add(call_id)
            sets.abandon_waits.add((call_id, min(dequeue_wait or 0, WAIT_CAP_MS)))

    def _queued(self, call_id: str, call: CallWait, queue: str, queued_ms: int, fact_ms: int) -> None:
        if not call.queue:
            call.queue = queue
        call.queued_ms = queued_ms if call.queued_ms is None else min(call.queued_ms, queued_ms)
        call.queued_fact_ms = fact_ms if call.queued_fact_ms is None else max(call.queued_fact_ms, fact_ms)
        if call.gone_ms is None or call.gone_ms > self.last_now_ms:
            self.waiting.add(call_id)

    def _gone(self, call_id: str, call: CallWait, at_ms: int) -> None:
        call.gone_ms = at_ms if call.gone_ms is None else min(call.gone_ms, at_ms)
        if call.gone_ms <= self.last_now_ms:
            self.waiting.discard(call_id)

    def _agent(self, agent: str, kind: str, value: str, changed_ms: int) -> None:
        seen = self.agents.get((agent, kind))
        if seen is None or changed_ms > seen[0]:
            self.agents[(agent, kind)] = (changed_ms, value)

    # ---- reads -----------------------------------------------------------------------------------

    def answers(self, now_ms: int) -> bool:
        """Whether this board can answer for ``now``: time only moves forward from its cold read."""
        return now_ms >= self.last_now_ms and interval_of(now_ms) >= self.floor_s

    def interval_counters(self) -> list[dict[str, Any]]:
        """Per (queue, interval) counters since the floor, for ``library._sum_intervals``."""
        out = [{"queue": q, "interval_s": i, **c} for (q, i), c in self.frozen.items() if i >= self.floor_s]
        out += [{"queue": q, "interval_s": i, **s.counters(self.sl_threshold_ms, self.short_abandon_ms)}
                for (q, i), s in self.sets.items() if i >= self.floor_s]
        return out

    def waiting_now(self, now_ms: int) -> list[dict[str, Any]]:
        """waiting_now.sql's rows at ``now_ms`` (which must not be before the last one asked)."""
        self.last_now_ms = max(self.last_now_ms, now_ms)
        start = now_ms - WAIT_WINDOW_MS
        per_queue: dict[str, list[Any]] = {}
        for call_id in list(self.waiting):
            call = self.calls[call_id]
            if call.gone_ms is not None and start < call.gone_ms <= now_ms:
                self.waiting.discard(call_id)  # ended by now (a fact after an earlier now)
                continue
            fact = call.queued_fact_ms
            if fact is None or not call.queue or fact > now_ms or call.queued_ms is None:
                continue
            if fact <= start:
                self.waiting.discard(call_id)  # queued over 4 h ago: out of the window for good
                continue
            q = per_queue.setdefault(call.queue, [0, None, ""])
            q[0] += 1
            if q[1] is None or call.queued_ms < q[1] or (call.queued_ms == q[1] and call_id < q[2]):
                q[1], q[2] = call.queued_ms, call_id
        return [{"queue": queue, "calls_waiting": n, "longest_wait_ms": now_ms - oldest, "longest_waiting_call": c}
                for queue, (n, oldest, c) in sorted(per_queue.items())]

    def agents_latest(self, now_ms: int) -> list[dict[str, Any]]:
        """agents_latest.sql's rows: the latest value per agent and kind, flagged when after ``now``."""
        return [{"agent_id": agent, "kind": kind, "latest": value, "after_now": int(changed > now_ms)}
                for (agent, kind), (changed, value) in self.agents.items()]

    def prune(self, now_ms: int, every_ms: int = 60_000) -> None:
        """Forget calls whose facts all left the 4-hour window (bounded memory over a long day);
        a pass over every call, so at most once a minute of board time."""
        if now_ms < self.pruned_ms + every_ms:
            return
        self.pruned_ms = now_ms
        start = now_ms - WAIT_WINDOW_MS
        stale = [c for c, w in self.calls.items() if (w.queued_fact_ms is None or w.queued_fact_ms <= start)
                 and (w.gone_ms is None or w.gone_ms <= start)]
        for call_id in stale:
            del self.calls[call_id]
            self.waiting.discard(call_id)
