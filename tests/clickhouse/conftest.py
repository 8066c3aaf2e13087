from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from ccod_fs.clickhouse.client import ChdbClient, ClickHouseClient, NativeClient


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def chdb(chdb_path) -> ClickHouseClient:
    """A fresh database in the process' embedded chDB engine."""
    return ChdbClient(chdb_path, f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def native_factory(clickhouse_server) -> Iterator[Callable[[str | None], NativeClient]]:
    made: list[NativeClient] = []

    def make(database: str | None = None) -> NativeClient:
        c = NativeClient(clickhouse_server.host, clickhouse_server.port, database or f"t_{uuid.uuid4().hex[:12]}")
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def native(native_factory) -> NativeClient:
    return native_factory(None)
