"""The dev services are real: data goes through the real Kafka and ClickHouse, and survives a crash."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from clickhouse_driver.errors import ServerException
from kafka import KafkaConsumer, KafkaProducer

from ccod_fs.devservices import ClickHouseServer, KafkaBroker, ServiceStartError
from ccod_fs.devservices.clickhouse import tenant_user
from ccod_fs.devservices.kafka import ensure_kafka_libs


def _produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                             linger_ms=5)
    try:
        for key, value in messages:
            producer.send(topic, key=key, value=value)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)


def _consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 60.0) -> list[tuple[int, bytes, bytes]]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"g-{topic}",
                             auto_offset_reset="earliest", enable_auto_commit=False)
    got: list[tuple[int, bytes, bytes]] = []
    try:
        deadline = time.monotonic() + timeout
        while len(got) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got.extend((r.partition, r.key, r.value) for r in records)
    finally:
        consumer.close()
    return got


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_kafka_round_trip_keeps_per_key_order(kafka_broker: KafkaBroker, unique_topic: str) -> None:
    kafka_broker.create_topics([unique_topic], partitions=4)
    sent = [(f"call-{i % 7}".encode(), f"{i}".encode()) for i in range(300)]
    _produce(kafka_broker.bootstrap, unique_topic, sent)

    got = _consume_all(kafka_broker.bootstrap, unique_topic, len(sent))

    assert sorted(v for _, _, v in got) == sorted(v for _, v in sent)
    assert len({p for p, _, _ in got}) > 1, "7 keys over 4 partitions should use several partitions"
    for key in {k for k, _ in sent}:
        assert [v for _, k, v in got if k == key] == [v for k, v in sent if k == key]


def test_kafka_data_survives_kill_and_restart(kafka_broker: KafkaBroker, unique_topic: str) -> None:
    kafka_broker.create_topics([unique_topic], partitions=2)
    before = [(b"k%d" % i, b"before-%d" % i) for i in range(50)]
    _produce(kafka_broker.bootstrap, unique_topic, before)
    port = kafka_broker.port

    kafka_broker.kill()
    assert not kafka_broker.running()
    assert not _port_open(port)

    kafka_broker.restart()
    assert kafka_broker.port == port and kafka_broker.running()
    after = [(b"k%d" % i, b"after-%d" % i) for i in range(10)]
    _produce(kafka_broker.bootstrap, unique_topic, after)

    got = _consume_all(kafka_broker.bootstrap, unique_topic, len(before) + len(after))
    assert sorted(v for _, _, v in got) == sorted(v for _, v in before + after)


def test_kafka_jars_are_resolved_once(kafka_broker: KafkaBroker) -> None:
    started = time.monotonic()
    libs = ensure_kafka_libs()
    assert time.monotonic() - started < 1.0, "second resolution must hit the cache, not Maven"
    assert (libs / ".complete").exists()
    assert any(p.name.startswith("kafka_2.13-3.9.1") for p in libs.glob("*.jar"))


def test_clickhouse_is_the_old_debian_server(clickhouse_server: ClickHouseServer) -> None:
    assert clickhouse_server.version().startswith("18.16")


def test_clickhouse_mergetree_round_trip_over_native_protocol(clickhouse_server: ClickHouseServer) -> None:
    client = clickhouse_server.client()
    client.execute("CREATE DATABASE IF NOT EXISTS devservices_rt")
    client.execute("DROP TABLE IF EXISTS devservices_rt.calls")
    client.execute(
        "CREATE TABLE devservices_rt.calls (tenant String, call_id String, started DateTime,"
        " day Date, talk_ms UInt32) ENGINE = MergeTree() PARTITION BY toYYYYMM(day)"
        " ORDER BY (tenant, call_id)"
    )
    from datetime import date, datetime

    rows = [("acme", f"c{i}", datetime(2026, 1, 2, 3, 4, i), date(2026, 1, 2), i * 1000) for i in range(5)]
    rows.append(("globex", "g1", datetime(2026, 2, 1, 0, 0, 0), date(2026, 2, 1), 42))
    client.execute("INSERT INTO devservices_rt.calls VALUES", rows)

    result = client.execute(
        "SELECT tenant, count(), sum(talk_ms), max(started) FROM devservices_rt.calls"
        " GROUP BY tenant ORDER BY tenant"
    )
    assert result == [("acme", 5, 10000, datetime(2026, 1, 2, 3, 4, 4)),
                      ("globex", 1, 42, datetime(2026, 2, 1, 0, 0, 0))]
    parts = client.execute(
        "SELECT DISTINCT partition FROM system.parts WHERE database = 'devservices_rt' AND active"
    )
    assert sorted(p for (p,) in parts) == ["202601", "202602"]


def test_clickhouse_tenant_user_is_confined_to_its_database(tmp_path: Path) -> None:
    users = {"tenant_acme": tenant_user("s3cret", "acme")}
    with ClickHouseServer(workdir=tmp_path, extra_users=users) as server:
        admin = server.client()
        for db in ("acme", "globex"):
            admin.execute(f"CREATE DATABASE {db}")
            admin.execute(f"CREATE TABLE {db}.calls (n UInt8) ENGINE = MergeTree() ORDER BY n")
            admin.execute(f"INSERT INTO {db}.calls VALUES", [(1,), (2,)])

        tenant = server.client(user="tenant_acme", password="s3cret", database="acme")
        assert tenant.execute("SELECT count() FROM calls") == [(2,)]
        with pytest.raises(ServerException, match="Access denied to database globex"):
            tenant.execute("SELECT count() FROM globex.calls")
        with pytest.raises(ServerException, match="Wrong password"):
            server.client(user="tenant_acme", password="nope").execute("SELECT 1")
        for client in (admin, tenant):
            client.disconnect()


def test_clickhouse_1816_ignores_users_xml_row_filters(tmp_path: Path) -> None:
    """Pins down a limit of the old server: row filters must not be relied on for tenant isolation."""
    users = {"tenant_acme": tenant_user("s3cret", "ccod", row_filters={"calls": "tenant = 'acme'"})}
    with ClickHouseServer(workdir=tmp_path, extra_users=users) as server:
        admin = server.client()
        admin.execute("CREATE DATABASE ccod")
        admin.execute("CREATE TABLE ccod.calls (tenant String, n UInt8) ENGINE = MergeTree() ORDER BY n")
        admin.execute("INSERT INTO ccod.calls VALUES", [("acme", 1), ("globex", 2)])
        tenant = server.client(user="tenant_acme", password="s3cret")
        seen = tenant.execute("SELECT tenant FROM ccod.calls ORDER BY n")
        if server.version().startswith("18."):
            assert seen == [("acme",), ("globex",)]
        else:
            assert seen == [("acme",)]
        for client in (admin, tenant):
            client.disconnect()


def test_clickhouse_start_failure_is_explained(tmp_path: Path) -> None:
    server = ClickHouseServer(workdir=tmp_path, startup_timeout=20)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", server.port))
        squatter.listen()
        with pytest.raises(ServiceStartError, match="clickhouse"):
            server.start()
    server.close()
    assert not server.running()


def test_a_service_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    """A killed test or benchmark process must not leave its broker running (atexit never runs then)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from ccod_fs.devservices.process import ManagedProcess\n"
        "p = ManagedProcess('sleeper', ['sleep', '300'], Path(sys.argv[1]), Path(sys.argv[1]) / 'out.log')\n"
        "p.start()\n"
        "print('PID', p.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    line = parent.stdout.readline()
    while not line.startswith("PID "):  # the service's own log lines come first
        line = parent.stdout.readline()
    child = int(line.split()[1])
    os.kill(child, 0)  # running
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    raise AssertionError("the service outlived the process that started it")
