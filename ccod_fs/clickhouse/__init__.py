"""ClickHouse access: one small client interface (embedded chDB or a server), DDL dialects, migrations."""

from ccod_fs.clickhouse.client import ClickHouseClient, connect
from ccod_fs.clickhouse.dialect import Dialect

__all__ = ["ClickHouseClient", "Dialect", "connect"]
