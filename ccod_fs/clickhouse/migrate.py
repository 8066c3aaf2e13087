"""Ordered, idempotent schema migrations from ``schemas/clickhouse/NNNN_name.sql``.

Every statement is ``CREATE ... IF NOT EXISTS``, so re-running a migration (a second pod,
or a crash between the DDL and the bookkeeping row) is harmless. ``schema_migrations``
records each applied version with the checksum of its file; a recorded migration whose file
changed since is an error (ship a new migration instead of editing an applied one).
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from ccod_fs.clickhouse.client import ClickHouseClient
from ccod_fs.clickhouse.dialect import Dialect, dt64_columns, render, split_statements

log = structlog.get_logger(__name__)

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "clickhouse"

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version    UInt32,
    name       String,
    checksum   String,
    dialect    String,
    applied_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY version
"""


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    checksum: str

    @classmethod
    def load(cls, path: Path) -> Migration:
        m = _NAME.match(path.name)
        if not m:
            raise MigrationError(f"bad migration file name {path.name!r} (want NNNN_name.sql)")
        return cls(int(m.group(1)), m.group(2), path, hashlib.sha256(path.read_bytes()).hexdigest())

    def statements(self, dialect: Dialect, time_columns: frozenset[str] = frozenset()) -> list[str]:
        return [
            render(st.sql, dialect, time_columns)
            for st in split_statements(self.path.read_text("utf-8"))
            if dialect is Dialect.MODERN or not st.modern_only
        ]

    def time_columns(self) -> set[str]:
        return set().union(*(dt64_columns(st.sql) for st in split_statements(self.path.read_text("utf-8"))))


def discover(directory: Path = SCHEMA_DIR) -> list[Migration]:
    found = sorted((Migration.load(p) for p in directory.glob("*.sql")), key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {directory}")
    return found


def applied(client: ClickHouseClient) -> dict[int, str]:
    rows = client.query("SELECT version, any(checksum) AS checksum FROM schema_migrations GROUP BY version")
    return {int(r["version"]): str(r["checksum"]) for r in rows}


def _apply(client: ClickHouseClient, sql: str) -> None:
    """Run one DDL statement; a concurrent migrator that created the object first is fine."""
    try:
        client.command(sql)
    except Exception as exc:
        if "already exists" not in str(exc).lower():
            raise
        log.info("clickhouse.ddl_already_applied", detail=str(exc)[:200])


def migrate(client: ClickHouseClient, directory: Path = SCHEMA_DIR) -> list[int]:
    """Apply pending migrations in order; returns the versions applied by this call."""
    client.command(render(_BOOKKEEPING, client.dialect))
    done = applied(client)
    ran: list[int] = []
    migrations = discover(directory)
    # DateTime64 columns of every table, for legacy rewrites of views that read them
    time_columns = frozenset(set().union(*(m.time_columns() for m in migrations)))
    for mig in migrations:
        if mig.version in done:
            if done[mig.version] != mig.checksum:
                raise MigrationError(
                    f"migration {mig.version:04d}_{mig.name} changed after it was applied "
                    f"(recorded {done[mig.version][:12]}, file {mig.checksum[:12]})"
                )
            continue
        for sql in mig.statements(client.dialect, time_columns):
            _apply(client, sql)
        client.insert(
            "schema_migrations",
            {
                "version": [mig.version],
                "name": [mig.name],
                "checksum": [mig.checksum],
                "dialect": [client.dialect.value],
                "applied_at": [int(time.time() * 1000)],
            },
        )
        log.info("clickhouse.migration_applied", version=mig.version, name=mig.name, dialect=client.dialect.value)
        ran.append(mig.version)
    return ran
