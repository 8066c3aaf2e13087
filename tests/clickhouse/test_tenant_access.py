"""Tenant analysts: legacy isolation proven on the real 18.16 server; production SQL checked as text
and parsed (not executed: chDB has no access management enabled) by chDB's engine."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_driver.errors import ServerException

from ccod_fs.clickhouse import tenant_access as ta
from ccod_fs.clickhouse.client import NativeClient
from ccod_fs.clickhouse.migrate import SCHEMA_DIR, migrate
from ccod_fs.devservices import ClickHouseServer

PASSWORDS = {"acme": "acme-analyst-pw-1", "globex": "globex-analyst-pw-2"}
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms
COUNTS = {"acme": 3, "globex": 2}  # calls per tenant


def _rows(tenant: str, n_calls: int) -> dict[str, dict[str, list[object]]]:
    ev: dict[str, list[object]] = {k: [] for k in ("tenant_id", "occurred_at", "event_id", "type", "call_id",
                                                  "agent_id", "queue_id", "payload")}
    cp: dict[str, list[object]] = {k: [] for k in ("tenant_id", "call_id", "event_id", "type", "at", "queue_id",
                                                  "agent_id", "queued_at", "answered_at", "answer_wait_ms")}
    ag: dict[str, list[object]] = {k: [] for k in ("tenant_id", "agent_id", "kind", "value", "previous",
                                                  "changed_at", "event_id")}
    for i in range(n_calls):
        at = T0 + i * 60_000
        call, agent, eid = f"{tenant}-call-{i}", f"{tenant}-agent", str(uuid.uuid4())
        for k, v in zip(ev, (tenant, at, eid, "call.answered", call, agent, "sales", "{}"), strict=True):
            ev[k].append(v)
        for k, v in zip(cp, (tenant, call, eid, "call.answered", at, "sales", agent, at - 5000, at, 5000),
                        strict=True):
            cp[k].append(v)
        for k, v in zip(ag, (tenant, agent, "state", "In a queue call", "Waiting", at, str(uuid.uuid4())),
                        strict=True):
            ag[k].append(v)
    return {"events_raw": ev, "calls_partial": cp, "agent_state_changes": ag}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    users = {ta.analyst_user(t): ta.legacy_user(t, pw) for t, pw in PASSWORDS.items()}
    srv = ClickHouseServer(workdir=tmp_path_factory.mktemp("ch_tenants"), extra_users=users).start()
    admin = NativeClient(srv.host, srv.port, "ccod")
    try:
        migrate(admin)
        # rows before provisioning (backfill) and after (fed by the materialized views)
        for tenant in PASSWORDS:
            for table, cols in _rows(tenant, COUNTS[tenant] - 1).items():
                admin.insert(table, cols)
        columns: dict[str, list[str]] = {}
        for r in admin.query(ta.legacy_columns_query()):
            columns.setdefault(r["table"], []).append(r["name"])
        assert set(columns) == set(ta.TENANT_TABLES)
        feeds = {t: admin.query(f"SHOW CREATE TABLE ccod.{mv}")[0]["statement"] for t, mv in ta.LEGACY_FED_BY.items()}
        for tenant in PASSWORDS:
            for sql in ta.legacy_provision_sql(tenant, columns, feeds=feeds):
                admin.command(sql)
        for tenant in PASSWORDS:
            for table, cols in _rows(tenant, 1).items():
                if "call_id" in cols:
                    cols["call_id"] = [f"{tenant}-late-call"]
                admin.insert(table, cols)
        yield srv
    finally:
        admin.close()
        srv.close()


def _analyst(server: ClickHouseServer, tenant: str, password: str | None = None) -> object:
    return server.client(user=ta.analyst_user(tenant), password=password or PASSWORDS[tenant],
                         database=ta.tenant_database(tenant))


def test_server_is_legacy(server: ClickHouseServer) -> None:
    assert server.version().startswith("18.")


def test_a_plain_view_into_ccod_is_refused_on_1816(server: ClickHouseServer) -> None:
    """Why the legacy path copies rows: a view does not lend its reader access to ccod."""
    admin = server.client()
    admin.execute("CREATE VIEW IF NOT EXISTS ccod_t_acme.plain_view AS "
                  "SELECT * FROM ccod.events_raw WHERE tenant_id = 'acme'")
    analyst = _analyst(server, "acme")
    try:
        with pytest.raises(ServerException, match="Access denied to database ccod"):
            analyst.execute("SELECT count() FROM plain_view")  # type: ignore[attr-defined]
    finally:
        admin.execute("DROP TABLE ccod_t_acme.plain_view")
        admin.disconnect()
        analyst.disconnect()  # type: ignore[attr-defined]


def test_1816_does_not_cascade_materialized_views(server: ClickHouseServer) -> None:
    """Why MV-fed tables get their own feed (LEGACY_FED_BY): rows an MV writes do not trigger MVs."""
    admin = server.client()
    try:
        admin.execute("CREATE DATABASE cascade_check")
        for t in ("src", "mid", "dst"):
            admin.execute(f"CREATE TABLE cascade_check.{t} (n UInt32) ENGINE = MergeTree ORDER BY n")
        for mv, dst, src in (("m1", "mid", "src"), ("m2", "dst", "mid")):
            admin.execute(f"CREATE MATERIALIZED VIEW cascade_check.{mv} TO cascade_check.{dst} "
                          f"AS SELECT n FROM cascade_check.{src}")
        admin.execute("INSERT INTO cascade_check.src VALUES", [(1,)])
        assert admin.execute("SELECT count() FROM cascade_check.mid") == [(1,)]
        assert admin.execute("SELECT count() FROM cascade_check.dst") == [(0,)]
    finally:
        admin.execute("DROP DATABASE IF EXISTS cascade_check")
        admin.disconnect()


@pytest.mark.parametrize("tenant", sorted(PASSWORDS))
def test_analyst_sees_exactly_its_rows_in_every_table(server: ClickHouseServer, tenant: str) -> None:
    admin, analyst = server.client(), _analyst(server, tenant)
    try:
        own = {t for (t,) in analyst.execute("SHOW TABLES")}  # type: ignore[attr-defined]
        assert own == set(ta.TENANT_TABLES) | {f"{t}_feed" for t in ta.TENANT_TABLES}
        for table in ta.TENANT_TABLES:
            got = analyst.execute(  # type: ignore[attr-defined]
                f"SELECT tenant_id, count() FROM {table} GROUP BY tenant_id")
            truth = admin.execute(
                f"SELECT tenant_id, count() FROM ccod.{table} WHERE tenant_id = '{tenant}' GROUP BY tenant_id")
            assert got == truth and truth, table
            feed = analyst.execute(f"SELECT count() FROM {table}_feed")  # type: ignore[attr-defined]
            assert feed == [(truth[0][1],)], table
        calls = analyst.execute("SELECT uniqExact(call_id) FROM calls_partial")  # type: ignore[attr-defined]
        assert calls == [(COUNTS[tenant],)]  # backfilled rows + the one fed after provisioning
        answered = analyst.execute(  # type: ignore[attr-defined]
            "SELECT uniqExactIfMerge(answered) FROM queue_interval_stats")
        assert answered == [(COUNTS[tenant],)]
        by_agent = analyst.execute(  # type: ignore[attr-defined]
            "SELECT agent_id, uniqExactIfMerge(answered) FROM agent_interval_stats GROUP BY agent_id")
        assert by_agent == [(f"{tenant}-agent", COUNTS[tenant])]
    finally:
        admin.disconnect()
        analyst.disconnect()  # type: ignore[attr-defined]


@pytest.mark.parametrize("query", [
    *(f"SELECT count() FROM ccod.{t}" for t in ta.TENANT_TABLES),
    *(f"SELECT count() FROM ccod_t_globex.{t}" for t in ta.TENANT_TABLES),
    "SELECT count() FROM ccod.schema_migrations",
    "SELECT count() FROM default.system_check",
])
def test_other_tenants_and_the_base_database_are_denied(server: ClickHouseServer, query: str) -> None:
    analyst = _analyst(server, "acme")
    try:
        with pytest.raises(ServerException, match="Access denied to database"):
            analyst.execute(query)  # type: ignore[attr-defined]
    finally:
        analyst.disconnect()  # type: ignore[attr-defined]


@pytest.mark.parametrize("query", [
    "SELECT count() FROM remote('127.0.0.1:{port}', ccod, events_raw, 'default', '')",
    "SELECT count() FROM merge('ccod', '')",
    "SELECT count() FROM url('http://127.0.0.1:{http}/?query=SELECT+1', CSV, 'x UInt8')",
    "SET readonly = 0",
    "USE ccod",
    "INSERT INTO events_raw (tenant_id) SELECT 'acme'",
    "CREATE TABLE x (n UInt8) ENGINE = Memory",
    "DROP TABLE events_raw_feed",
])
def test_analyst_cannot_escape_or_write(server: ClickHouseServer, query: str) -> None:
    analyst = _analyst(server, "acme")
    try:
        with pytest.raises(ServerException, match=r"readonly mode|Access denied|Cannot execute query in readonly"):
            analyst.execute(query.format(port=server.port, http=server.http_port))  # type: ignore[attr-defined]
    finally:
        analyst.disconnect()  # type: ignore[attr-defined]


def test_system_catalog_lists_only_the_analysts_database(server: ClickHouseServer) -> None:
    analyst = _analyst(server, "acme")
    try:
        for table in ("tables", "columns", "parts"):
            dbs = {d for (d,) in analyst.execute(f"SELECT DISTINCT database FROM system.{table}")}  # type: ignore[attr-defined]
            assert dbs <= {"ccod_t_acme", "system"}, table
    finally:
        analyst.disconnect()  # type: ignore[attr-defined]


def test_wrong_password_and_other_tenants_password_fail(server: ClickHouseServer) -> None:
    for pw in ("wrong-password-123", PASSWORDS["globex"]):
        with pytest.raises(ServerException, match=r"Wrong password|Authentication failed"):
            _analyst(server, "acme", pw).execute("SELECT 1")  # type: ignore[attr-defined]


def test_legacy_revoke_stops_the_feed_and_drops_the_database(server: ClickHouseServer, tmp_path: Path) -> None:
    admin = NativeClient(server.host, server.port, "ccod")
    try:
        admin.command("CREATE DATABASE IF NOT EXISTS ccod_t_gone")
        admin.command("CREATE TABLE ccod_t_gone.events_raw AS ccod.events_raw")
        admin.command("CREATE MATERIALIZED VIEW ccod_t_gone.events_raw_feed TO ccod_t_gone.events_raw "
                      "AS SELECT * FROM ccod.events_raw WHERE tenant_id = 'gone'")
        for sql in ta.legacy_revoke_sql("gone"):
            admin.command(sql)
        assert admin.query("SELECT count() AS n FROM system.databases WHERE name = 'ccod_t_gone'") == [{"n": 0}]
        admin.insert("events_raw", _rows("gone", 1)["events_raw"])  # the sink's inserts still work
    finally:
        admin.close()


# ---- production SQL (>= 24.8) -------------------------------------------------------------------


# The wallboard's serving tables (0006) are copies of rows analysts already read in the tables
# above; they are listed here on purpose, so they stay ungranted (per-object grants) until added
# to tenant_access.TENANT_TABLES. Any other new table still fails this test.
NOT_GRANTED = {"queue_interval_counters", "queue_wait_events", "agent_state_now"}


def test_every_tenant_table_in_the_schema_is_covered() -> None:
    text = "\n".join(p.read_text() for p in sorted(SCHEMA_DIR.glob("*.sql")))
    tables = set(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", text))
    views = set(re.findall(r"CREATE VIEW IF NOT EXISTS (\w+)", text))
    assert NOT_GRANTED <= tables
    assert tables - NOT_GRANTED == set(ta.TENANT_TABLES)
    assert views == set(ta.TENANT_VIEWS)


def test_production_sql_for_two_tenants() -> None:
    on = ("ccod.events_raw, ccod.calls_partial, ccod.agent_state_changes, ccod.queue_interval_stats, "
          "ccod.agent_interval_stats")
    assert ta.default_policy_sql() == [
        f"CREATE ROW POLICY IF NOT EXISTS ccod_all_rows ON {on} FOR SELECT USING 1 AS PERMISSIVE TO ALL"]
    for tenant, pw in PASSWORDS.items():
        stmts = ta.provision_sql(tenant, pw, host_ip=["10.0.0.0/8"])
        digest = __import__("hashlib").sha256(pw.encode()).hexdigest()
        assert stmts[0] == (f"CREATE USER IF NOT EXISTS analyst_{tenant} IDENTIFIED WITH sha256_hash BY "
                            f"'{digest}' HOST IP '10.0.0.0/8' DEFAULT DATABASE ccod SETTINGS readonly = 1")
        assert stmts[1] == (f"CREATE ROW POLICY IF NOT EXISTS ccod_tenant_{tenant} ON {on} FOR SELECT "
                            f"USING tenant_id = '{tenant}' AS RESTRICTIVE TO analyst_{tenant}")
        assert stmts[2:] == [f"GRANT SELECT ON ccod.{t} TO analyst_{tenant}"
                             for t in (*ta.TENANT_TABLES, *ta.TENANT_VIEWS)]
        assert all(pw not in s for s in stmts)
        assert ta.revoke_sql(tenant) == [f"DROP USER IF EXISTS analyst_{tenant}",
                                         f"DROP ROW POLICY IF EXISTS ccod_tenant_{tenant} ON {on}"]


@pytest.mark.parametrize("tenant,password", [
    ("acme", ""), ("acme", "short"), ("Acme", "long-enough-pw"), ("a'; DROP", "long-enough-pw"),
    ("", "long-enough-pw"), ("x" * 49, "long-enough-pw"),
])
def test_bad_input_is_refused(tenant: str, password: str) -> None:
    with pytest.raises(ta.TenantAccessError):
        ta.provision_sql(tenant, password)
    with pytest.raises(ta.TenantAccessError):
        ta.legacy_user(tenant, password)


def test_production_sql_parses_in_chdb_but_is_not_enforced_there(chdb: object) -> None:
    """chDB (engine 26.x) parses every statement (the answer is ACCESS_DENIED, code 497, or for a
    GRANT to a user it could not create UNKNOWN_ROLE, 511; never a syntax error, 62) but has no
    access management enabled, so nothing is executed or enforced here."""
    chdb.command("CREATE DATABASE IF NOT EXISTS ccod")  # type: ignore[attr-defined]
    for table in ta.TENANT_TABLES:
        chdb.command(f"CREATE TABLE IF NOT EXISTS ccod.{table} (tenant_id String) "  # type: ignore[attr-defined]
                     "ENGINE = MergeTree ORDER BY tenant_id")
    stmts = [*ta.default_policy_sql(), *ta.provision_sql("acme", PASSWORDS["acme"]), *ta.revoke_sql("acme")]
    for sql in stmts:
        with pytest.raises(Exception) as info:
            chdb.command(sql)  # type: ignore[attr-defined]
        assert re.match(r"Code: (497|511)\.", str(info.value)), (sql, str(info.value)[:300])
