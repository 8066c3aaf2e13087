"""Captured FreeSWITCH events shipped with the simulator, and the tool that extracts them.

The simulator's templates are real events from ``tests/fixtures/freeswitch`` (FreeSWITCH
1.11 + mod_callcenter). Only the decoded, ordered header lists of the ``event json``
streams are kept (gzip'd JSON), so rendering never drifts from what a switch sends:
duplicate headers (``Hangup-Cause`` twice in hangup events) and header order survive.
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path

from ccod_fs.simulator.model import FsEvent, HeaderValue

DATA_DIR = Path(__file__).parent / "data"

SCENARIOS = {
    "inbound-queue": "esl-json-inbound-queue.raw",
    "queue-edge-cases": "esl-json-queue-edge-cases.raw",
}


def _ordered_pairs(pairs: list[tuple[str, object]]) -> list[tuple[str, object]]:
    return pairs


def events_from_json_capture(raw: bytes) -> list[FsEvent]:
    """Ordered events of a raw ``event json`` capture (duplicate keys kept, in order)."""
    events: list[FsEvent] = []
    pos = 0
    while pos < len(raw):
        cut = raw.index(b"\n\n", pos)
        headers = dict(line.split(": ", 1) for line in raw[pos:cut].decode().split("\n"))
        pos = cut + 2
        length = int(headers.get("Content-Length", "0"))
        body, pos = raw[pos:pos + length], pos + length
        if headers.get("Content-Type") != "text/event-json":
            continue
        pairs = json.loads(body, object_pairs_hook=_ordered_pairs)
        event_body: str | None = None
        fields: list[tuple[str, HeaderValue]] = []
        for name, value in pairs:
            if name == "_body":
                event_body = str(value)
            else:
                fields.append((name, value if isinstance(value, list) else str(value)))
        events.append(FsEvent(fields, event_body))
    return events


def write_scenario_data(capture_dir: Path, out_dir: Path = DATA_DIR) -> list[Path]:
    """Regenerate ``data/*.json.gz`` from the capture files (a developer tool, not run at import)."""
    written = []
    for name, filename in SCENARIOS.items():
        events = events_from_json_capture((capture_dir / filename).read_bytes())
        payload = [{"h": ev.headers, "b": ev.body} for ev in events]
        path = out_dir / f"{name}.json.gz"
        path.write_bytes(gzip.compress(json.dumps(payload, separators=(",", ":")).encode(), 9, mtime=0))
        written.append(path)
    return written


@cache
def load_scenario_events(name: str) -> tuple[FsEvent, ...]:
    """The captured events of scenario ``name`` (cached; callers must not mutate them)."""
    if name not in SCENARIOS:
        raise KeyError(f"unknown capture scenario {name!r}; known: {sorted(SCENARIOS)}")
    payload = json.loads(gzip.decompress((DATA_DIR / f"{name}.json.gz").read_bytes()))
    return tuple(
        FsEvent([(k, v if isinstance(v, list) else str(v)) for k, v in item["h"]], item["b"])
        for item in payload
    )


if __name__ == "__main__":  # pragma: no cover - developer tool
    import sys

    for written_path in write_scenario_data(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/freeswitch")):
        print(written_path)
