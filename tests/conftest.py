"""Session-wide real services for tests: started lazily, once, on loopback; never skipped.

Logic lives in ``ccod_fs.devservices``; this file only wires it into pytest.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from ccod_fs.clickhouse.client import ChdbClient, ClickHouseClient, NativeClient
from ccod_fs.devservices import ClickHouseServer, KafkaBroker, ServiceStartError

S = TypeVar("S", KafkaBroker, ClickHouseServer)
_started: list[KafkaBroker | ClickHouseServer] = []


def pytest_configure(config: pytest.Config) -> None:
    # kafka-python loads its protocol schemas through deprecated importlib.resources calls.
    for message in ("read_text is deprecated", "open_text is deprecated"):
        config.addinivalue_line("filterwarnings", f"ignore:{message}:DeprecationWarning")


def _start(service: S) -> S:
    try:
        service.start()
    except ServiceStartError as exc:
        service.close()
        pytest.fail(f"{type(service).__name__} could not start: {exc}", pytrace=False)
    _started.append(service)
    return service


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Skip interpreter finalisation when chDB is loaded: its native global-context shutdown can
    segfault at exit ("ShutdownTablesThreadPool is not initialized"), turning a green run into
    exit code 139. By now the summary is printed and session fixtures have stopped the services.
    """
    if "chdb" not in sys.modules or os.environ.get("CCOD_NORMAL_EXIT"):
        return
    for service in _started:
        if service.running():
            service.kill()
    session = getattr(config, "_ccod_session", None)
    status = int(session.exitstatus) if session is not None else 0
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config._ccod_session = session  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """Real single-node KRaft Kafka; its logs stay under pytest's basetemp for post-mortems."""
    broker = _start(KafkaBroker(workdir=tmp_path_factory.mktemp("kafka")))
    yield broker
    broker.close()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: KafkaBroker) -> str:
    return kafka_broker.bootstrap


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    """Real clickhouse-server 18.16 speaking the native protocol on a free loopback port."""
    server = _start(ClickHouseServer(workdir=tmp_path_factory.mktemp("clickhouse")))
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _revive_services() -> Iterator[None]:
    """A fault test that killed a shared service and failed before restarting it must not break the rest."""
    yield
    for service in _started:
        if not service.running():
            service.restart()


@pytest.fixture
def unique_topic(request: pytest.FixtureRequest) -> str:
    """A topic name (or prefix) unique to this test, so tests sharing one broker never collide."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name)[:80].strip("-")
    return f"t.{name}.{uuid.uuid4().hex[:8]}"


@pytest.fixture
def tmp_dir(tmp_path: Path) -> Path:
    """Per-test scratch directory (pytest's ``tmp_path``, under one name for the project's tests)."""
    return tmp_path


# ---- ClickHouse clients for tests: a fresh database each, embedded chDB or the 18.16 server ----------


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def chdb(chdb_path: Path) -> ClickHouseClient:
    """A fresh database in the process' embedded chDB engine (one engine per process)."""
    return ChdbClient(chdb_path, f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def native_factory(clickhouse_server: ClickHouseServer) -> Iterator[Callable[[str | None], NativeClient]]:
    made: list[NativeClient] = []

    def make(database: str | None = None) -> NativeClient:
        c = NativeClient(clickhouse_server.host, clickhouse_server.port, database or f"t_{uuid.uuid4().hex[:12]}")
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def native(native_factory: Callable[[str | None], NativeClient]) -> NativeClient:
    return native_factory(None)


@pytest.fixture(scope="module")
def private_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A Kafka broker of the requesting module alone: fault tests kill it without disturbing the shared one."""
    broker = _start(KafkaBroker(workdir=tmp_path_factory.mktemp("kafka-private")))
    yield broker
    broker.close()


@pytest.fixture
def private_kafka(private_broker: KafkaBroker) -> Iterator[KafkaBroker]:
    """The module's private broker, restarted after a test that left it down (so the next one starts clean)."""
    yield private_broker
    if not private_broker.running():
        private_broker.restart()
