"""Fault tests of the ESL ingest on real parts: simulated FreeSWITCH over real sockets -> the real
``ccod-fs ingest`` process -> real Kafka. Nothing accepted from FreeSWITCH may be lost.

Each test compares what reached Kafka with what a fault-free ingest publishes for the very
events the simulator sent (``fault_helpers.Reference``): by event id (the idempotency key),
byte for byte, and in per-call order (``source.event_sequence`` never goes back within a call's
partition). Physical duplicates are allowed only where the design allows them (a crash replays
the spool's unconfirmed tail); they must then be byte-identical copies.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from ccod_fs.contract.deadletter import DeadLetter
from ccod_fs.devservices import KafkaBroker
from ccod_fs.devservices.process import free_port
from ccod_fs.simulator.connection import GARBAGE_FRAMES, ClientConnection, ConnectionOptions
from ccod_fs.simulator.loadgen import LoadProfile, LoadSimulation
from ccod_fs.simulator.server import SimulatorServer
from tests.e2e.fault_helpers import (
    Delivery,
    IngestProcess,
    SegmentedLoad,
    analyze,
    read_all,
    spool_view,
    start_ingest,
    wait_until,
)

EVENTS_PER_CALL = 73  # ESL events per simulated call, all kinds (measured: 73.3); only for pacing


@dataclass
class Rig:
    """One simulated node, its load, and the topics and spool of the ingest processes under test."""

    load: SegmentedLoad
    server: SimulatorServer
    password: str
    bootstrap: str
    events_topic: str
    dlq_topic: str
    tmp_path: Path

    @property
    def spool_dir(self) -> Path:
        return self.tmp_path / "spool"

    def start_ingest(self) -> IngestProcess:
        return start_ingest(esl_port=self.server.port, password=self.password, node=self.load.node.hostname,
                            bootstrap=self.bootstrap, events_topic=self.events_topic,
                            dead_letter_topic=self.dlq_topic, spool_dir=self.spool_dir,
                            log_path=self.tmp_path / "ingest.log", http_port=free_port())

    def new_subscriber(self, known: list[ClientConnection], timeout: float = 120) -> ClientConnection:
        """The first subscribed connection not in ``known`` (a new ingest, or a reconnect)."""
        found: list[ClientConnection] = []

        def fresh() -> bool:
            found[:] = [c for c in self.server.subscribers() if c not in known]
            return bool(found)

        wait_until(fresh, timeout, "a new ESL subscriber")
        known.append(found[0])
        return found[0]


def _rig(profile: LoadProfile, bootstrap: str, tmp_path: Path, options: ConnectionOptions | None = None,
         track_state: bool = True) -> Rig:
    """``track_state=False`` when no resync can happen after the first connect: the simulator then
    skips parsing every channel event into its live state (``show channels``), a large saving."""
    suffix = uuid.uuid4().hex[:8]
    load = SegmentedLoad(LoadSimulation(profile))
    password = secrets.token_urlsafe(10)
    server = SimulatorServer(password=password, node=load.node, start_us=profile.start_us, options=options,
                             track_state=track_state)
    rig = Rig(load=load, server=server, password=password, bootstrap=bootstrap,
              events_topic=f"ccod.events.v1.faults{suffix}", dlq_topic=f"ccod.deadletter.v1.faults{suffix}",
              tmp_path=tmp_path)
    rig.load.configure(rig.server)
    rig.server.start()
    rig.load.reference.connect(rig.server)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(rig.events_topic, 4, 1), NewTopic(rig.dlq_topic, 1, 1)])
    admin.close()
    return rig


def _wait_read_everything(ingest: IngestProcess, conn: ClientConnection, timeout: float = 300) -> None:
    """The ingest decoded every event the simulator sent on ``conn`` (its only connection)."""
    wait_until(lambda: ingest.events_in() == conn.events_sent, timeout,
               f"the ingest to read {conn.events_sent} events (at {ingest.events_in()})")


def _wait_acked(ingest: IngestProcess, timeout: float = 300) -> None:
    wait_until(lambda: ingest.metrics().get("ccod_ingest_spool_depth") == 0, timeout,
               "Kafka to confirm every spooled record")


@dataclass
class Diff:
    missing: set[str]
    extra: set[str]
    changed: set[str]


def _diff(delivered: Delivery, rig: Rig, ids: set[str] | None = None) -> Diff:
    """Delivered vs a fault-free ingest's events (all, or only ``ids``; extras only judged for all)."""
    reference = rig.load.reference
    expected = reference.ids() if ids is None else ids
    present = expected & delivered.ids
    return Diff(
        missing=expected - delivered.ids,
        extra=delivered.ids - expected if ids is None else set(),
        changed={eid for eid in present if orjson.loads(reference.events[eid].value) != delivered.events[eid]},
    )


