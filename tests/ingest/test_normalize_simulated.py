"""The normalizer against the ESL simulator's ground truth: many tenants, nodes and call outcomes.

The simulator re-times the real captures into a multi-tenant load whose outcome
per call is known before any event is rendered; normalizing its streams must
give back exactly that truth (agents are named ``<id>@<tenant>`` there, hence
``domain_is_tenant``).
"""

from __future__ import annotations

import collections
from collections.abc import Callable

import pytest

from ccod_fs.contract.envelope import Envelope
from ccod_fs.contract.events import parse_event, serialize_event
from ccod_fs.esl.decode import decode_json_body, decode_plain_body
from ccod_fs.esl.event import EslEvent
from ccod_fs.ingest.normalize import Normalizer
from ccod_fs.simulator.loadgen import LoadProfile, LoadSimulation
from ccod_fs.simulator.loadstream import NodeLoad

OUTCOMES = {
    "answered": {"answered"},
    "abandoned_waiting": {"abandoned"},
    "abandoned_ringing": {"abandoned"},
    "timeout": {"timeout", "no_agent_timeout"},
}
DECODERS: dict[str, Callable[[bytes], EslEvent]] = {"json": decode_json_body, "plain": decode_plain_body}


@pytest.mark.parametrize("fmt", ["json", "plain"])
def test_simulated_multi_tenant_load_matches_the_ground_truth(fmt: str) -> None:
    sim = LoadSimulation(LoadProfile(calls=200, nodes=2, tenants=3, p_offer_failures=0.2, p_transfer=0.3, seed=11))
    decode = DECODERS[fmt]
    out: list[Envelope] = []
    for node in range(len(sim.nodes)):
        normalizer = Normalizer(domain_is_tenant=True)
        for event in NodeLoad(sim, node).events():
            out.extend(normalizer.normalize(decode(event.payload(fmt))))

    calls: dict[str, list[Envelope]] = collections.defaultdict(list)
    for env in out:
        if env.call_id is not None:
            calls[env.call_id].append(env)
    for env in out[:: max(1, len(out) // 200)]:
        assert parse_event(serialize_event(env)) == env

    for truth in sim.truth:
        events = calls[truth.caller_uuid]
        kinds = [e.type for e in events]
        assert kinds[:2] == ["call.offered", "call.queued"], kinds
        assert {e.tenant_id for e in events} == {truth.tenant}
        assert {e.queue_id for e in events if e.type == "call.queued"} == {truth.queue}
        [dequeued] = [e.payload for e in events if e.type == "call.dequeued"]
        assert dequeued.outcome in OUTCOMES[truth.outcome]  # type: ignore[attr-defined]
        answered = [e.payload for e in events if e.type == "call.answered"]
        assert [a.agent for a in answered] == ([truth.agent] if truth.answered_us else [])  # type: ignore[attr-defined]
        failed = [e.payload.hangup_cause for e in events if e.type == "call.agent_failed"]  # type: ignore[attr-defined]
        assert failed == truth.failed_offers
        assert sum(1 for e in events if e.type == "call.hold" and e.payload.held) == truth.holds  # type: ignore[attr-defined]
        assert sum(1 for e in events if e.type == "call.dtmf") == truth.dtmf
        transfers = [e for e in events if e.type == "call.transferred"]
        assert [e.payload.target for e in transfers] == ([truth.transferred_to] if truth.transferred_to else [])  # type: ignore[attr-defined]
        for transfer in transfers:  # told before the call ends, with the agent who transferred
            assert kinds.index("call.transferred") < kinds.index("call.ended")
            assert transfer.agent_id == truth.agent and transfer.payload.kind == "blind"  # type: ignore[attr-defined]
        # Wait from µs channel times; the truth uses the bridge-agent-start event's own time,
        # which FreeSWITCH stamps one or two 20 ms timer ticks after the agent's answer.
        assert -50 <= dequeued.wait_ms - truth.wait_us / 1000 <= 1  # type: ignore[attr-defined]
    assert {t.outcome for t in sim.truth} >= {"answered", "abandoned_waiting"}
    assert any(t.failed_offers for t in sim.truth)
    assert any(t.transferred_to for t in sim.truth)
