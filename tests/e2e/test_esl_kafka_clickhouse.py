"""Walking skeleton, end to end on real parts: simulated FreeSWITCH (real ESL over TCP) ->
``ccod-fs ingest`` process -> real Kafka -> sink -> real ClickHouse server (native protocol)."""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from ccod_fs.clickhouse.client import NativeClient
from ccod_fs.clickhouse.migrate import migrate
from ccod_fs.devservices.clickhouse import ClickHouseServer
from ccod_fs.settings import KafkaSettings
from ccod_fs.simulator.loadgen import LoadProfile, LoadSimulation
from ccod_fs.simulator.loadstream import NodeLoad
from ccod_fs.simulator.server import SimulatorServer
from ccod_fs.sink.service import SinkService, build_consumer, build_dlq_producer
from ccod_fs.sink.writer import Sink
from tests.e2e.helpers import read_topic, start_ingest, stop


def test_simulated_calls_reach_clickhouse_with_exact_ids_times_and_durations(
    kafka_bootstrap: str, clickhouse_server: ClickHouseServer, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    events_topic, dlq_topic = f"ccod.events.v1.e2e{suffix}", f"ccod.deadletter.v1.e2e{suffix}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(events_topic, 4, 1), NewTopic(dlq_topic, 1, 1)])
    admin.close()

    profile = LoadProfile(calls=40, nodes=1, tenants=2, arrivals_per_s=0.3, seed=11)
    simulation = LoadSimulation(profile)
    node = simulation.nodes[0]
    password = secrets.token_urlsafe(10)
    server = SimulatorServer(password=password, node=node, start_us=profile.start_us)
    NodeLoad(simulation, 0).configure(server.state)
    port = server.start()
    ingest = start_ingest(esl_port=port, password=password, node=node.hostname, bootstrap=kafka_bootstrap,
                          events_topic=events_topic, dead_letter_topic=dlq_topic, spool_dir=tmp_path / "spool",
                          log_path=tmp_path / "ingest.log")
    try:
        server.wait_for_subscribers(1, timeout=60)
        server.play(NodeLoad(simulation, 0)).wait(120)
        records = read_topic(kafka_bootstrap, events_topic, expect_at_least=40 * 5)
    finally:
        code = stop(ingest)
        server.stop()
    assert code == 0, (tmp_path / "ingest.log").read_text()[-3000:]
    assert read_topic(kafka_bootstrap, dlq_topic, idle_s=1.0, timeout=10) == []

    database = f"e2e_{suffix}"
    NativeClient(clickhouse_server.host, clickhouse_server.port, "default").command(
        f"CREATE DATABASE IF NOT EXISTS {database}")
    client = NativeClient(clickhouse_server.host, clickhouse_server.port, database)
    migrate(client)
    kafka = KafkaSettings(bootstrap=kafka_bootstrap, events_topic=events_topic, dead_letter_topic=dlq_topic,
                          client_id="e2e")
    service = SinkService(build_consumer(kafka, f"sink-{suffix}"), build_dlq_producer(kafka), Sink(client),
                          dead_letter_topic=dlq_topic, origin="e2e", batch_max_events=500, batch_max_age_s=0.2)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 180
    while service.stats["events"] < len(records) and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.2)
    service.stop()
    thread.join(30)
    assert service.stats["events"] == len(records)

    raw = client.query("SELECT count() AS n, uniqExact(event_id) AS ids, min(occurred_at) AS first FROM events_raw")
    assert raw[0]["n"] == raw[0]["ids"] == len(records)
    # 18.16 has no DateTime64: the legacy dialect stores epoch milliseconds; sub-second digits survive.
    assert raw[0]["first"] % 1000 != 0 or raw[0]["first"] > 1_700_000_000_000

    # events_raw is the analysts' ground truth; read the per-call facts back from it.
    rows = client.query(
        "SELECT tenant_id, call_id, minIf(occurred_at, type = 'call.queued') AS q_at, "
        "minIf(occurred_at, type = 'call.answered') AS a_at, "
        "maxIf(visitParamExtractUInt(payload, 'wait_ms'), type = 'call.answered') AS wait_ms, "
        "anyIf(agent_id, type = 'call.answered') AS agent, "
        "groupArrayIf(visitParamExtractUInt(payload, 'talk_ms'), type = 'call.agent_ended') AS talks "
        "FROM events_raw WHERE call_id != '' GROUP BY tenant_id, call_id HAVING countIf(type = 'call.queued') > 0"
    )
    by_call = {r["call_id"]: r for r in rows}
    assert set(by_call) == {t.caller_uuid for t in simulation.truth}
    answered = 0
    for truth in simulation.truth:
        row = by_call[truth.caller_uuid]
        assert row["tenant_id"] == truth.tenant
        assert row["q_at"] == truth.joined_us // 1000
        if truth.outcome == "answered":
            answered += 1
            assert abs(row["a_at"] - truth.answered_us // 1000) <= 50
            # wait and talk come from the legs' µs channel times; the simulator's truth marks the
            # queue events, which FreeSWITCH fires a few ms apart from the leg transitions.
            assert abs(row["wait_ms"] - truth.wait_us // 1000) <= 50
            assert row["agent"] is not None and row["agent"].split("@")[0] == truth.agent.split("@")[0]
            talk_ms = sum(row["talks"])
            assert abs(talk_ms - truth.talk_us // 1000) <= 250, truth  # agent leg hangs up before member-queue-end
        else:
            assert row["a_at"] == 0 and row["agent"] == ""
    assert answered == sum(1 for t in simulation.truth if t.outcome == "answered") > 0
    # millisecond precision survives end to end: not every timestamp sits on a whole second
    assert sum(1 for r in rows if r["q_at"] % 1000) > len(rows) // 2
