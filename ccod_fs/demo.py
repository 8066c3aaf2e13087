"""``ccod-fs demo``: the whole pipeline in one process, on embedded defaults.

Simulated FreeSWITCH nodes (real ESL over loopback TCP) -> one ESL ingest per node
-> in-process bus -> ClickHouse sink -> embedded chDB, then a report read back
from ClickHouse next to the simulator's ground truth. Nothing to install but the
package: no Kafka, no ClickHouse server.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import gevent
from pydantic import SecretStr

from ccod_fs.bus.memory import MemoryBus
from ccod_fs.clickhouse.client import ChdbClient
from ccod_fs.clickhouse.migrate import migrate
from ccod_fs.contract.events import parse_event
from ccod_fs.ingest.service import IngestService
from ccod_fs.reports.library import Reports
from ccod_fs.settings import EslSettings, IngestSettings, KafkaSettings
from ccod_fs.simulator.loadgen import LoadProfile, LoadSimulation
from ccod_fs.simulator.loadstream import NodeLoad
from ccod_fs.simulator.server import SimulatorServer
from ccod_fs.sink.writer import Sink


@dataclass
class DemoResult:
    events_in: int
    events_out: int
    dead_letters: int
    rows: dict[str, int]
    report: dict[str, list[dict[str, object]]]
    truth: dict[tuple[str, str], object]
    seconds: float


def _gevent_wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"demo: timed out waiting for {what}")
        gevent.sleep(0.02)


def run_pipeline(calls: int, seed: int, data_dir: Path, nodes: int = 2, tenants: int = 2,
                 database: str = "ccod") -> DemoResult:
    """``database``: chDB is one engine per process, so callers sharing a process pass distinct names."""
    started = time.perf_counter()
    now_us = time.time_ns() // 1000
    # Put the simulated traffic in the recent past so "today" reports cover it.
    span_s = calls / 0.3 + 900
    # ~0.3 calls/s on 16 agents with 45 s talk: a busy but staffed contact center (~85% occupancy).
    profile = LoadProfile(calls=calls, nodes=nodes, tenants=tenants, seed=seed, arrivals_per_s=0.3,
                          start_us=now_us - int(span_s * 1_000_000))
    simulation = LoadSimulation(profile)
    password = secrets.token_urlsafe(12)
    bus = MemoryBus()
    servers: list[SimulatorServer] = []
    services: list[IngestService] = []
    greenlets = []
    try:
        for index, node in enumerate(simulation.nodes):
            server = SimulatorServer(password=password, node=node, start_us=profile.start_us)
            NodeLoad(simulation, index).configure(server.state)  # agents and queues exist before we connect
            port = server.start()
            servers.append(server)
            settings = IngestSettings(
                esl=EslSettings(port=port, password=SecretStr(password), node=node.hostname),
                kafka=KafkaSettings(bootstrap="in-process"),
                spool_dir=data_dir / f"spool-{index}",
            )
            service = IngestService(settings, bus, node=node.hostname)
            services.append(service)
            greenlets.append(gevent.spawn(service.run))
        for server, service in zip(servers, services, strict=True):
            _gevent_wait(lambda s=service: s.connection is not None and s.connection.connected, 15, "ESL login")
            _gevent_wait(lambda srv=server: len(srv.subscribers()) >= 1, 15, "subscription")
        handles = [server.play(NodeLoad(simulation, i)) for i, server in enumerate(servers)]
        _gevent_wait(lambda: all(h.done.is_set() for h in handles), 600, "the simulated calls")
        for handle in handles:
            handle.wait(0)
        # An api round trip after the last event: TCP order means every event before it was read.
        for service in services:
            assert service.connection is not None
            service.connection.api("status")
    finally:
        for service in services:
            service.request_stop()
        gevent.joinall(greenlets, timeout=10)
        for server in servers:
            server.stop()

    client = ChdbClient(data_dir / "chdb", database)
    migrate(client)
    sink = Sink(client)
    rows: dict[str, int] = {}
    topic = IngestSettings.model_fields["kafka"].annotation.model_fields["events_topic"].default  # type: ignore[union-attr]
    records = bus.read(topic)
    for start in range(0, len(records), 20_000):
        events = [parse_event(r.value) for r in records[start:start + 20_000]]
        for table, n in sink.write_events(events).items():
            rows[table] = rows.get(table, 0) + n
    reports = Reports(client)
    since = datetime.fromtimestamp(profile.start_us / 1e6, tz=UTC)
    report = {tenant: reports.queue_today(tenant, since) for tenant in sorted({q.tenant for q in simulation.queues})}
    return DemoResult(
        events_in=sum(s.pipeline.events_in for s in services),
        events_out=sum(s.pipeline.events_out for s in services),
        dead_letters=sum(s.pipeline.dead_lettered for s in services),
        rows=rows,
        report=report,
        truth=dict(simulation.totals()),
        seconds=time.perf_counter() - started,
    )


def _fmt(value: object, pct: bool = False) -> str:
    if value is None:
        return "-"
    if pct:
        return f"{float(value) * 100:5.1f}%"  # type: ignore[arg-type]
    if isinstance(value, int | float):
        return f"{value:,.0f}"
    return str(value)


def run_demo(calls: int = 200, seed: int = 7, data_dir: str | None = None) -> DemoResult:
    workdir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="ccod-demo-"))
    result = run_pipeline(calls, seed, workdir)
    print(f"\nccod-fs demo: {calls} simulated calls on 2 FreeSWITCH nodes (ESL over TCP) -> ingest -> bus -> "
          f"sink -> chDB at {workdir / 'chdb'}")
    print(f"ESL events in {result.events_in:,}, canonical events out {result.events_out:,}, "
          f"dead letters {result.dead_letters}, rows {result.rows}, {result.seconds:.1f} s\n")
    header = (f"{'tenant':<10}{'queue':<18}{'offered':>8}{'answered':>9}{'abandoned':>10}"
              f"{'SL 20s':>8}{'ASA ms':>8}{'aband.%':>9}   truth off/ans/aband")
    print("Report read back from ClickHouse (queue_today; SL counts abandons as failures;"
          " a queue timeout is offered but neither answered nor abandoned):")
    print(header)
    print("-" * len(header))
    for tenant, rows in result.report.items():
        for row in rows:
            truth = result.truth.get((tenant, str(row["queue"])))
            truth_txt = (f"{truth.offered}/{truth.answered}/{truth.abandoned}"  # type: ignore[attr-defined]
                         if truth is not None else "-")
            print(f"{tenant:<10}{row['queue']!s:<18}{row['offered']:>8}{row['answered']:>9}{row['abandoned']:>10}"
                  f"{_fmt(row['service_level'], True):>8}{_fmt(row['asa_ms']):>8}"
                  f"{_fmt(row['abandon_rate'], True):>9}   {truth_txt}")
    print()
    return result
