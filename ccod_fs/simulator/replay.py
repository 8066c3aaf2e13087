"""Replay of a captured scenario: the same events in the same order, fresh UUIDs and times.

Every UUID of the capture (channels, members, jobs) maps to a fresh one drawn from the
seed; all clocks shift by a whole number of seconds so epoch-second values, date strings
and microsecond timestamps stay mutually consistent; ``Event-Sequence`` keeps the
capture's gaps and its out-of-order deliveries (FreeSWITCH numbers events when it
creates them, not when it sends them) and continues from the node's counter.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from random import Random

from ccod_fs.simulator.capture_data import SCENARIOS, load_scenario_events
from ccod_fs.simulator.model import NodeIdentity
from ccod_fs.simulator.state import SwitchState
from ccod_fs.simulator.stream import StreamEvent, fresh_uuids
from ccod_fs.simulator.template import RenderContext, TemplateSet, compile_events

# 2026-11-25 18:00:00 UTC: a fixed default so a seed alone fixes the whole stream.
DEFAULT_START_US = 1_795_629_600_000_000


@cache
def scenario_templates(name: str) -> TemplateSet:
    return compile_events(load_scenario_events(name))


class CaptureReplay:
    """Scenario ``inbound-queue`` (capture 1) or ``queue-edge-cases`` (capture 2)."""

    def __init__(self, name: str, *, seed: int = 0, start_us: int = DEFAULT_START_US) -> None:
        if name not in SCENARIOS:
            raise ValueError(f"unknown scenario {name!r}; known: {sorted(SCENARIOS)}")
        self.name = name
        self.templates = scenario_templates(name)
        rng = Random(f"replay:{name}:{seed}")
        self.uuids = fresh_uuids(rng, len(self.templates.uuid_originals))
        self.default_node = NodeIdentity(core_uuid=fresh_uuids(rng, 1)[0])
        whole_seconds = (start_us - self.templates.first_ts) // 1_000_000
        self.shift_us = whole_seconds * 1_000_000
        seqs = [t.seq for t in self.templates.templates]
        self.first_seq, self.last_seq = min(seqs), max(seqs)

    def __len__(self) -> int:
        return len(self.templates.templates)

    def uuid_for(self, original: str) -> str:
        """The fresh UUID that replaces ``original`` from the capture."""
        return self.uuids[self.templates.uuid_index(original)]

    def events(self, node: NodeIdentity | None = None, seq_start: int | None = None) -> Iterator[StreamEvent]:
        ctx = RenderContext(node or self.default_node, self.uuids, shifts=[self.shift_us])
        offset = (self.first_seq if seq_start is None else seq_start) - self.first_seq
        for tpl in self.templates.templates:
            yield StreamEvent(tpl, ctx, tpl.ts + self.shift_us, tpl.seq + offset)

    def configure(self, state: SwitchState) -> None:
        """The captured switch's mod_callcenter configuration (see the captures' README)."""
        state.configure(
            [(f"{n}@default", f"[leg_timeout=10,ccod_tenant=acme,ccod_agent={n}]user/{n}@127.0.0.1")
             for n in range(1000, 1004)],
            [("sales@default", "5"), ("support@default", "0")],
        )

    def seq_span(self) -> int:
        """How many sequence numbers the replay consumes on its node."""
        return self.last_seq - self.first_seq + 1
