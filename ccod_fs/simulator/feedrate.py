"""How fast the simulator feeds one Event Socket client over loopback (a rerunnable measurement).

The reader runs in a separate process (as the ingest would), authenticates, subscribes
and counts complete event frames; the rate is events over the reader's time from first
to last byte. ``prerendered=True`` renders the stream before the clock starts (the
feeding path alone); ``False`` measures rendering and feeding together.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import socket
import time
from dataclasses import dataclass

from ccod_fs.simulator.loadgen import LoadProfile, LoadSimulation
from ccod_fs.simulator.loadstream import NodeLoad
from ccod_fs.simulator.server import SimulatorServer
from ccod_fs.simulator.stream import prerender

_PASSWORD = "feedrate-only"  # a throwaway secret for a loopback listener that lives for one run


@dataclass(frozen=True, slots=True)
class FeedResult:
    events: int
    payload_bytes: int
    seconds: float
    prerendered: bool
    fmt: str
    server_cpu_s: float  # CPU the simulator process spent while playing (all its threads)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def events_per_cpu_s(self) -> float:
        """The rate an uncontended core would sustain (shared CI machines steal wall time)."""
        return self.events / self.server_cpu_s if self.server_cpu_s > 0 else 0.0

    @property
    def mbytes_per_s(self) -> float:
        return self.payload_bytes / self.seconds / 1e6 if self.seconds > 0 else 0.0


def count_frames(port: int, fmt: str, results: mp.Queue) -> None:  # type: ignore[type-arg]
    """Reader process: count event frames until the server closes the connection."""
    sock = socket.create_connection(("127.0.0.1", port))
    buf = bytearray()

    def read_reply() -> None:
        nonlocal buf
        while b"\n\n" not in buf:
            buf += sock.recv(65536)
        buf = buf[buf.index(b"\n\n") + 2:]

    read_reply()
    sock.sendall(f"auth {_PASSWORD}\n\n".encode())
    read_reply()
    sock.sendall(f"event {fmt} ALL\n\n".encode())
    read_reply()
    # Every event frame has exactly one "\nContent-Type: text/event-" (bodies never contain it);
    # counting in C keeps the reader far faster than the server it measures.
    marker = b"\nContent-Type: text/event-"
    events = buf.count(marker)
    tail = bytes(buf[-(len(marker) - 1):])
    total = len(buf)
    first = last = 0.0
    chunk = bytearray(4 << 20)
    view = memoryview(chunk)
    while True:
        n = sock.recv_into(chunk)
        if not n:
            break
        last = time.perf_counter()
        first = first or last
        data = tail + bytes(view[:n])
        events += data.count(marker)
        tail = data[-(len(marker) - 1):]
        total += n
    results.put((events, total, last - first))


def measure_feed(profile: LoadProfile, *, fmt: str = "json", prerendered: bool = True,
                 max_events: int | None = None) -> FeedResult:
    """Play node 0 of ``profile`` to one subprocess reader and measure the rate it receives."""
    simulation = LoadSimulation(profile)
    scenario: object = NodeLoad(simulation, 0)
    server = SimulatorServer(password=_PASSWORD, node=simulation.nodes[0], track_state=False)
    if prerendered:
        scenario = prerender(scenario, simulation.nodes[0], (fmt,), limit=max_events)
    gc.freeze()  # templates and prerendered frames are long-lived: keep the collector off them
    results: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    port = server.start()
    reader = mp.Process(target=count_frames, args=(port, fmt, results), daemon=True)
    reader.start()
    try:
        server.wait_for_subscribers(1, timeout=30)
        cpu0 = time.process_time()
        server.play(scenario).wait()  # type: ignore[arg-type]
        cpu = time.process_time() - cpu0
        for conn in server.subscribers():
            conn.close()
        events, total, seconds = results.get(timeout=120)
    finally:
        server.stop()
        reader.join(5)
        gc.unfreeze()
    return FeedResult(events, total, seconds, prerendered, fmt, cpu)


def main(argv: list[str] | None = None) -> int:
    """``python -m ccod_fs.simulator.feedrate [--calls N] [--plain] [--live]``; ends with a RESULT line."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2500)
    parser.add_argument("--plain", action="store_true", help="event plain instead of event json")
    parser.add_argument("--live", action="store_true", help="render while sending (no prerendering)")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)
    profile = LoadProfile(calls=args.calls, nodes=1, arrivals_per_s=0.4, seed=args.seed)
    result = measure_feed(profile, fmt="plain" if args.plain else "json", prerendered=not args.live)
    print(f"RESULT esl_sim_feed events_per_s={result.events_per_s:.0f} events={result.events} "
          f"mbytes_per_s={result.mbytes_per_s:.0f} events_per_cpu_s={result.events_per_cpu_s:.0f} "
          f"fmt={result.fmt} prerendered={result.prerendered}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
