"""Report SQL library: every query takes the tenant as a bound parameter (isolation by construction).

The ``.sql`` files in ``sql/`` are the source (documented for analysts, runnable as they are with
ClickHouse's ``{name:Type}`` parameters); this module loads them, binds parameters and applies
the tenant's service-level policy. Report SQL targets the modern engine (chDB or a server
>= 24.8); the wallboard reports also have ``sql/legacy/`` versions for ClickHouse 18.16, where
times are epoch milliseconds (the library converts the parameters).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal

from ccod_fs.clickhouse.client import ClickHouseClient
from ccod_fs.clickhouse.dialect import Dialect

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


@dataclass
class Reports:
    """Binds report SQL to one client. Holds the wallboard's per-interval counters between calls."""

    client: ClickHouseClient
    _intervals: dict[tuple[Any, ...], dict[tuple[str, int], dict[str, Any]]] = field(default_factory=dict, repr=False)

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
        if any(r["after_now"] for r in latest):
            return self.run("agents_now", tenant=tenant, now=now)
        agents: dict[str, dict[str, str]] = {}
        for r in latest:
            agents.setdefault(r["agent_id"], {"status": "", "state": ""})[r["kind"]] = r["latest"]
        groups: dict[tuple[str, str], list[str]] = {}
        for agent_id, a in agents.items():
            if a["status"] != "Logged Out":
                groups.setdefault((a["status"], a["state"]), []).append(agent_id)
        return [{"status": status, "state": state, "agents": len(ids), "agent_ids": ids}
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

        One round trip (wallboard_now.sql) reads today's interval versions, the waiting calls and
        each agent's latest change from the small 0006 tables; a second one re-reads only the
        intervals whose version moved (see :meth:`queue_today_cached`). Same answers as
        :meth:`queue_today`, :meth:`waiting_now` and :meth:`agents_now`.
        """
        now = _utc(now)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        parts: dict[str, list[dict[str, Any]]] = {"versions": [], "waiting": [], "agents": []}
        for r in self.run("wallboard_now", tenant=tenant, **{"from": midnight}, now=now):
            parts[r["part"]].append(r)
        versions = {(r["key"], int(r["n1"])): int(r["n2"]) for r in parts["versions"]}
        queues = {r["queue"]: r for r in self._today(tenant, midnight, policy, versions)}
        for w in sorted(parts["waiting"], key=lambda r: r["key"]):
            queues.setdefault(w["key"], {"queue": w["key"]}).update(
                calls_waiting=int(w["n1"]), longest_wait_ms=int(w["n2"]), longest_waiting_call=w["text1"])
        latest = [{"agent_id": r["key"], "kind": r["text1"], "latest": r["text2"], "after_now": int(r["n1"])}
                  for r in parts["agents"]]
        return {"tenant": tenant, "at": now, "since": midnight, "queues": list(queues.values()),
                "agents": self._agents(tenant, now, latest), "stale_after": now + timedelta(seconds=5)}
