"""Report SQL library: every query takes the tenant as a bound parameter (isolation by construction).

The ``.sql`` files in ``sql/`` are the source (documented for analysts, runnable as they are with
ClickHouse's ``{name:Type}`` parameters); this module loads them, binds parameters and applies
the tenant's service-level policy. Report SQL targets the modern engine (chDB or a server
>= 24.8); the wallboard reports also have ``sql/legacy/`` versions for ClickHouse 18.16, where
times are epoch milliseconds (the library converts the parameters).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal

from ccod_fs.clickhouse.client import ChdbClient, ClickHouseClient, Columns
from ccod_fs.clickhouse.dialect import Dialect
from ccod_fs.reports.live_board import AGENT_COLUMNS, CALL_COLUMNS, INTERVAL_S, WAIT_WINDOW_MS, LiveBoard

SQL_DIR = Path(__file__).parent / "sql"
INTERVALS_MIN = (5, 15, 30, 60)

SlMode = Literal["answered_only", "abandons_fail", "short_abandons_excluded", "abandons_in_threshold_ok"]
_SL_COLUMN: dict[str, str] = {
    "answered_only": "sl_answered_only",
    "abandons_fail": "sl_abandons_fail",
    "short_abandons_excluded": "sl_short_excluded",
    "abandons_in_threshold_ok": "sl_abandons_in_t_ok",
}


@dataclass(frozen=True)
class SlPolicy:
    """A tenant's service-level definition (REFERENCE b.1): target answer time and abandon handling."""

    threshold_s: int = 20
    mode: SlMode = "abandons_fail"
    short_abandon_s: int = 5

    def params(self) -> dict[str, int]:
        return {"sl_threshold_ms": self.threshold_s * 1000, "short_abandon_ms": self.short_abandon_s * 1000}


_INCLUDE = re.compile(r"\{(\w+)\}")


@cache
def load_sql(name: str, dialect: Dialect = Dialect.MODERN) -> str:
    """The SQL of one report; ``{other}`` includes report ``other`` as a subquery (e.g. ``{call_handling}``)."""
    path = SQL_DIR / f"{name}.sql" if dialect is Dialect.MODERN else SQL_DIR / "legacy" / f"{name}.sql"
    if not path.exists():
        raise NotImplementedError(f"report {name!r} needs ClickHouse >= 24.8 or chDB")
    return _INCLUDE.sub(lambda m: load_sql(m.group(1), dialect) if (SQL_DIR / f"{m.group(1)}.sql").exists()
                        else m.group(0), path.read_text("utf-8"))


