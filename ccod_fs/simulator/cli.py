"""``ccod-fs simulate``: serve simulated FreeSWITCH nodes on loopback for the demo and benchmarks.

``run_simulator(SimulateOptions)`` is the typed entry point; ``simulate_main(argv)`` only
parses arguments into it. One TCP port per node (``--port`` 0 picks free ports). The
Event Socket password comes from ``--password`` or ``CCOD_SIM_PASSWORD``; there is no
default. Ground truth of a load run can be written as JSON for downstream checks.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
import structlog

from ccod_fs.simulator.capture_data import SCENARIOS
from ccod_fs.simulator.connection import ConnectionOptions
from ccod_fs.simulator.loadgen import LoadProfile, LoadSimulation
from ccod_fs.simulator.loadstream import NodeLoad
from ccod_fs.simulator.model import NodeIdentity
from ccod_fs.simulator.replay import CaptureReplay
from ccod_fs.simulator.server import SimulatorServer
from ccod_fs.simulator.stream import FramedFile, render_to_file

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SimulateOptions:
    password: str
    scenario: str = "load"  # "load", "inbound-queue" or "queue-edge-cases"
    host: str = "127.0.0.1"
    port: int = 0  # node i listens on port + i; 0 = free ports
    nodes: int = 1
    tenants: int = 3
    queues_per_tenant: int = 2
    agents_per_queue: int = 4
    calls: int = 1000
    arrivals_per_s: float = 0.4
    mean_talk_s: float = 45.0
    seed: int = 0
    start_us: int | None = None  # default: now
    pace: float | None = None  # None: as fast as clients read; 1.0: real time
    wait_clients: int = 1  # subscribers per node before playing
    wait_timeout_s: float = 300.0
    serve_after_s: float = 0.0  # keep answering api commands this long after the stream ends
    truth_path: str | None = None
    drop_after_events: int | None = None
    garbage_every: int | None = None
    prerender: bool = False  # render the subscribed stream before playing (throughput runs)


def _profile(opts: SimulateOptions) -> LoadProfile:
    start = opts.start_us if opts.start_us is not None else time.time_ns() // 1000
    return LoadProfile(
        calls=opts.calls, nodes=opts.nodes, tenants=opts.tenants, queues_per_tenant=opts.queues_per_tenant,
        agents_per_queue=opts.agents_per_queue, arrivals_per_s=opts.arrivals_per_s,
        mean_talk_s=opts.mean_talk_s, seed=opts.seed, start_us=start,
    )


def write_truth(simulation: LoadSimulation, path: Path) -> None:
    """Per-call truth and per-queue totals as one JSON document."""
    doc = {
        "profile": asdict(simulation.profile),
        "nodes": [asdict(node) for node in simulation.nodes],
        "calls": [{**asdict(call), "wait_us": call.wait_us, "talk_us": call.talk_us} for call in simulation.truth],
        "totals": [
            {"tenant": tenant, "queue": queue, **asdict(totals), "abandoned": totals.abandoned}
            for (tenant, queue), totals in sorted(simulation.totals().items())
        ],
    }
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))


def run_simulator(opts: SimulateOptions, stop: threading.Event | None = None) -> int:
    """Serve, wait for clients, play, report; returns a process exit code."""
    stop = stop or threading.Event()
    conn_opts = ConnectionOptions(drop_after_events=opts.drop_after_events, garbage_every=opts.garbage_every)
    if opts.scenario == "load":
        simulation = LoadSimulation(_profile(opts))
        nodes = simulation.nodes
        scenarios: list[object] = [NodeLoad(simulation, i) for i in range(len(nodes))]
        if opts.truth_path:
            write_truth(simulation, Path(opts.truth_path))
    elif opts.scenario in SCENARIOS:
        start = opts.start_us if opts.start_us is not None else time.time_ns() // 1000
        replays = [CaptureReplay(opts.scenario, seed=opts.seed + i, start_us=start) for i in range(opts.nodes)]
        nodes = [NodeIdentity(core_uuid=r.default_node.core_uuid, hostname=f"fs{i + 1}")
                 for i, r in enumerate(replays)]
        scenarios = list(replays)
    else:
        print(f"unknown scenario {opts.scenario!r}; use load or one of {sorted(SCENARIOS)}", file=sys.stderr)
        return 2
    servers = []
    stack = contextlib.ExitStack()
    try:
        for i, (node, scenario) in enumerate(zip(nodes, scenarios, strict=True)):
            server = SimulatorServer(password=opts.password, host=opts.host,
                                     port=opts.port + i if opts.port else 0, node=node, options=conn_opts)
            configure = getattr(scenario, "configure", None)
            if configure is not None:
                configure(server.state)
            port = server.start()
            servers.append(server)
            print(orjson.dumps({"node": node.hostname, "core_uuid": node.core_uuid, "host": opts.host,
                                "port": port}).decode(), flush=True)
        for server in servers:
            server.wait_for_subscribers(opts.wait_clients, timeout=opts.wait_timeout_s)
        if opts.prerender:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ccod-sim-")))
            scenarios = [_prerendered(server, scenario, workdir)
                         for server, scenario in zip(servers, scenarios, strict=True)]
        handles = [server.play(scenario, pace=opts.pace) for server, scenario in  # type: ignore[arg-type]
                   zip(servers, scenarios, strict=True)]
        for handle in handles:
            while not handle.done.wait(0.5):
                if stop.is_set():
                    return 130
            handle.wait()
        for server, handle in zip(servers, handles, strict=True):
            log.info("esl_sim_played", node=server.node.hostname, events=handle.events,
                     events_per_s=round(handle.events_per_s))
        stop.wait(opts.serve_after_s)
        return 0
    except TimeoutError as exc:
        log.error("esl_sim_no_clients", error=str(exc))
        return 1
    finally:
        for server in servers:
            server.stop()
        stack.close()


def _prerendered(server: SimulatorServer, scenario: object, workdir: Path) -> FramedFile:
    """The stream the connected listeners subscribed to, rendered now, so playing it is only sending.

    A live switch renders events in C; the Python renderer cannot feed a fast listener at that
    pace, so throughput runs play frames rendered ahead of time into a file (long runs do not
    fit in memory). The switch state behind ``show channels`` and ``callcenter_config`` is not
    tracked then: it answers as an idle switch.
    """
    subscriptions = [conn.subscription for conn in server.subscribers()]
    fmts = {"json" if sub.fmt == "json" else "plain" for sub in subscriptions}
    if len(fmts) > 1:
        raise ValueError("--prerender needs every listener of a node to use the same event format")
    started = time.perf_counter()
    # Numbered from a span reserved up front: events the switch fires meanwhile (API,
    # BACKGROUND_JOB) take numbers after it.
    bound = getattr(scenario, "max_events", None)
    if callable(bound):
        span = int(bound())
    else:
        events = scenario.events(server.node)  # type: ignore[attr-defined]
        span = sum(1 for _ in events)
    rendered = render_to_file(
        scenario, server.node, fmts.pop() if fmts else "json", workdir / f"{server.node.hostname}.esl",
        seq_start=server.reserve_sequence(span),
        keep=lambda name, subclass: any(sub.wants(name, subclass) for sub in subscriptions))
    server.track_state = False
    log.info("esl_sim_prerendered", node=server.node.hostname, events=rendered.events_total,
             mbytes=round(rendered.payload_bytes / 1e6), seconds=round(time.perf_counter() - started, 1))
    return rendered


def parse_args(argv: Sequence[str]) -> SimulateOptions:
    p = argparse.ArgumentParser(prog="ccod-fs simulate", description=__doc__.split("\n\n")[0])
    p.add_argument("--password", default=os.environ.get("CCOD_SIM_PASSWORD"),
                   help="Event Socket password (or CCOD_SIM_PASSWORD); required")
    p.add_argument("--scenario", default="load", choices=["load", *sorted(SCENARIOS)])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="first node's port (node i: port+i); 0 = free ports")
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--tenants", type=int, default=3)
    p.add_argument("--queues-per-tenant", type=int, default=2)
    p.add_argument("--agents-per-queue", type=int, default=4)
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--arrivals-per-s", type=float, default=0.4, help="Poisson arrival rate (virtual time)")
    p.add_argument("--mean-talk-s", type=float, default=45.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start-us", type=int, default=None, help="virtual clock start (µs epoch); default now")
    p.add_argument("--pace", type=float, default=None, help="1.0 = real time; default as fast as possible")
    p.add_argument("--wait-clients", type=int, default=1, help="subscribed clients per node before playing")
    p.add_argument("--wait-timeout-s", type=float, default=300.0)
    p.add_argument("--serve-after-s", type=float, default=0.0)
    p.add_argument("--truth", dest="truth_path", default=None, help="write ground truth JSON here")
    p.add_argument("--drop-after-events", type=int, default=None)
    p.add_argument("--garbage-every", type=int, default=None)
    p.add_argument("--prerender", action="store_true",
                   help="render the subscribed stream once clients subscribed, then play bytes "
                        "(throughput runs; show channels then answers as an idle switch)")
    ns = p.parse_args(list(argv))
    if not ns.password:
        p.error("--password (or CCOD_SIM_PASSWORD) is required")
    return SimulateOptions(**vars(ns))


def simulate_main(argv: Sequence[str] | None = None) -> int:
    """``ccod-fs simulate [options]``: parse ``argv`` and run the simulator until the stream is played."""
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (how benchmarks and Kubernetes stop it) unwinds like Ctrl-C, so the
        # prerendered stream's temporary file is removed.
        signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        return run_simulator(opts)
    except KeyboardInterrupt:
        return 130


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    from ccod_fs.logs import configure_logging

    configure_logging()  # logs to stderr; stdout carries only the nodes' JSON lines
    raise SystemExit(simulate_main())
