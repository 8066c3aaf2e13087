"""Report SQL library: every query takes the tenant as a bound parameter (isolation by construction).

The ``.sql`` files in ``sql/`` are the source (documented for analysts, runnable as they are with
ClickHouse's ``{name:Type}`` parameters); this module loads them, binds parameters and applies
the tenant's service-level policy. Report SQL targets the modern engine (chDB or a server
>= 24.8); the wallboard reports also have ``sql/legacy/`` versions for ClickHouse 18.16, where
times are epoch milliseconds (the library converts the parameters).
"""

from __future__ import annotations

from dataclasses import dataclass
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


@cache
def load_sql(name: str, dialect: Dialect = Dialect.MODERN) -> str:
    """The SQL of one report; ``{call_handling}`` includes the shared per-call subquery."""
    path = SQL_DIR / f"{name}.sql" if dialect is Dialect.MODERN else SQL_DIR / "legacy" / f"{name}.sql"
    if not path.exists():
        raise NotImplementedError(f"report {name!r} needs ClickHouse >= 24.8 or chDB")
    sql = path.read_text("utf-8")
    if "{call_handling}" in sql:
        sql = sql.replace("{call_handling}", load_sql("call_handling", dialect))
    return sql


def _epoch_ms(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(milliseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _utc(value: datetime | None) -> datetime:
    value = value or datetime.now(UTC)
    if value.tzinfo is None:
        raise ValueError("report times must be timezone-aware")
    return value.astimezone(UTC)


class Reports:
    def __init__(self, client: ClickHouseClient) -> None:
        self.client = client

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
        return self.run("agents_now", tenant=tenant, now=_utc(now))

    def queue_today(self, tenant: str, since: datetime, policy: SlPolicy = SlPolicy()) -> list[dict[str, Any]]:
        rows = self.run("queue_today", tenant=tenant, **{"from": since}, **policy.params())
        for row in rows:
            row["service_level"] = row[_SL_COLUMN[policy.mode]] if policy.mode in (
                "answered_only", "abandons_fail", "short_abandons_excluded") else row["sl_abandons_fail"]
        return rows

    def wallboard(self, tenant: str, now: datetime | None = None, policy: SlPolicy = SlPolicy()) -> dict[str, Any]:
        """All queues of a tenant, now: today's counters, who waits, and agents by state."""
        now = _utc(now)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        queues = {r["queue"]: r for r in self.queue_today(tenant, midnight, policy)}
        for w in self.waiting_now(tenant, now):
            queues.setdefault(w["queue"], {"queue": w["queue"]}).update(w)
        return {"tenant": tenant, "at": now, "since": midnight, "queues": list(queues.values()),
                "agents": self.agents_now(tenant, now), "stale_after": now + timedelta(seconds=5)}
