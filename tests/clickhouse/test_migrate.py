from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from ccod_fs.clickhouse.migrate import SCHEMA_DIR, MigrationError, discover, migrate

EXPECTED_TABLES = {"events_raw", "calls_partial", "agent_state_changes", "schema_migrations",
                   "queue_interval_stats", "queue_interval_stats_mv", "agent_interval_stats", "agent_interval_stats_mv"}
MODERN_ONLY = {"calls", "agent_state_intervals"}


def _tables(client) -> set[str]:
    rows = client.query("SELECT name FROM system.tables WHERE database = {db:String}", {"db": client.database})
    return {r["name"] for r in rows}


def test_migrations_are_ordered_and_named() -> None:
    migs = discover()
    assert [m.version for m in migs] == sorted(m.version for m in migs)
    assert migs[0].version == 1


def test_chdb_migrate_twice_applies_once(chdb) -> None:
    first = migrate(chdb)
    assert first == [m.version for m in discover()]
    assert migrate(chdb) == []
    assert EXPECTED_TABLES | MODERN_ONLY <= _tables(chdb)
    rows = chdb.query("SELECT version, checksum, dialect FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in rows] == first
    assert {r["dialect"] for r in rows} == {"modern"}
    types = {r["name"]: r["type"] for r in chdb.query(
        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = 'events_raw'",
        {"db": chdb.database})}
    assert types["occurred_at"] == "DateTime64(3, 'UTC')"
    assert types["tenant_id"] == "LowCardinality(String)"


def test_changed_applied_migration_is_refused(chdb, tmp_path: Path) -> None:
    schema = tmp_path / "schema"
    shutil.copytree(SCHEMA_DIR, schema)
    migrate(chdb, schema)
    first = sorted(schema.glob("0001_*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited after release\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(chdb, schema)


def test_new_migration_is_applied_later(chdb, tmp_path: Path) -> None:
    schema = tmp_path / "schema"
    shutil.copytree(SCHEMA_DIR, schema)
    migrate(chdb, schema)
    extra = "CREATE TABLE IF NOT EXISTS extra (x UInt8) ENGINE = MergeTree ORDER BY x;\n"
    (schema / "0999_extra.sql").write_text(extra)
    assert migrate(chdb, schema) == [999]
    assert "extra" in _tables(chdb)


def test_legacy_server_migrates_with_rewritten_ddl(native) -> None:
    assert native.dialect.value == "legacy"  # Debian's 18.16
    assert migrate(native) == [m.version for m in discover()]
    assert migrate(native) == []
    tables = _tables(native)
    assert EXPECTED_TABLES <= tables
    assert not (MODERN_ONLY & tables)
    types = {r["name"]: r["type"] for r in native.query(
        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = 'events_raw'",
        {"db": native.database})}
    assert types["occurred_at"] == "UInt64"
    assert types["tenant_id"] == "String"


def test_two_migrators_at_once_on_the_server(native_factory) -> None:
    a = native_factory(None)
    b = native_factory(a.database)
    errors: list[BaseException] = []

    def run(client) -> None:
        try:
            migrate(client)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert migrate(a) == []
    versions = a.query("SELECT DISTINCT version FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in versions] == [m.version for m in discover()]