def _assert_matches_reference(delivered: Delivery, rig: Rig, ids: set[str] | None = None) -> None:
    """Every expected event, nothing else, byte-identical to the fault-free ingest's, in per-call order."""
    reference = rig.load.reference
    diff = _diff(delivered, rig, ids)
    examples = [reference.events[m] for m in sorted(diff.missing)[:3]]
    assert not diff.missing, f"{len(diff.missing)} events lost, e.g. {examples}"
    assert not diff.extra, f"{len(diff.extra)} unexpected, e.g. {[delivered.events[e] for e in sorted(diff.extra)[:3]]}"
    changed = sorted(diff.changed)
    assert not changed, (f"{len(changed)} events differ from a fault-free ingest's, e.g. "
                         f"{reference.events[changed[0]].value!r} vs {delivered.events[changed[0]]}")
    assert not delivered.differing_duplicates, "a replayed duplicate must be a byte-identical copy"
    assert not delivered.order_violations, delivered.order_violations
    assert not delivered.calls_split, "a call's events must share one partition"


def _counts(ingest: IngestProcess) -> tuple[int, int]:
    """(ESL events read, records published to the events topic) from ``/healthz``."""
    health = ingest.health()
    assert health is not None
    return int(health["events_in"]), int(health["events_out"])  # type: ignore[call-overload]


def _dead_letters(rig: Rig) -> list[DeadLetter]:
    return [DeadLetter.model_validate_json(v) for _, _, _, v in read_all(rig.bootstrap, rig.dlq_topic)]


def _assert_expected_dead_letters(letters: list[DeadLetter], rig: Rig) -> None:
    """Exactly the dead letters a fault-free ingest produces (events it cannot attribute), no more."""
    got = Counter(letter.reason for letter in letters if letter.stage == "normalize")
    assert got == rig.load.reference.dead_letters
    assert len(letters) == sum(got.values())


# ---- 1. Kafka down for 30 s in the middle of a large load ---------------------------------------

# The 20,000 calls pass too (``CCOD_FAULT_OUTAGE_CALLS=20000``: ~1.46M ESL events, ~184k canonical
# ones) but take ~3 minutes on a shared 2-core machine; by default a quarter of that keeps this file lean.
OUTAGE_CALLS = int(os.environ.get("CCOD_FAULT_OUTAGE_CALLS", "5000"))
OUTAGE_S = 30.0


@pytest.fixture
def kafka(private_kafka: KafkaBroker) -> KafkaBroker:
    """This module's own broker (tests/conftest.py ``private_kafka``): killed for 30 s here."""
    return private_kafka


