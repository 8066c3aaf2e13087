"""The load generator: deterministic, capture-shaped, and its ground truth is what the events say."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from functools import cache

import orjson
import pytest

from ccod_fs.simulator.archetypes import ARCHETYPE_NAMES, archetype
from ccod_fs.simulator.loadgen import LoadProfile, LoadSimulation, QueueTotals
from ccod_fs.simulator.loadstream import CallStream, NodeLoad

PROFILE = LoadProfile(calls=400, nodes=2, tenants=3, queues_per_tenant=2, agents_per_queue=4,
                      arrivals_per_s=0.5, p_offer_failures=0.15, p_ring_abandon=0.08, p_hold=0.3, max_wait_s=30.0,
                      seed=11)


@cache
def run(profile: LoadProfile = PROFILE) -> tuple[LoadSimulation, list[list[dict[str, object]]]]:
    simulation = LoadSimulation(profile)
    streams = [[orjson.loads(ev.payload("json")) for ev in NodeLoad(simulation, i).events()]
               for i in range(profile.nodes)]
    return simulation, streams


def test_every_outcome_and_offer_failure_kind_occurs() -> None:
    simulation, _ = run()
    outcomes = Counter(call.outcome for call in simulation.truth)
    assert set(outcomes) == {"answered", "abandoned_waiting", "abandoned_ringing", "timeout"}
    failures = Counter(f for call in simulation.truth for f in call.failed_offers)
    assert set(failures) == {"NO_ANSWER", "USER_BUSY", "ORIGINATOR_CANCEL"}
    assert sum(call.holds for call in simulation.truth) > 0
    assert sum(call.dtmf for call in simulation.truth) > 0
    assert Counter(plan.archetype for plan in simulation.plans).keys() == set(ARCHETYPE_NAMES)


def test_same_seed_same_bytes_other_seed_other_stream() -> None:
    small = LoadProfile(calls=30, seed=5)
    a = b"".join(ev.payload("json") for ev in NodeLoad(LoadSimulation(small), 0).events())
    b = b"".join(ev.payload("json") for ev in NodeLoad(LoadSimulation(small), 0).events())
    other = LoadProfile(calls=30, seed=6)
    c = b"".join(ev.payload("json") for ev in NodeLoad(LoadSimulation(other), 0).events())
    assert a == b
    assert a != c


def test_per_node_sequence_is_contiguous_and_time_never_goes_back() -> None:
    simulation, streams = run()
    for node, events in zip(simulation.nodes, streams, strict=True):
        seqs = [int(e["Event-Sequence"]) for e in events]
        assert seqs == list(range(1, len(seqs) + 1))
        stamps = [int(e["Event-Date-Timestamp"]) for e in events]
        assert all(a <= b for a, b in itertools.pairwise(stamps))
        assert {e["Core-UUID"] for e in events} == {node.core_uuid}
        assert {e["FreeSWITCH-Hostname"] for e in events} == {node.hostname}


def _calls_from_events(streams: list[list[dict[str, object]]]) -> dict[str, dict[str, object]]:
    """What an ingest can read off the events: per member session, the queue timeline."""
    calls: dict[str, dict[str, object]] = defaultdict(dict)
    for events in streams:
        for e in events:
            if e.get("Event-Subclass") != "callcenter::info" or "CC-Member-Session-UUID" not in e:
                continue
            call = calls[str(e["CC-Member-Session-UUID"])]
            action, ts = e["CC-Action"], int(str(e["Event-Date-Timestamp"]))
            if action == "member-queue-start":
                call.update(joined=ts, tenant=e["variable_ccod_tenant"], queue=e["CC-Queue"],
                            joined_s=int(str(e["variable_cc_queue_joined_epoch"])))
            elif action == "bridge-agent-start":
                call.update(answered=ts, agent=e["CC-Agent"])
            elif action == "bridge-agent-fail":
                call.setdefault("failed", []).append(e["CC-Hangup-Cause"])  # type: ignore[union-attr]
            elif action == "member-queue-end":
                call.update(ended=ts, cause=e["CC-Cause"], reason=e.get("CC-Cancel-Reason"),
                            left_s=int(str(e["CC-Member-Leaving-Time"])),
                            joined_s_at_end=int(str(e["CC-Member-Joined-Time"])))
    return calls


def test_ground_truth_is_exactly_what_the_events_say() -> None:
    simulation, streams = run()
    seen = _calls_from_events(streams)
    assert len(seen) == len(simulation.truth) == PROFILE.calls
    totals: dict[tuple[str, str], QueueTotals] = {}
    for truth in simulation.truth:
        call = seen[truth.caller_uuid]
        assert call["tenant"] == truth.tenant and call["queue"] == truth.queue
        assert call["joined"] == truth.joined_us and call["ended"] == truth.ended_us
        assert call["joined_s"] == call["joined_s_at_end"] == truth.joined_us // 1_000_000
        assert call["left_s"] == truth.ended_us // 1_000_000
        assert call.get("answered") == truth.answered_us
        assert call.get("agent") == truth.agent
        assert sorted(call.get("failed", [])) == sorted(truth.failed_offers)  # type: ignore[arg-type]
        expected = {"answered": ("Terminated", None), "abandoned_waiting": ("Cancel", "BREAK_OUT"),
                    "abandoned_ringing": ("Cancel", "BREAK_OUT"), "timeout": ("Cancel", "NO_AGENT_TIMEOUT")}
        assert (call["cause"], call["reason"]) == expected[truth.outcome]
        totals.setdefault((truth.tenant, truth.queue), QueueTotals()).add(truth)
    assert totals == simulation.totals()


def test_wait_and_talk_follow_the_plan() -> None:
    simulation, _ = run()
    for plan, truth in zip(simulation.plans, simulation.truth, strict=True):
        if truth.outcome == "answered" and plan.archetype != "answered-after-failures":
            wait, ring, talk = plan.phase_us
            assert truth.answered_us is not None
            assert abs((truth.answered_us - truth.joined_us) - (wait + ring)) <= 60_000  # type: ignore[operator]
            assert abs(truth.talk_us - talk) <= 1  # type: ignore[operator]
        if truth.outcome == "abandoned_waiting":
            assert truth.wait_us == plan.phase_us[0]


def test_no_agent_is_ever_in_two_calls_at_once() -> None:
    _, streams = run()
    busy: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for events in streams:
        open_at: dict[str, int] = {}
        for e in events:
            if e.get("CC-Action") == "agent-offering":
                agent = str(e["CC-Agent"])
                assert agent not in open_at, agent
                open_at[agent] = int(str(e["Event-Date-Timestamp"]))
            elif e.get("CC-Action") in ("bridge-agent-end", "bridge-agent-fail"):
                agent = str(e["CC-Agent"])
                busy[agent].append((open_at.pop(agent), int(str(e["Event-Date-Timestamp"]))))
    assert len(busy) > 10


def test_tenants_and_queues_never_mix() -> None:
    simulation, streams = run()
    by_uuid = {t.caller_uuid: t for t in simulation.truth}
    for events in streams:
        for e in events:
            call = e.get("Channel-Call-UUID")
            if isinstance(call, str) and call in by_uuid and "variable_ccod_tenant" in e:
                truth = by_uuid[call]
                assert e["variable_ccod_tenant"] == truth.tenant
                assert e.get("variable_cc_queue", truth.queue) == truth.queue
            agent = e.get("CC-Agent")
            if isinstance(agent, str) and "CC-Queue" in e:
                assert agent.split("@")[1] == str(e["CC-Queue"]).split("@")[1]


def test_every_call_has_its_archetypes_events_headers_and_order() -> None:
    """Each simulated call is its captured archetype: same events, same order, same header names."""
    simulation, streams = run()
    owner: dict[str, int] = {}
    for k, plan in enumerate(simulation.plans):
        for uuid in CallStream(plan, simulation.nodes[plan.queue.node]).ctx.uuids:
            owner[uuid] = k
    per_call: dict[int, list[tuple[str, ...]]] = defaultdict(list)
    for events in streams:
        for e in events:
            if e["Event-Name"] in ("CHANNEL_HOLD", "CHANNEL_UNHOLD") or e.get("ccod_action") == "transfer":
                continue  # added to the archetype (tests of their own)
            for key in ("Unique-ID", "CC-Member-Session-UUID", "CC-Member-UUID"):
                if e.get(key) in owner:
                    per_call[owner[str(e[key])]].append(tuple(e))
                    break
    for k, plan in enumerate(simulation.plans):
        arch = archetype(plan.archetype)
        expected = [tuple(dict.fromkeys([name for name, _ in t.headers] + (["_body"] if t.body is not None else [])))
                    for t in arch.templates.templates
                    if any(name in ("Unique-ID", "CC-Member-Session-UUID", "CC-Member-UUID")
                           for name, _ in t.headers)]
        assert per_call[k] == expected, plan.archetype
    assert len(per_call) == PROFILE.calls


def test_holds_are_inside_the_talk_time_on_the_agent_leg() -> None:
    simulation, streams = run()
    holds: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for events in streams:
        for e in events:
            if e["Event-Name"] in ("CHANNEL_HOLD", "CHANNEL_UNHOLD"):
                holds[str(e["variable_cc_member_session_uuid"])].append(
                    (str(e["Event-Name"]), int(str(e["Event-Date-Timestamp"]))))
    assert sum(t.holds for t in simulation.truth) == sum(len(v) for v in holds.values()) // 2 > 0
    for truth in simulation.truth:
        if truth.holds:
            (hold, start), (unhold, end) = holds[truth.caller_uuid]
            assert (hold, unhold) == ("CHANNEL_HOLD", "CHANNEL_UNHOLD")
            assert truth.answered_us is not None and truth.answered_us < start < end < truth.ended_us


@pytest.mark.parametrize("fmt", ["json", "plain"])
def test_both_wire_formats_decode_to_the_same_headers(fmt: str) -> None:
    from ccod_fs.esl.decode import decode_json_body, decode_plain_body

    simulation = LoadSimulation(LoadProfile(calls=20, seed=2, p_hold=1.0))
    for ev in NodeLoad(simulation, 0).events():
        as_json = decode_json_body(ev.payload("json"))
        as_plain = decode_plain_body(ev.payload("plain"))
        assert as_json.headers == as_plain.headers
        assert as_json.body == as_plain.body


def test_agents_register_and_log_in_before_the_first_call() -> None:
    simulation, streams = run()
    for node_index, events in enumerate(streams):
        agents = [a for q in simulation.queues if q.node == node_index for a in q.agents]
        head = events[: 5 * len(agents)]
        registered = [e["from-user"] for e in head if e.get("Event-Subclass") == "sofia::register"]
        assert registered == [a.split("@")[0] for a in agents]
        assert Counter(e["Event-Name"] for e in head)["MESSAGE_QUERY"] == len(agents)
        logged_in = [e["CC-Agent"] for e in head if e.get("CC-Action") == "agent-status-change"]
        assert logged_in == agents
        assert all(e["CC-Agent-Status"] == "Available" for e in head if e.get("CC-Action"))
        for register in (e for e in head if e.get("Event-Subclass") == "sofia::register"):
            agent = next(a for a in agents if a.startswith(f"{register['from-user']}@"))
            assert register["ccod_tenant"] == agent.split("@")[1]  # the directory's user variables
            assert register["ccod_agent"] == register["from-user"]
            assert list(register)[-3:] == ["ccod_tenant", "ccod_agent", "user_context"]


def test_heartbeats_every_20s_report_the_nodes_live_sessions() -> None:
    _, streams = run()
    for events in streams:
        live = since = 0
        beats = []
        for e in events:
            if e["Event-Name"] == "CHANNEL_CREATE":
                live, since = live + 1, since + 1
            elif e["Event-Name"] == "CHANNEL_DESTROY":
                live -= 1
            elif e["Event-Name"] == "HEARTBEAT":
                assert e["Session-Count"] == str(live) and e["Session-Since-Startup"] == str(since)
                beats.append(int(str(e["Event-Date-Timestamp"])))
        assert len(beats) > 10
        assert {b - a for a, b in itertools.pairwise(beats)} == {20_000_000}
        assert max(int(str(e["Session-Count"])) for e in events if e["Event-Name"] == "HEARTBEAT") > 0


def test_members_count_tells_the_live_queue_size() -> None:
    _, streams = run()
    seen_busy = False
    for events in streams:
        in_queue: dict[str, set[str]] = defaultdict(set)
        answered: set[str] = set()
        for e in events:
            action = e.get("CC-Action")
            member = str(e.get("CC-Member-Session-UUID", ""))
            if action == "member-queue-start":
                in_queue[str(e["CC-Queue"])].add(member)
            elif action == "bridge-agent-start":
                answered.add(member)
            elif action == "member-queue-end":
                in_queue[str(e["CC-Queue"])].discard(member)
            elif action == "members-count":
                assert e["CC-Count"] == str(len(in_queue[str(e["CC-Queue"])]))
                seen_busy = seen_busy or len(in_queue[str(e["CC-Queue"])]) > 2
            elif e["Event-Name"] == "PRESENCE_IN" and e.get("proto") == "callcenter":
                waiting = len(in_queue[str(e["login"])] - answered)
                assert e["force-status"] == (f"Active ({waiting} waiting)" if waiting else "Idle")
    assert seen_busy


def test_an_isolated_call_counts_exactly_like_the_capture() -> None:
    simulation = LoadSimulation(LoadProfile(calls=40, nodes=1, arrivals_per_s=0.005, seed=2,
                                            p_offer_failures=0.3, p_ring_abandon=0.2))
    compared = 0
    for ev in NodeLoad(simulation, 0).events():
        tpl = getattr(ev, "tpl", None)
        if tpl is None or not tpl.dynamic:
            continue
        rendered = orjson.loads(ev.payload("json"))
        for slot in tpl.dynamic:
            header = "CC-Count" if slot[0] == "count" else "force-status"
            assert rendered[header] == slot[1]
            compared += 1
    assert compared >= 40 * 4


@pytest.mark.parametrize("seed", [1, 2])
def test_max_events_bounds_the_stream_tightly(seed: int) -> None:
    """--prerender reserves this many Event-Sequence numbers: never fewer than the stream has."""
    load = NodeLoad(LoadSimulation(LoadProfile(calls=120, seed=seed, arrivals_per_s=1.0)), 0)
    actual = sum(1 for _ in load.events())
    assert any(plan.holds for plan in load.plans)
    assert actual <= load.max_events() <= actual * 1.05


def test_transfers_are_fired_on_the_caller_leg_as_fs_dialplan_fires_them() -> None:
    """Each transferred call has one CUSTOM ccod::queue transfer, on the caller's leg, before its hangup."""
    simulation = LoadSimulation(LoadProfile(calls=300, nodes=1, seed=4, arrivals_per_s=0.3, p_transfer=0.5))
    truth = {t.caller_uuid: t for t in simulation.truth}
    expected = {u: t.transferred_to for u, t in truth.items() if t.transferred_to}
    assert len(expected) > 10
    transfers: dict[str, str] = {}
    hung_up: set[str] = set()
    for ev in NodeLoad(simulation, 0).events():
        if ev.name == "CUSTOM" and ev.subclass == "ccod::queue":
            pairs = orjson.loads(ev.payload("json"))
            names = list(pairs)
            assert "Event-Subclass" not in pairs  # the event app sets the subclass, not a header
            assert names.index("Event-Name") == names.index("Event-Sequence") + 1
            assert pairs["Event-Name"] == "CUSTOM" and pairs["ccod_subclass"] == "ccod::queue"
            assert pairs["Channel-Call-State"] == "ACTIVE" and "Bridge-A-Unique-ID" not in pairs
            uuid = str(pairs["Unique-ID"])
            assert uuid not in hung_up and uuid not in transfers
            transfers[uuid] = str(pairs["ccod_transfer_target"])
            assert pairs["variable_ccod_tenant"] == truth[uuid].tenant
        elif ev.name == "CHANNEL_HANGUP":
            hung_up.add(str(orjson.loads(ev.payload("json"))["Unique-ID"]))
    assert transfers == expected
