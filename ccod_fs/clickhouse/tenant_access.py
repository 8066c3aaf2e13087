"""Per-tenant analyst access to ClickHouse: pure functions that emit the SQL an operator runs.

Production (ClickHouse >= 24.8, SQL-driven access control):

* :func:`provision_sql` creates user ``analyst_<tenant>`` (password given by the operator, stored
  as its SHA-256 only, ``readonly = 1``), grants ``SELECT`` on each tenant-scoped table and view
  of the ``ccod`` database (not ``ccod.*``: a table added later stays unreadable until it has a
  policy), and one RESTRICTIVE row policy ``tenant_id = '<tenant>'`` per tenant-scoped table.
* :func:`default_policy_sql` (run once) adds a PERMISSIVE ``USING 1 TO ALL`` policy on the same
  tables: every other user (sink, reports, admins) keeps seeing every row whatever the server's
  ``users_without_row_policies_can_read_rows`` is, and an analyst sees
  ``1 AND tenant_id = '<tenant>'``. Restrictive policies are ANDed with everything, so no later
  permissive policy can widen an analyst's view.
* :func:`revoke_sql` drops the user first, then its policies (the other order would leave a
  moment where the user exists under the ``USING 1`` default only).

Legacy servers (< 20, e.g. Debian's 18.16, which has neither row policies nor users.xml row
filters) enforce only ``allow_databases``, passwords and ``readonly`` profiles. A plain view
in the tenant's database over ``ccod.<table>`` is refused there ("Access denied to database
ccod", checked in tests), so :func:`legacy_provision_sql` builds database ``ccod_t_<tenant>``
holding a copy of each tenant-scoped table, fed by a materialized view
``WHERE tenant_id = '<tenant>'`` on every insert into ``ccod.<table>`` (the sink's own inserts)
and backfilled once; :func:`legacy_user` is the users.xml entry confined to that database.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

# Every table holding tenant rows (schemas/clickhouse/*.sql; all have tenant_id first in ORDER BY).
TENANT_TABLES: tuple[str, ...] = (
    "events_raw",
    "calls_partial",
    "agent_state_changes",
    "queue_interval_stats",
    "agent_interval_stats",
)
# Views over them (modern engine only); they read through the tables' row policies.
TENANT_VIEWS: tuple[str, ...] = ("calls", "agent_state_intervals")

DEFAULT_POLICY = "ccod_all_rows"
MIN_PASSWORD_LENGTH = 12

_TENANT = re.compile(r"^[a-z0-9][a-z0-9_]{0,47}$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class TenantAccessError(ValueError):
    pass


def _tenant(tenant: str) -> str:
    if not _TENANT.match(tenant):
        raise TenantAccessError(
            f"tenant id {tenant!r} cannot name a ClickHouse user/database: want [a-z0-9][a-z0-9_]{{0,47}}")
    return tenant


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise TenantAccessError(f"bad identifier {name!r}")
    return name


def _password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise TenantAccessError(f"the operator must supply a password of at least {MIN_PASSWORD_LENGTH} characters")
    return password


def analyst_user(tenant: str) -> str:
    return f"analyst_{_tenant(tenant)}"


def tenant_policy(tenant: str) -> str:
    return f"ccod_tenant_{_tenant(tenant)}"


def tenant_database(tenant: str) -> str:
    """The legacy (< 20) per-tenant database."""
    return f"ccod_t_{_tenant(tenant)}"


def _on(database: str, tables: Sequence[str]) -> str:
    return ", ".join(f"{_ident(database)}.{_ident(t)}" for t in tables)


# ---- production: ClickHouse >= 24.8 -------------------------------------------------------------


def default_policy_sql(database: str = "ccod", tables: Sequence[str] = TENANT_TABLES) -> list[str]:
    """Run once per cluster: every user keeps all rows unless a restrictive policy narrows them."""
    return [f"CREATE ROW POLICY IF NOT EXISTS {DEFAULT_POLICY} ON {_on(database, tables)} "
            f"FOR SELECT USING 1 AS PERMISSIVE TO ALL"]


def provision_sql(tenant: str, password: str, database: str = "ccod",
                  tables: Sequence[str] = TENANT_TABLES, views: Sequence[str] = TENANT_VIEWS,
                  host_ip: Sequence[str] = ()) -> list[str]:
    """Statements creating tenant ``tenant``'s read-only analyst (run after :func:`default_policy_sql`).

    The password is given by the operator (no default) and only its SHA-256 appears in the SQL.
    ``host_ip`` (CIDRs) limits where the user may connect from; empty = anywhere.
    """
    user = analyst_user(tenant)
    digest = hashlib.sha256(_password(password).encode()).hexdigest()
    hosts = " HOST " + ", ".join(f"IP '{_cidr(h)}'" for h in host_ip) if host_ip else ""
    return [
        f"CREATE USER IF NOT EXISTS {user} IDENTIFIED WITH sha256_hash BY '{digest}'{hosts} "
        f"DEFAULT DATABASE {_ident(database)} SETTINGS readonly = 1",
        f"CREATE ROW POLICY IF NOT EXISTS {tenant_policy(tenant)} ON {_on(database, tables)} "
        f"FOR SELECT USING tenant_id = '{tenant}' AS RESTRICTIVE TO {user}",
        *(f"GRANT SELECT ON {_ident(database)}.{_ident(t)} TO {user}" for t in (*tables, *views)),
    ]


def revoke_sql(tenant: str, database: str = "ccod", tables: Sequence[str] = TENANT_TABLES) -> list[str]:
    """Drop the analyst, then its policies (never a moment with the user and without its policy)."""
    return [
        f"DROP USER IF EXISTS {analyst_user(tenant)}",
        f"DROP ROW POLICY IF EXISTS {tenant_policy(tenant)} ON {_on(database, tables)}",
    ]


def _cidr(value: str) -> str:
    if not re.match(r"^[0-9A-Fa-f:.]+(/\d{1,3})?$", value):
        raise TenantAccessError(f"bad host CIDR {value!r}")
    return value


# ---- legacy: ClickHouse < 20 (Debian's 18.16) ---------------------------------------------------


# Tables written only by a materialized view of the schema. 18.16 does not cascade materialized
# views (rows an MV writes into its TO table never trigger the MVs on that table: checked in
# tests), so the tenant's copies of these are fed by the same SELECT over ``calls_partial``.
LEGACY_FED_BY: dict[str, str] = {
    "queue_interval_stats": "queue_interval_stats_mv",
    "agent_interval_stats": "agent_interval_stats_mv",
}


def legacy_feed_select(show_create: str, tenant: str) -> str:
    """The SELECT of a schema MV (``SHOW CREATE TABLE ccod.<mv>`` on 18.16) narrowed to one tenant."""
    _tenant(tenant)
    _head, sep, body = show_create.partition(" AS SELECT ")
    if not sep or body.count(" WHERE ") != 1 or body.count(" GROUP BY ") != 1:
        raise TenantAccessError(f"unexpected materialized view text: {show_create[:200]!r}")
    return ("SELECT " + body.replace(" WHERE ", f" WHERE tenant_id = '{tenant}' AND (")
            .replace(" GROUP BY ", ") GROUP BY "))


def legacy_provision_sql(tenant: str, columns: Mapping[str, Sequence[str]], source: str = "ccod",
                         feeds: Mapping[str, str] | None = None) -> list[str]:
    """DDL for the tenant's database of filtered copies; ``columns`` = {table: column names},
    ``feeds`` = {table: ``SHOW CREATE`` text of the MV in :data:`LEGACY_FED_BY`} for MV-fed tables.

    Columns are listed explicitly (read them from ``system.columns`` when provisioning) so a
    later migration adding a column to ``ccod.<table>`` never breaks the sink's inserts through
    the feeding materialized view. Order matters: the feed exists before the backfill, so no row
    inserted meanwhile is missed; a row copied twice collapses like any re-delivered event
    (ReplacingMergeTree keys, uniqExact/groupUniqArray states).
    """
    db = tenant_database(tenant)
    out = [f"CREATE DATABASE IF NOT EXISTS {db}"]
    for table, cols in columns.items():
        _ident(table)
        if not cols:
            raise TenantAccessError(f"no columns given for {table}")
        col_list = ", ".join(f"`{_ident(c)}`" for c in cols)
        where = f"WHERE tenant_id = '{tenant}'"
        if feeds and table in feeds:
            feed = legacy_feed_select(feeds[table], tenant)
        elif table in LEGACY_FED_BY:
            raise TenantAccessError(f"{table} is written by {LEGACY_FED_BY[table]}: pass its SHOW CREATE in feeds")
        else:
            feed = f"SELECT {col_list} FROM {source}.{table} {where}"
        out += [
            f"CREATE TABLE IF NOT EXISTS {db}.{table} AS {_ident(source)}.{table}",
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{table}_feed TO {db}.{table} AS {feed}",
            f"INSERT INTO {db}.{table} ({col_list}) SELECT {col_list} FROM {source}.{table} {where}",
        ]
    return out


def legacy_revoke_sql(tenant: str, tables: Sequence[str] = TENANT_TABLES) -> list[str]:
    """Stop the feeds first (the sink's inserts would otherwise still write into them), then drop."""
    db = tenant_database(tenant)
    return [*(f"DROP TABLE IF EXISTS {db}.{_ident(t)}_feed" for t in tables), f"DROP DATABASE IF EXISTS {db}"]


def legacy_columns_query(source: str = "ccod", tables: Sequence[str] = TENANT_TABLES) -> str:
    """Query giving ``(table, name)`` rows for :func:`legacy_provision_sql` (any order: columns are
    named in both the SELECT and the INSERT)."""
    names = ", ".join(f"'{_ident(t)}'" for t in tables)
    return (f"SELECT table, name FROM system.columns WHERE database = '{_ident(source)}' "
            f"AND table IN ({names})")


def legacy_user(tenant: str, password: str, networks: Sequence[str] = ("127.0.0.1", "::1"),
                profile: str = "readonly") -> dict[str, Any]:
    """The users.xml ``<users><analyst_T>`` entry: SHA-256 password, ``readonly`` profile
    (``readonly = 1``: no DDL, no INSERT, no SET, no table functions such as ``remote()``),
    and ``allow_databases`` = the tenant's database only."""
    return {
        "password_sha256_hex": hashlib.sha256(_password(password).encode()).hexdigest(),
        "networks": {"ip": list(networks)},
        "profile": profile,
        "quota": "default",
        "allow_databases": {"database": [tenant_database(tenant)]},
    }
