"""/healthz and /metrics over real HTTP on loopback."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from prometheus_client import CollectorRegistry, Counter

from ccod_fs.ops_http import OpsServer


def test_healthz_and_metrics() -> None:
    registry = CollectorRegistry()
    counter = Counter("ccod_test_things", "things", registry=registry)
    counter.inc(3)
    state = {"ok": True}
    server = OpsServer("127.0.0.1", 0, registry, lambda: (state["ok"], {"node": "fs1"})).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as resp:
            assert resp.status == 200
            assert json.loads(resp.read()) == {"ok": True, "node": "fs1"}
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as resp:
            assert "ccod_test_things_total 3.0" in resp.read().decode()
        state["ok"] = False
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=5)
            raise AssertionError("unhealthy must answer 503")
        except urllib.error.HTTPError as exc:
            assert exc.code == 503
            assert json.loads(exc.read())["ok"] is False
    finally:
        server.stop()
