"""JSON Schemas of the event contract, generated from the pydantic models.

``schemas/events/`` is checked in; a test regenerates and fails on drift, so the
models stay the source of truth and the published schemas never silently lag.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from ccod_fs.contract.deadletter import DeadLetter
from ccod_fs.contract.events import EVENT_TYPES, CanonicalEvent
from ccod_fs.contract.topics import ALL_TOPICS

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "events"


def render_schemas() -> dict[str, str]:
    """File name -> pretty JSON text, deterministic."""
    out: dict[str, Any] = {}
    for type_name, cls in sorted(EVENT_TYPES.items()):
        out[f"{type_name}.v1.json"] = cls.model_json_schema(mode="serialization")
    out["canonical-event.v1.json"] = TypeAdapter(CanonicalEvent).json_schema(mode="serialization")
    out["dead-letter.v1.json"] = DeadLetter.model_json_schema(mode="serialization")
    out["topics.json"] = [
        {"name": t.name, "key": t.key, "carries": t.carries, "partitions": t.partitions} for t in ALL_TOPICS
    ]
    return {name: json.dumps(schema, indent=2, sort_keys=True) + "\n" for name, schema in out.items()}


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    rendered = render_schemas()
    for stale in directory.glob("*.json"):
        if stale.name not in rendered:
            stale.unlink()
    for name, text in rendered.items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written