def test_kafka_down_30s_mid_load_loses_nothing(kafka: KafkaBroker, tmp_path: Path) -> None:
    started = time.monotonic()
    profile = LoadProfile(calls=OUTAGE_CALLS, nodes=1, tenants=4, arrivals_per_s=1.0, seed=41)
    rig = _rig(profile, kafka.bootstrap, tmp_path, track_state=False)
    ingest = rig.start_ingest()
    phases = {"setup": time.monotonic() - started}
    try:
        conn = rig.new_subscriber([])
        planned = OUTAGE_CALLS * EVENTS_PER_CALL
        # Paced (at most; a loaded machine plays slower) so the simulator is still playing when
        # Kafka comes back: ~15% of the load before the kill, the rest over the outage and after.
        handle = rig.server.play(rig.load.segment(max_rate=planned / (OUTAGE_S + 12)))
        wait_until(lambda: handle.events >= planned * 15 // 100, 300, "15% of the load played")
        in_before, out_before = _counts(ingest)
        kafka.kill()
        killed = time.monotonic()
        wait_until(lambda: ingest.metrics().get("ccod_ingest_kafka_up") == 0, 60, "the ingest to see Kafka down")
        max_depth, out_mid = 0.0, -1
        while time.monotonic() - killed < OUTAGE_S:
            if out_mid < 0 and time.monotonic() - killed > OUTAGE_S * 2 / 3:
                out_mid = _counts(ingest)[1]
            max_depth = max(max_depth, ingest.metrics().get("ccod_ingest_spool_depth", 0.0))
            time.sleep(0.5)
        in_outage = ingest.events_in() - in_before
        played_at_restart = handle.events
        kafka.restart()
        handle.wait(600)
        phases["played"] = time.monotonic() - started
        assert played_at_restart < handle.events, "the simulator must still be playing when Kafka returns"
        # Events kept coming in, and what they became stayed spooled, unconfirmed, until Kafka returned.
        assert in_outage > 0 and out_mid > out_before and max_depth >= out_mid - out_before
        assert rig.load.exhausted
        _wait_read_everything(ingest, conn)
        assert conn.events_sent == len(rig.load.reference.subscribed_seqs)
        _wait_acked(ingest)
        phases["acked"] = time.monotonic() - started
        records = read_all(kafka.bootstrap, rig.events_topic)
        phases["read"] = time.monotonic() - started
    finally:
        ingest.proc.send_signal(signal.SIGTERM)
        code = ingest.proc.wait(60)
        rig.server.stop()
    assert code == 0, ingest.log_tail()
    delivered = analyze(records)
    _assert_matches_reference(delivered, rig)
    _assert_expected_dead_letters(_dead_letters(rig), rig)
    phases["checked"] = time.monotonic() - started
    print(f"\nkafka outage: {OUTAGE_CALLS} calls, {rig.load.pulled} ESL events played, {conn.events_sent} "
          f"subscribed, {len(delivered.ids)} canonical events; {in_outage} ESL events read during the "
          f"{OUTAGE_S:.0f}s outage, spool peak {max_depth:.0f}; {delivered.records} records, "
          f"{delivered.duplicates} physical duplicates; at s: { {k: round(v) for k, v in phases.items()} }")


# ---- 2. the ingest SIGKILLed and restarted twice -------------------------------------------------

KILL_CALLS = 900


def test_ingest_sigkilled_twice_between_segments_loses_nothing(kafka: KafkaBroker, tmp_path: Path) -> None:
    profile = LoadProfile(calls=KILL_CALLS, nodes=1, tenants=3, arrivals_per_s=0.5, seed=42)
    rig = _rig(profile, kafka.bootstrap, tmp_path)
    third = KILL_CALLS * EVENTS_PER_CALL // 3
    known: list[ClientConnection] = []
    unacked_at_kill: list[int] = []
    ingest: IngestProcess | None = None
    try:
        for index in range(3):
            start_seq = spool_view(rig.spool_dir).end_seq if rig.spool_dir.exists() else 0
            ingest = rig.start_ingest()
            conn = rig.new_subscriber(known)
            rig.server.play(rig.load.segment(events=third if index < 2 else None)).wait(300)
            _wait_read_everything(ingest, conn)
            if index == 2:
                break
            # Durable against SIGKILL once written to the OS: every record it published is on disk.
            health = ingest.health()
            assert health is not None
            published = int(health["events_out"]) + int(health["dead_lettered"])  # type: ignore[call-overload]
            wait_until(lambda: spool_view(rig.spool_dir).end_seq >= start_seq + published, 60,  # noqa: B023
                       "the spool to hold every published record")
            # The normalizer's call state is snapshotted every 2 s; kill once it covers everything read,
            # so the restarted process knows the calls in progress (nothing more may be asked of SIGKILL).
            read_at = time.time()
            state_file = rig.spool_dir / "normalizer-state.json"
            wait_until(lambda: state_file.exists() and state_file.stat().st_mtime > read_at, 60,  # noqa: B023
                       "a state snapshot taken after the last event was read")
            ingest.proc.send_signal(signal.SIGKILL)
            assert ingest.proc.wait(30) == -signal.SIGKILL
            view = spool_view(rig.spool_dir)
            unacked_at_kill.append(view.end_seq - view.acked_seq)
            wait_until(conn.closed.is_set, 30, "the simulator to see the killed ingest's socket close")
        assert ingest is not None and rig.load.exhausted
        _wait_acked(ingest)
        records = read_all(kafka.bootstrap, rig.events_topic)
        restarts = ingest.metrics()
    finally:
        code = -1
        if ingest is not None and ingest.proc.poll() is None:
            ingest.proc.send_signal(signal.SIGTERM)
            code = ingest.proc.wait(60)
        rig.server.stop()
    assert code == 0, ingest.log_tail() if ingest else ""
    assert restarts.get("ccod_ingest_esl_reconnects_total", 0) == 0, "each process connected once"
    delivered = analyze(records)
    letters = _dead_letters(rig)
    reference = rig.load.reference
    gap = rig.load.seq_gap
    segments_of: dict[str, set[int]] = defaultdict(set)
    for e in reference.events.values():
        if e.call_id is not None:
            segments_of[e.call_id].add(e.seq // gap)
    across = {call for call, segments in segments_of.items() if len(segments) > 1}
    assert across, "calls in progress at a kill are part of the test"
    # Only the spool's unconfirmed tail at each kill is replayed (copies of what Kafka may have).
    assert delivered.duplicates <= sum(unacked_at_kill)
    # Exactly what a fault-free ingest publishes, calls in progress at a kill included: the restarted
    # process restores the normalizer's snapshot, so it attributes their legs as before.
    _assert_matches_reference(delivered, rig, set(reference.events))
    diff = _diff(delivered, rig)
    assert not diff.missing and not diff.changed and not diff.extra, (
        len(diff.missing), len(diff.changed), len(diff.extra))
    assert not [letter for letter in letters if letter.stage == "normalize"
                and letter.reason in ("call-unknown", "tenant-missing")]
    print(f"\ningest kills: {KILL_CALLS} calls, {rig.load.pulled} ESL events in 3 segments, "
          f"{len(delivered.ids)} canonical events, unacked in the spool at the kills {unacked_at_kill}, "
          f"{delivered.records} records, {delivered.duplicates} physical duplicates; {len(across)} calls "
          f"across a kill, all exactly as without faults")


# ---- 3. the ESL connection dropped mid-run -------------------------------------------------------

DROP_CALLS = 800


def test_esl_drop_reconnects_resyncs_and_duplicates_nothing(kafka: KafkaBroker, tmp_path: Path) -> None:
    profile = LoadProfile(calls=DROP_CALLS, nodes=1, tenants=3, arrivals_per_s=0.5, seed=43)
    drop_after = DROP_CALLS * 14 * 2 // 5  # ~40% of the subscribed events (~14 a call)
    rig = _rig(profile, kafka.bootstrap, tmp_path, options=ConnectionOptions(drop_after_events=drop_after))
    reference = rig.load.reference
    known: list[ClientConnection] = []
    ingest = rig.start_ingest()
    try:
        first = rig.new_subscriber(known)
        rig.server.options = ConnectionOptions()  # only the first connection drops
        # Stop accepting while the drop happens and the switch carries on alone: the events of
        # that gap are gone for the ingest (FreeSWITCH does not resend to a reconnecting client).
        # (The simulator has no pause; closing its listener and starting it again on the same
        # port does it, and the accepted connection is untouched.)
        assert rig.server._listener is not None
        rig.server._listener.close()
        rig.server.play(rig.load.segment(subscribed=drop_after)).wait(300)
        wait_until(first.closed.is_set, 30, "the simulator to drop the connection")
        wait_until(lambda: ingest.metrics().get("ccod_ingest_esl_connected") == 0, 60, "the ingest to see the drop")
        received_first = ingest.events_in()
        rig.server.play(rig.load.segment(events=DROP_CALLS * EVENTS_PER_CALL // 10)).wait(300)
        rig.server.start()
        second = rig.new_subscriber(known)
        wait_until(lambda: ingest.metrics().get("ccod_ingest_esl_reconnects_total") == 1, 60, "a reconnect")
        rig.server.play(rig.load.segment()).wait(300)
        wait_until(lambda: ingest.events_in() == received_first + second.events_sent, 300,
                   "the ingest to read everything after the reconnect")
        _wait_acked(ingest)
        metrics = ingest.metrics()
        records = read_all(kafka.bootstrap, rig.events_topic)
    finally:
        ingest.proc.send_signal(signal.SIGTERM)
        code = ingest.proc.wait(60)
        rig.server.stop()
    assert code == 0, ingest.log_tail()
    assert metrics["ccod_ingest_esl_reconnects_total"] == 1
    assert first.events_sent == drop_after
    subscribed = reference.subscribed_seqs
    prefix = set(subscribed[:received_first])
    gap = set(subscribed[received_first:len(subscribed) - second.events_sent])
    suffix = set(subscribed[len(subscribed) - second.events_sent:])
    # An abortive close (RST) discards what was still in the socket buffers: a prefix arrived.
    assert 0 < received_first <= drop_after
    assert gap, "events were missed while disconnected"

    delivered = analyze(records)
    assert delivered.duplicates == 0, "a reconnect must not republish anything"
    assert not delivered.order_violations, delivered.order_violations
    # Before the drop the ingest saw exactly what a fault-free one sees.
    _assert_matches_reference(delivered, rig, reference.ids(prefix))
    by_seq = {e["source"]["event_sequence"] for e in delivered.events.values()}  # type: ignore[index]
    assert not (by_seq & gap), "nothing can come from events the ingest never received"

    # Legs alive before the drop that hung up while away are ended by the resync, exactly once each.
    ended_in_gap = {orjson.loads(e.value)["payload"]["leg_uuid"] for e in reference.events.values()
                    if e.type == "call.ended" and e.seq in gap}
    known_legs = {orjson.loads(e.value)["payload"].get("leg_uuid") for e in reference.events.values()
                  if e.seq in prefix}
    resynced = [e for e in delivered.events.values() if e["source"]["event_sequence"] is None]  # type: ignore[index]
    resync_ended = Counter(e["payload"]["leg_uuid"] for e in resynced if e["type"] == "call.ended")  # type: ignore[index]
    assert set(resync_ended) <= ended_in_gap, "the resync ends only legs that really ended while away"
    assert set(resync_ended) >= ended_in_gap & known_legs
    ends = Counter(e["payload"]["leg_uuid"] for e in delivered.events.values() if e["type"] == "call.ended")  # type: ignore[index]
    assert max(ends.values()) == 1, "no leg ends twice"

    # Agents whose status or state changed while away get one catch-up event each, from what
    # they were before the drop to what they are at the reconnect.
    def agent_values(seqs: set[int]) -> dict[tuple[str, str], str]:
        values: dict[tuple[str, str], str] = {}
        for e in sorted(reference.events.values(), key=lambda e: e.seq):
            if e.seq in seqs and e.type in ("agent.status_changed", "agent.state_changed"):
                kind = e.type.split(".")[1].removesuffix("_changed")
                values[orjson.loads(e.value)["agent_id"], kind] = orjson.loads(e.value)["payload"][kind]
        return values

    before, at_reconnect = agent_values(prefix), agent_values(prefix | gap)
    missed = {(agent, kind, before[agent, kind], value) for (agent, kind), value in at_reconnect.items()
              if (agent, kind) in before and before[agent, kind] != value}
    caught_up = {(e["agent_id"], kind, e["payload"]["previous"], e["payload"][kind])  # type: ignore[index]
                 for e in resynced for kind in ("status", "state") if e["type"] == f"agent.{kind}_changed"}
    assert caught_up == missed and len(resynced) == len(resync_ended) + len(caught_up)

    # After the reconnect: calls that began after the drop are exactly what a fault-free ingest publishes.
    touched = {e.call_id for e in reference.events.values() if e.seq in prefix or e.seq in gap}
    after = {eid for eid, e in reference.events.items() if e.seq in suffix and e.call_id not in touched}
    _assert_matches_reference(delivered, rig, after)
    # Calls in progress across the gap lost what happened in it; what the ingest saw of them is
    # published once, with the ids of the events it saw.
    across = _diff(delivered, rig, {eid for eid, e in reference.events.items() if e.seq in suffix} - after)
    print(f"\nesl drop: {DROP_CALLS} calls, drop after {drop_after} subscribed events, ingest read "
          f"{received_first} + {second.events_sent}, missed {len(gap)}; {len(resynced)} resync events "
          f"({sum(resync_ended.values())} call.ended, {len(caught_up)} agent catch-ups), "
          f"{len(delivered.ids)} canonical events, 0 duplicates; events of calls across the gap vs fault-free: "
          f"{len(across.missing)} missing, {len(across.changed)} changed")


# ---- 4. garbage frames between valid ones --------------------------------------------------------

GARBAGE_CALLS = 300
GARBAGE_EVERY = 25


def test_garbage_frames_are_dead_lettered_and_valid_events_all_arrive(kafka: KafkaBroker, tmp_path: Path) -> None:
    profile = LoadProfile(calls=GARBAGE_CALLS, nodes=1, tenants=2, arrivals_per_s=0.5, seed=44)
    rig = _rig(profile, kafka.bootstrap, tmp_path, options=ConnectionOptions(garbage_every=GARBAGE_EVERY),
               track_state=False)
    ingest = rig.start_ingest()
    try:
        conn = rig.new_subscriber([])
        rig.server.play(rig.load.segment()).wait(300)
        _wait_read_everything(ingest, conn)
        _wait_acked(ingest)
        health = ingest.health()
        records = read_all(kafka.bootstrap, rig.events_topic)
        letters = _dead_letters(rig)
    finally:
        ingest.proc.send_signal(signal.SIGTERM)
        code = ingest.proc.wait(60)
        rig.server.stop()
    assert code == 0, ingest.log_tail()
    assert conn.garbage_sent == conn.events_sent // GARBAGE_EVERY > 0
    delivered = analyze(records)
    assert delivered.duplicates == 0
    _assert_matches_reference(delivered, rig)

    # The garbage, and only it, beyond the dead letters a fault-free ingest produces anyway.
    expected = rig.load.reference.dead_letters
    garbage = [letter for letter in letters if letter.stage != "normalize" or letter.reason not in expected]
    unattributable = Counter(letter.reason for letter in letters if letter not in garbage)
    assert unattributable == expected
    assert health is not None and health["dead_lettered"] == len(letters)
    assert len(garbage) == conn.garbage_sent
    assert all(letter.origin == rig.load.node.hostname and letter.reason and letter.detail for letter in garbage)
    raws = [base64.b64decode(letter.raw_b64) for letter in garbage]
    for frame in GARBAGE_FRAMES:  # each kind of garbage frame is kept, whole or as its body
        assert any(raw and raw in frame for raw in raws), frame
    assert all(any(raw and raw in frame for frame in GARBAGE_FRAMES) for raw in raws)
    reasons = Counter((letter.stage, letter.reason) for letter in garbage)
    assert len(reasons) >= 3, reasons
    print(f"\ngarbage: {conn.events_sent} events with {conn.garbage_sent} garbage frames; "
          f"{len(delivered.ids)} canonical events, dead letters {dict(reasons)}")
