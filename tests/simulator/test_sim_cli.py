"""``simulate_main``: one port per node, plays to subscribed clients, writes the ground truth."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sim_helpers import EslTestClient

from ccod_fs.simulator.cli import parse_args


def test_password_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CCOD_SIM_PASSWORD", raising=False)
    with pytest.raises(SystemExit):
        parse_args(["--calls", "3"])
    monkeypatch.setenv("CCOD_SIM_PASSWORD", "from-env")
    assert parse_args(["--calls", "3"]).password == "from-env"


def test_two_nodes_play_their_share_and_the_truth_file_matches(tmp_path: Path) -> None:
    truth_path = tmp_path / "truth.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ccod_fs.simulator.cli", "--password", "cli-secret", "--nodes", "2",
         "--calls", "40", "--seed", "4", "--start-us", "1800000000000000", "--truth", str(truth_path),
         "--wait-timeout-s", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout is not None
        nodes = [json.loads(proc.stdout.readline()) for _ in range(2)]
        clients = []
        for node in nodes:
            client = EslTestClient(node["port"])
            client.login("cli-secret", "event json CHANNEL_CREATE CUSTOM callcenter::info")
            clients.append(client)
        assert proc.wait(60) == 0
        truth = json.loads(truth_path.read_text())
        for node, client in zip(nodes, clients, strict=True):
            client.read_until(lambda c=client: c.eof, timeout=30)
            events = client.events()
            assert {e.headers["Core-UUID"] for e in events} == {node["core_uuid"]}
            joined = {e.headers["CC-Member-Session-UUID"] for e in events
                      if e.headers.get("CC-Action") == "member-queue-start"}
            expected = {c["caller_uuid"] for c in truth["calls"] if c["node"] == node["node"]}
            assert joined == expected and expected
            client.close()
        assert sum(t["offered"] for t in truth["totals"]) == len(truth["calls"]) == 40
    finally:
        proc.kill()


def _played(extra: list[str]) -> list[bytes]:
    """Event bodies one subscriber gets from a 30-call run (fixed seed and clock)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ccod_fs.simulator.cli", "--password", "cli-secret", "--calls", "30", "--seed", "9",
         "--start-us", "1800000000000000", "--wait-timeout-s", "60", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout is not None
        node = json.loads(proc.stdout.readline())
        client = EslTestClient(node["port"])
        client.login("cli-secret", "event json CHANNEL_CREATE CHANNEL_HANGUP_COMPLETE CUSTOM callcenter::info")
        assert proc.wait(60) == 0
        client.read_until(lambda: client.eof, timeout=30)
        bodies = [frame.body for frame in client.event_frames()]
        client.close()
        return bodies
    finally:
        proc.kill()


def test_prerendered_stream_is_the_live_stream_byte_for_byte() -> None:
    """--prerender renders only what the listener subscribed to, with the live run's numbering."""
    live = _played([])
    prerendered = _played(["--prerender"])
    assert len(live) > 30 * 3
    assert prerendered == live
    sequences = [int(json.loads(body)["Event-Sequence"]) for body in prerendered]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
    assert sequences[-1] - sequences[0] + 1 > len(sequences)  # gaps where unsubscribed events were fired


def test_sigterm_removes_the_prerendered_stream(tmp_path: Path) -> None:
    """Benchmarks stop the simulator with SIGTERM: its rendered stream file must not stay behind."""
    import os
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "ccod_fs.simulator.cli", "--password", "cli-secret", "--calls", "200", "--seed", "3",
         "--prerender", "--serve-after-s", "600", "--wait-timeout-s", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    try:
        assert proc.stdout is not None
        node = json.loads(proc.stdout.readline())
        client = EslTestClient(node["port"])
        client.login("cli-secret", "event json CHANNEL_CREATE")
        client.read_until(lambda: len(client.event_frames()) > 100, timeout=60)
        assert [p.name for p in tmp_path.glob("ccod-sim-*/*.esl")] == ["fs1.esl"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 5
        while any(tmp_path.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(tmp_path.iterdir())
        client.close()
    finally:
        proc.kill()
