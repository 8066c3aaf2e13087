"""Fault test of the sink on real parts (issue 3, "Fault tests"): the canonical events of a simulated
load in real Kafka -> SinkService -> the real ClickHouse 18.16 server, through a 30 s SIGKILL outage
of ClickHouse, a sink crash between insert and commit, and a replay of the whole topic by a new
consumer group into the same database. Afterwards every report this server runs equals the
simulator's ground truth exactly, and events_raw holds each canonical event id once.

Reports on 18.16: only the wallboard ones have legacy SQL (queue_today, waiting_now, agents_now);
queue_kpis / agent_kpis / call_handling need a modern engine (the library raises NotImplementedError).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from ccod_fs.clickhouse.client import NativeClient
from ccod_fs.clickhouse.migrate import migrate
from ccod_fs.devservices.clickhouse import ClickHouseServer
from ccod_fs.reports.library import Reports
from ccod_fs.simulator.loadgen import LoadProfile, LoadSimulation
from ccod_fs.sink.writer import Sink
from tests.e2e.sink_fault_helpers import (
    Crash,
    CrashableSink,
    canonical_events,
    committed,
    produce,
    start_sink,
    wait_for,
)

CALLS = 20_000
OUTAGE_S = 30.0
PARTITIONS = 4
# 24 agents (3 tenants x 2 queues x 4) with 45 s mean talk: ~0.5 calls/s keeps the queues staffed
# but busy, so every outcome (answered, abandoned waiting/ringing, timeouts) occurs.
PROFILE = LoadProfile(calls=CALLS, nodes=2, tenants=3, arrivals_per_s=0.5, seed=31)


def test_clickhouse_outage_sink_crash_and_replay_keep_every_report_exact(
    kafka_bootstrap: str, clickhouse_server: ClickHouseServer
) -> None:
    started = time.monotonic()
    simulation = LoadSimulation(PROFILE)
    truth = simulation.totals()
    events = canonical_events(simulation)
    total = len(events)
    built_s = time.monotonic() - started

    suffix = uuid.uuid4().hex[:8]
    topic, dlq_topic = f"ccod.events.v1.sinkfaults{suffix}", f"ccod.deadletter.v1.sinkfaults{suffix}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1), NewTopic(dlq_topic, 1, 1)])
    admin.close()
    produce(kafka_bootstrap, topic, events)
    produced_s = time.monotonic() - started

    database = f"sinkfaults_{suffix}"
    admin_client = NativeClient(clickhouse_server.host, clickhouse_server.port, "default")
    admin_client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    admin_client.close()
    clients = [NativeClient(clickhouse_server.host, clickhouse_server.port, database) for _ in range(3)]
    migrate(clients[0])

    # 1. first group: ClickHouse is SIGKILLed mid-consumption for 30 s, then the sink crashes
    #    between an insert and its commit.
    first = f"first-{suffix}"
    crashable = CrashableSink(clients[0])
    sink_a = start_sink(kafka_bootstrap, topic, dlq_topic, first, crashable)
    try:
        wait_for(lambda: sink_a.events >= total // 4 or not sink_a.alive(), 180,
                 lambda: f"the first sink to write a quarter: {sink_a.service.stats} {sink_a.errors}")
        assert sink_a.alive(), sink_a.errors
        before = sink_a.events
        retries = sink_a.service.stats["retries"]
        clickhouse_server.kill()
        killed_at = time.monotonic()
        try:
            assert not clickhouse_server.running()
            while time.monotonic() - killed_at < OUTAGE_S:
                assert sink_a.alive(), f"sink died during the outage: {sink_a.errors}"
                time.sleep(0.2)
            # at most the batch in flight at the kill may have completed; nothing after that
            assert sink_a.events <= before + sink_a.service.batch_max_events
            assert sink_a.service.stats["retries"] > retries, "the sink never retried while ClickHouse was down"
        finally:
            clickhouse_server.restart()
        outage_s = time.monotonic() - killed_at
        during = sink_a.events
        # the first batch inserted after 60% of the topic is committed: inserted, never committed
        # (batches are at most 20,000 events, so one always starts between 60% and the end)
        crash_at = max(total * 6 // 10, during + 1)
        crashable.crash_when = lambda: sink_a.events >= crash_at
        wait_for(lambda: not sink_a.alive(), 180,
                 lambda: f"the sink to crash after an insert: {sink_a.service.stats} {sink_a.errors}")
        assert sink_a.events < total
    finally:
        sink_a.close()
    assert len(sink_a.errors) == 1 and isinstance(sink_a.errors[0], Crash), sink_a.errors
    assert crashable.crashed_rows > 0
    assert committed(kafka_bootstrap, topic, first, PARTITIONS) < total, "the crashed batch must stay uncommitted"

    # 2. a new sink in the same group resumes from the committed offsets (re-inserting the crashed batch)
    sink_b = start_sink(kafka_bootstrap, topic, dlq_topic, first, Sink(clients[1]))
    try:
        wait_for(lambda: committed(kafka_bootstrap, topic, first, PARTITIONS) == total, 180,
                 lambda: f"the resumed sink to commit all {total}: {sink_b.service.stats} {sink_b.errors}",
                 interval=1.0)
    finally:
        sink_b.close()
    assert not sink_b.errors

    # 3. replay the whole topic from the beginning with a new group into the same database
    sink_c = start_sink(kafka_bootstrap, topic, dlq_topic, f"replay-{suffix}", Sink(clients[2]))
    try:
        wait_for(lambda: sink_c.events >= total, 180,
                 lambda: f"the replay to write all {total}: {sink_c.service.stats} {sink_c.errors}")
    finally:
        sink_c.close()
    assert not sink_c.errors and sink_c.events == total
    assert sink_a.service.stats["dead_letters"] == sink_b.service.stats["dead_letters"] == 0
    assert sink_c.service.stats["dead_letters"] == 0
    for client in clients:
        client.close()

    # 4. every report this server runs equals the simulator's ground truth, exactly
    client = NativeClient(clickhouse_server.host, clickhouse_server.port, database)
    try:
        raw = client.query("SELECT count() AS n, uniqExact(event_id) AS ids FROM events_raw")[0]
        assert raw["ids"] == total
        assert raw["n"] >= total  # physical copies (replay, crashed batch) may remain until merges; ids are exact
        reports = Reports(client)
        since = datetime.fromtimestamp(PROFILE.start_us / 1e6, tz=UTC)
        end = datetime.fromtimestamp(max(t.ended_us for t in simulation.truth) / 1e6 + 60, tz=UTC)
        tenants = sorted({q.tenant for q in simulation.queues})
        seen: dict[tuple[str, str], tuple[int, int, int]] = {}
        for tenant in tenants:
            for row in reports.queue_today(tenant, since):
                seen[(tenant, row["queue"])] = (row["offered"], row["answered"], row["abandoned"])
                assert row["abandon_rate"] == pytest.approx(row["abandoned"] / row["offered"], abs=0)
            assert reports.waiting_now(tenant, end) == [], "every simulated call has ended"
            with pytest.raises(NotImplementedError):
                reports.queue_kpis(tenant, since, end)
        # The report's "abandoned" is the caller hanging up (waiting or while an agent rang): a queue
        # timeout is its own disposition (no_agent_timeout), offered but neither answered nor abandoned.
        expected = {key: (t.offered, t.answered, t.abandoned) for key, t in truth.items()}
        assert seen == expected
        assert {key: v[0] - v[1] - v[2] for key, v in seen.items()} == {key: t.timeout for key, t in truth.items()}
        assert sum(t.timeout for t in truth.values()) > 0, "the load should include a queue timeout"
        assert sum(v[0] for v in seen.values()) == CALLS
    finally:
        client.close()

    runtime_s = time.monotonic() - started
    print(f"\nsink faults: {CALLS} calls, {total} canonical events; built {built_s:.1f}s, produced by "
          f"{produced_s:.1f}s; ClickHouse down {outage_s:.1f}s; crashed batch {crashable.crashed_rows} rows; "
          f"total {runtime_s:.1f}s")