def _epoch_ms(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(milliseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _utc(value: datetime | None) -> datetime:
    value = value or datetime.now(UTC)
    if value.tzinfo is None:
        raise ValueError("report times must be timezone-aware")
    return value.astimezone(UTC)


_COUNTERS = ("offered", "answered", "abandoned", "answered_in_sl", "short_abandons", "waits_n", "waits_ms",
             "abandon_waits_n")


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _sum_intervals(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """queue_today.sql's outer query in Python: per queue, sums of the interval counters and ratios."""
    totals: dict[str, dict[str, int]] = {}
    for r in rows:
        t = totals.setdefault(r["queue"], dict.fromkeys(_COUNTERS, 0))
        for c in _COUNTERS:
            t[c] += int(r[c])
    out = []
    for queue in sorted(totals):
        t = totals[queue]
        ended = t["waits_n"] + t["abandon_waits_n"]
        out.append({
            "queue": queue, "offered": t["offered"], "answered": t["answered"], "abandoned": t["abandoned"],
            "answered_in_sl": t["answered_in_sl"], "short_abandons": t["short_abandons"],
            "sl_answered_only": _ratio(t["answered_in_sl"], t["waits_n"]),
            "sl_abandons_fail": _ratio(t["answered_in_sl"], ended),
            "sl_short_excluded": _ratio(t["answered_in_sl"], ended - t["short_abandons"]),
            "asa_ms": _ratio(t["waits_ms"], t["waits_n"]),
            "abandon_rate": _ratio(t["abandoned"], t["offered"]),
        })
    return out


def _with_service_level(row: dict[str, Any], policy: SlPolicy) -> dict[str, Any]:
    row["service_level"] = row[_SL_COLUMN[policy.mode]] if policy.mode in (
        "answered_only", "abandons_fail", "short_abandons_excluded") else row["sl_abandons_fail"]
    return row


# the columns the boards read, per table: only these lists are held until the next read
_LIVE_COLUMNS = {"calls_partial": CALL_COLUMNS, "agent_state_changes": AGENT_COLUMNS}


class _InsertFeed:
    """The rows inserted into an embedded database since the wallboards last read, for them.

    Filled from the writer's thread (under the engine lock), drained by the reader. It only
    collects while boards exist, and holds only the columns they read; past ``max_rows`` unread
    rows (about 100 s of 2,000 events/s with nobody looking), or after any SQL command, it drops
    them and flags ``stale``: the boards are then rebuilt from the tables.
    """

    def __init__(self, max_rows: int = 200_000) -> None:
        self.max_rows = max_rows
        self.collecting = False
        self.stale = False
        self._lock = threading.Lock()
        self._pending: list[tuple[str, Columns]] = []
        self._rows = 0

    def on_insert(self, table: str, columns: Columns) -> None:
        wanted = _LIVE_COLUMNS.get(table)
        if not self.collecting or wanted is None:
            return
        n = len(next(iter(columns.values()), ()))
        with self._lock:
            if self._rows + n > self.max_rows:
                self._pending, self._rows, self.stale = [], 0, True
            elif not self.stale:
                self._pending.append((table, {c: columns[c] for c in wanted if c in columns}))
                self._rows += n

    def on_command(self) -> None:
        if self.collecting:
            with self._lock:
                self._pending, self._rows, self.stale = [], 0, True

    def drain(self) -> tuple[list[tuple[str, Columns]], bool]:
        """The pending inserts, and whether the boards must be rebuilt instead (clears both)."""
        with self._lock:
            pending, stale = self._pending, self.stale
            self._pending, self._rows, self.stale = [], 0, False
        return pending, stale


@dataclass
class Reports:
    """Binds report SQL to one client. Holds the wallboard's per-interval counters between calls
    and, on embedded chDB (unless ``live=False``), each tenant's in-memory board
    (:mod:`ccod_fs.reports.live_board`)."""

    client: ClickHouseClient
    live: bool = True
    _intervals: dict[tuple[Any, ...], dict[tuple[str, int], dict[str, Any]]] = field(default_factory=dict, repr=False)
    _boards: dict[tuple[Any, ...], LiveBoard] = field(default_factory=dict, repr=False)
    _feed: _InsertFeed | None = field(default=None, repr=False)
    _live_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def run(self, name: str, *, tenant: str, **params: Any) -> list[dict[str, Any]]:
        if not tenant:
            raise ValueError("every report is scoped to one tenant")
        legacy = self.client.dialect is Dialect.LEGACY
        bound = {k: ((_epoch_ms(_utc(v)) if legacy else _utc(v)) if isinstance(v, datetime) else v)
                 for k, v in params.items()}
        return self.client.query(load_sql(name, self.client.dialect), {"tenant": tenant, **bound})

    def call_handling(self, tenant: str, start: datetime, end: datetime, now: datetime | None = None) -> list[dict]:
        return self.run("call_handling", tenant=tenant, **{"from": start, "to": end}, now=_utc(now))

    def queue_kpis(self, tenant: str, start: datetime, end: datetime, *, interval_min: int = 15,
                   policy: SlPolicy = SlPolicy(), now: datetime | None = None) -> list[dict[str, Any]]:
        """Per interval and queue (queue '*' = all queues of the tenant); ``service_level`` per policy."""
        if interval_min not in INTERVALS_MIN:
            raise ValueError(f"interval_min must be one of {INTERVALS_MIN}")
        rows = self.run("queue_kpis", tenant=tenant, **{"from": start, "to": end}, now=_utc(now),
                        interval_min=interval_min, **policy.params())
        for row in rows:
            row["service_level"] = row[_SL_COLUMN[policy.mode]]
        return rows

    def agent_kpis(self, tenant: str, start: datetime, end: datetime, *, interval_min: int = 15,
                   now: datetime | None = None) -> list[dict[str, Any]]:
        if interval_min not in INTERVALS_MIN:
            raise ValueError(f"interval_min must be one of {INTERVALS_MIN}")
        return self.run("agent_kpis", tenant=tenant, **{"from": start, "to": end}, now=_utc(now),
                        interval_min=interval_min)

    def waiting_now(self, tenant: str, now: datetime | None = None) -> list[dict[str, Any]]:
        return self.run("waiting_now", tenant=tenant, now=_utc(now))

    def agents_now(self, tenant: str, now: datetime | None = None) -> list[dict[str, Any]]:
        """agents_now.sql's answer, from the latest change per agent (agent_state_now) when none of
        them is after ``now``, else (a replay of a past moment) from agents_now.sql itself."""
        return self._agents(tenant, _utc(now), self.run("agents_latest", tenant=tenant, now=_utc(now)))

    def _agents(self, tenant: str, now: datetime, latest: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if any(r["after_now"] for r in latest):  # agent ids sorted: groupArray's order is the engine's
            return [{**r, "agent_ids": sorted(r["agent_ids"])} for r in self.run("agents_now", tenant=tenant, now=now)]
        agents: dict[str, dict[str, str]] = {}
        for r in latest:
            agents.setdefault(r["agent_id"], {"status": "", "state": ""})[r["kind"]] = r["latest"]
        groups: dict[tuple[str, str], list[str]] = {}
        for agent_id, a in agents.items():
            if a["status"] != "Logged Out":
                groups.setdefault((a["status"], a["state"]), []).append(agent_id)
        return [{"status": status, "state": state, "agents": len(ids), "agent_ids": sorted(ids)}
                for (status, state), ids in sorted(groups.items())]

    def queue_today(self, tenant: str, since: datetime, policy: SlPolicy = SlPolicy()) -> list[dict[str, Any]]:
        """Per queue since ``since``: the sum of the per-interval counters, all read in SQL."""
        rows = self.run("queue_today", tenant=tenant, **{"from": since}, **policy.params(), all=1, intervals=[0])
        return [_with_service_level(row, policy) for row in rows]

    def queue_today_cached(self, tenant: str, since: datetime, policy: SlPolicy = SlPolicy()) -> list[dict[str, Any]]:
        """:meth:`queue_today`, re-reading only the intervals whose version changed since the last call.

        An interval's version is the number of call-fact rows it has received (0006): it only
        grows, so counters read at an unchanged version are still exact (rows are only ever added;
        after a manual DELETE or a truncate, use a new ``Reports``). One small query reads
        the versions; the interval states, which cost time in proportion to the calls in them, are
        decoded only for new or changed intervals (the open one, and any that got late events).
        """
        versions = {(r["queue"], int(r["interval_s"])): int(r["version"])
                    for r in self.run("queue_interval_versions", tenant=tenant, **{"from": since})}
        return self._today(tenant, since, policy, versions)

    def _today(self, tenant: str, since: datetime, policy: SlPolicy,
               versions: dict[tuple[str, int], int]) -> list[dict[str, Any]]:
        """Today's rows from cached interval counters, after re-reading the intervals in ``versions``
        (queue, interval start in epoch s -> version) that are new or whose version moved."""
        cached = self._intervals.setdefault((tenant, *policy.params().values()), {})
        floor = int(_utc(since).timestamp()) // 900 * 900
        stale = sorted({k[1] for k, v in versions.items() if k not in cached or cached[k]["version"] != v})
        if stale:
            for r in self.run("queue_intervals", tenant=tenant, **{"from": since}, **policy.params(), all=0,
                              intervals=stale):
                cached[(r["queue"], int(r["interval_s"]))] = r
        for k in [k for k in cached if k[1] < floor]:
            del cached[k]  # before the window asked for: not needed any more
        return [_with_service_level(row, policy) for row in _sum_intervals(
            cached[k] for k in versions if k in cached)]

    def wallboard(self, tenant: str, now: datetime | None = None, policy: SlPolicy = SlPolicy()) -> dict[str, Any]:
        """All queues of a tenant, now: today's counters, who waits, and agents by state.

        On embedded chDB the tenant's :class:`LiveBoard` answers from memory, fed by this
        process's own inserts (the only writer there): no query once it is warm. Elsewhere (and
        for a ``now`` before the board's), one round trip (wallboard_now.sql) reads today's
        interval versions, the waiting calls and each agent's latest change from the small 0006
        tables; a second one re-reads only the intervals whose version moved (see
        :meth:`queue_today_cached`). Same answers as :meth:`queue_today`, :meth:`waiting_now` and
        :meth:`agents_now` either way.
        """
        now = _utc(now)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        live = self._live_parts(tenant, now, midnight, policy)
        if live is not None:
            today, waiting, latest = live
        else:
            parts: dict[str, list[dict[str, Any]]] = {"versions": [], "waiting": [], "agents": []}
            for r in self.run("wallboard_now", tenant=tenant, **{"from": midnight}, now=now):
                parts[r["part"]].append(r)
            versions = {(r["key"], int(r["n1"])): int(r["n2"]) for r in parts["versions"]}
            today = self._today(tenant, midnight, policy, versions)
            waiting = [{"queue": r["key"], "calls_waiting": int(r["n1"]), "longest_wait_ms": int(r["n2"]),
                        "longest_waiting_call": r["text1"]} for r in sorted(parts["waiting"], key=lambda r: r["key"])]
            latest = [{"agent_id": r["key"], "kind": r["text1"], "latest": r["text2"], "after_now": int(r["n1"])}
                      for r in parts["agents"]]
        queues = {r["queue"]: r for r in today}
        for w in waiting:
            queues.setdefault(w["queue"], {"queue": w["queue"]}).update(
                calls_waiting=w["calls_waiting"], longest_wait_ms=w["longest_wait_ms"],
                longest_waiting_call=w["longest_waiting_call"])
        return {"tenant": tenant, "at": now, "since": midnight, "queues": list(queues.values()),
                "agents": self._agents(tenant, now, latest), "stale_after": now + timedelta(seconds=5)}

    # ---- the embedded engine's live boards -------------------------------------------------------

    def _live_parts(self, tenant: str, now: datetime, midnight: datetime, policy: SlPolicy
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]] | None:
        """Today's rows, the waiting calls and the agents' latest changes from the tenant's board;
        None when the SQL path must answer (not embedded, or a ``now`` before the board's)."""
        if not self.live or not isinstance(self.client, ChdbClient):
            return None
        with self._live_lock:  # boards are plain state: one reader at a time
            return self._read_boards(tenant, now, midnight, policy)

    def _read_boards(self, tenant: str, now: datetime, midnight: datetime, policy: SlPolicy
                     ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]] | None:
        assert isinstance(self.client, ChdbClient)
        feed = self._feed
        if feed is None:
            feed = self._feed = _InsertFeed()
            self.client.watch(feed)
        pending, stale = feed.drain()
        if stale:
            self._boards.clear()
        key = (tenant, *policy.params().values())
        now_ms, floor_s = _epoch_ms(now), _epoch_ms(midnight) // 1000
        board = self._boards.get(key)
        if board is not None and board.floor_s != floor_s and now_ms >= board.last_now_ms:
            board = None  # a new day
        if board is not None and not board.answers(now_ms):
            self._apply(pending)
            return None  # a moment before the board's: only the tables know it
        feed.collecting = True  # before the cold read: a row inserted meanwhile is seen twice, never missed
        if board is None:
            board = self._boards[key] = self._cold_board(tenant, now, midnight, policy)
        self._apply(pending)
        self._load_sets()
        board.prune(now_ms)
        today = [_with_service_level(r, policy) for r in _sum_intervals(board.interval_counters())]
        return today, board.waiting_now(now_ms), board.agents_latest(now_ms)

    def _cold_board(self, tenant: str, now: datetime, midnight: datetime, policy: SlPolicy) -> LiveBoard:
        now_ms = _epoch_ms(now)
        board = LiveBoard(tenant, _epoch_ms(midnight) // 1000, now_ms - WAIT_WINDOW_MS,
                          sl_threshold_ms=policy.threshold_s * 1000, short_abandon_ms=policy.short_abandon_s * 1000,
                          last_now_ms=now_ms)
        board.load_counters(self.run("queue_intervals", tenant=tenant, **{"from": midnight}, **policy.params(),
                                     all=1, intervals=[0]))
        board.load_waits(self.run("live_wait_calls", tenant=tenant,
                                  **{"from": now - timedelta(milliseconds=WAIT_WINDOW_MS)}))
        board.load_agents(self.run("live_agents", tenant=tenant))
        return board

    def _apply(self, pending: list[tuple[str, Columns]]) -> None:
        for table, columns in pending:
            for board in self._boards.values():
                if table == "calls_partial":
                    board.apply_calls(columns)
                else:
                    board.apply_agents(columns)

    def _load_sets(self) -> None:
        """The sets of the intervals new rows reached while the boards only had their counters."""
        for board in self._boards.values():
            if not board.needs_sets:
                continue
            wanted = sorted(board.needs_sets)
            rows = self.run("live_interval_sets", tenant=board.tenant, intervals=wanted,
                            **{"from": datetime.fromtimestamp(wanted[0], UTC),
                               "to": datetime.fromtimestamp(wanted[-1] + INTERVAL_S, UTC)})
            for interval in wanted:
                board.load_sets(interval, [r for r in rows if int(r["interval_s"]) == interval])
