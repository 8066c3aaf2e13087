"""call.transferred: fs-dialplan's transfer extension, as the simulator and FreeSWITCH 1.10+ fire it."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import orjson
import pytest

from ccod_fs.contract.envelope import Envelope
from ccod_fs.esl.decode import decode_json_body
from ccod_fs.ingest.normalize import NormalizeError, Normalizer
from ccod_fs.simulator.loadgen import LoadProfile, LoadSimulation
from ccod_fs.simulator.loadstream import NodeLoad

DIALPLAN = Path(__file__).resolve().parents[2] / "fs-dialplan" / "dialplan" / "public"


def _until_first_transfer() -> tuple[Normalizer, dict[str, object], str]:
    """A normalizer fed up to the first transfer of a simulated load, that transfer's headers, its target."""
    sim = LoadSimulation(LoadProfile(calls=60, nodes=1, seed=2, arrivals_per_s=0.2, p_transfer=1.0))
    normalizer = Normalizer(domain_is_tenant=True)
    for event in NodeLoad(sim, 0).events():
        body = event.payload("json")
        headers = orjson.loads(body)
        if headers.get("ccod_action") == "transfer":
            return normalizer, headers, str(headers["ccod_transfer_target"])
        normalizer.normalize(decode_json_body(body))
    raise AssertionError("no transfer in the simulated load")


def _normalize(normalizer: Normalizer, headers: dict[str, object]) -> list[Envelope]:
    return normalizer.normalize(decode_json_body(orjson.dumps(headers)))


def test_transfer_without_event_subclass_header_becomes_call_transferred() -> None:
    normalizer, headers, target = _until_first_transfer()
    assert "Event-Subclass" not in headers
    [event] = _normalize(normalizer, headers)
    assert event.type == "call.transferred" and event.call_id == headers["Unique-ID"]
    assert event.payload.target == target and event.payload.kind == "blind"  # type: ignore[attr-defined]
    assert event.tenant_id == headers["variable_ccod_tenant"] and event.agent_id


def test_an_event_subclass_header_gives_the_same_event() -> None:
    normalizer, headers, _ = _until_first_transfer()
    with_header = {**headers, "Event-Subclass": "ccod::queue"}
    [a] = _normalize(normalizer, headers)
    [b] = _normalize(normalizer, with_header)
    assert (a.type, a.call_id, a.agent_id, a.payload) == (b.type, b.call_id, b.agent_id, b.payload)


@pytest.mark.parametrize(("change", "reason"), [
    ({"ccod_transfer_target": ""}, "missing-transfer-target"),
    ({"ccod_transfer_kind": "sideways"}, "bad-transfer-kind"),
    ({"ccod_transfer_kind": ["blind", "queue"]}, "bad-transfer-kind"),
])
def test_bad_transfer_headers_are_dead_letter_reasons(change: dict[str, object], reason: str) -> None:
    normalizer, headers, _ = _until_first_transfer()
    with pytest.raises(NormalizeError) as exc:
        _normalize(normalizer, {**headers, **change})
    assert exc.value.reason == reason


def test_ccod_subclass_cannot_claim_another_subclass() -> None:
    normalizer, headers, _ = _until_first_transfer()
    assert _normalize(normalizer, {**headers, "ccod_subclass": "callcenter::info", "CC-Action": "agent-offering"}) == []


def test_fs_dialplan_event_actions_carry_what_the_ingest_reads() -> None:
    """Every ``event`` action repeats its subclass as ccod_subclass; the transfer one sets the simulator's headers."""
    actions = [
        action.get("data", "")
        for path in sorted(DIALPLAN.glob("*.xml"))
        for action in ET.parse(path).iter("action")
        if action.get("application") == "event"
    ]
    assert len(actions) >= 5
    transfer = None
    for data in actions:
        pairs = dict(pair.split("=", 1) for pair in data.split(","))
        assert pairs["Event-Name"] == "CUSTOM"
        assert pairs["ccod_subclass"] == pairs["Event-Subclass"] and pairs["Event-Subclass"].startswith("ccod::")
        if pairs.get("ccod_action") == "transfer":
            transfer = pairs
    assert transfer is not None
    _, headers, _ = _until_first_transfer()
    for name in ("ccod_subclass", "ccod_action", "ccod_transfer_kind"):
        assert transfer[name] == headers[name]
    assert re.fullmatch(r"\$\d", transfer["ccod_transfer_target"])
