"""The TCP server speaks the Event Socket protocol byte-for-byte like the captured FreeSWITCH."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import orjson
import pytest
from sim_helpers import FIXTURES, EslTestClient

from ccod_fs.esl.decode import decode_event
from ccod_fs.esl.frames import iter_frames
from ccod_fs.simulator.connection import ConnectionOptions
from ccod_fs.simulator.replay import CaptureReplay
from ccod_fs.simulator.server import SimulatorServer

PASSWORD = "sim-test-secret"


@pytest.fixture
def server() -> Iterator[SimulatorServer]:
    srv = SimulatorServer(password=PASSWORD, start_us=1_800_000_000_000_000)
    srv.start()
    yield srv
    srv.stop()


def raw_exchange(port: int, commands: list[bytes], settle: float = 0.3) -> bytes:
    """Send commands one at a time and return every byte received until the server closes (or settles)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    data = b""
    try:
        data += sock.recv(4096)
        for command in commands:
            sock.sendall(command)
            time.sleep(0.05)
        sock.settimeout(settle)
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    return data


def drain(client: EslTestClient) -> None:
    """Everything the server queued before ``exit`` arrives before the disconnect notice."""
    client.send("exit")
    client.read_until(lambda: client.eof, timeout=20)
    assert client.frames[-1].content_type == "text/disconnect-notice"


def test_auth_failure_is_byte_identical_to_the_capture_and_closes(server: SimulatorServer) -> None:
    data = raw_exchange(server.port, [b"auth WrongPassword\n\n"], settle=2)
    assert data == (FIXTURES / "esl-auth-failure.raw").read_bytes()


def test_login_and_subscribe_replies_match_the_capture_prefix(server: SimulatorServer) -> None:
    data = raw_exchange(server.port, [f"auth {PASSWORD}\n\n".encode(), b"event json ALL\n\n"])
    captured = (FIXTURES / "esl-json-inbound-queue.raw").read_bytes()
    assert data == captured[: len(data)]
    assert data.endswith(b"Reply-Text: +OK event listener enabled json\n\n")


def test_exit_says_bye_then_disconnect_notice_like_the_capture(server: SimulatorServer) -> None:
    data = raw_exchange(server.port, [f"auth {PASSWORD}\n\n".encode(), b"exit\n\n"], settle=2)
    tail = (FIXTURES / "esl-json-inbound-queue.raw").read_bytes()[-len(data) + len(b"Content-Type: auth/request\n\n")
                                                                     + len(b"Content-Type: command/reply\n"
                                                                           b"Reply-Text: +OK accepted\n\n"):]
    assert data.endswith(tail)
    assert tail.startswith(b"Content-Type: command/reply\nReply-Text: +OK bye\n\n")


@pytest.mark.parametrize(
    ("command", "fixture"),
    [
        ("api nosuchcommand", "api-err-command-not-found.raw"),
        ("api uuid_kill 00000000-0000-0000-0000-000000000000", "api-err-uuid-kill-no-such-channel.raw"),
        ("api show channels as json", "api-show-channels-json-empty.raw"),
        ("api show channels", "api-show-channels-text-empty.raw"),
        ("api callcenter_config agent set status 1000@default Available", "api-callcenter-agent-set-status.raw"),
    ],
)
def test_api_replies_are_byte_identical_to_the_captures(server: SimulatorServer, command: str, fixture: str) -> None:
    CaptureReplay("inbound-queue").configure(server.state)
    client = EslTestClient(server.port)
    client.login(PASSWORD, subscribe=None)
    client.send(command)
    client.read_until(lambda: any(f.content_type == "api/response" for f in client.frames))
    reply = next(f for f in client.frames if f.content_type == "api/response")
    expected, _ = iter_frames((FIXTURES / fixture).read_bytes())
    assert reply.headers == expected[0].headers
    assert reply.body == expected[0].body
    client.close()


def test_subscription_filters_names_and_custom_subclasses(server: SimulatorServer) -> None:
    client = EslTestClient(server.port)
    client.login(PASSWORD, "event json CHANNEL_CREATE CHANNEL_HANGUP_COMPLETE CUSTOM callcenter::info")
    everything = EslTestClient(server.port)
    everything.login(PASSWORD, "event plain ALL")
    server.wait_for_subscribers(2)
    server.play(CaptureReplay("inbound-queue")).wait(30)
    drain(client)
    got = client.events()
    names = {(e.name, e.subclass) for e in got}
    assert names == {("CHANNEL_CREATE", None), ("CHANNEL_HANGUP_COMPLETE", None), ("CUSTOM", "callcenter::info")}
    assert len(got) == 59
    all_events = everything.wait_events(398)
    assert len(all_events) == 398
    assert all(f.content_type == "text/event-plain" for f in everything.event_frames())
    # The same event reads the same through both formats (array variables included).
    hangup_plain = next(e for e in all_events if e.name == "CHANNEL_HANGUP_COMPLETE")
    hangup_json = next(e for e in got if e.name == "CHANNEL_HANGUP_COMPLETE")
    assert hangup_plain.headers == hangup_json.headers
    assert hangup_json.headers["variable_DP_MATCH"] == ["7000", "7000"]
    assert hangup_json.headers["variable_ccod_tenant"] == "acme"
    client.close()
    everything.close()


def test_custom_without_subclass_gets_no_subclassed_events(server: SimulatorServer) -> None:
    client = EslTestClient(server.port)
    client.login(PASSWORD, "event json CUSTOM HEARTBEAT")
    server.wait_for_subscribers(1)
    server.play(CaptureReplay("inbound-queue")).wait(30)
    drain(client)
    events = client.events()
    assert {e.name for e in events} == {"HEARTBEAT"}
    assert len(events) == 3


def test_event_json_frames_have_no_trailing_newline_and_decode(server: SimulatorServer) -> None:
    client = EslTestClient(server.port)
    client.login(PASSWORD)
    server.wait_for_subscribers(1)
    server.play(CaptureReplay("queue-edge-cases")).wait(30)
    client.wait_events(417)
    frames = client.event_frames()
    assert all(f.headers == {"Content-Length": str(len(f.body)), "Content-Type": "text/event-json"}
               for f in frames)
    assert all(f.body.endswith(b"}") for f in frames)
    bg = [decode_event(f) for f in frames if b'"BACKGROUND_JOB"' in f.body[:40]]
    assert len(bg) == 1 and bg[0].body == "-ERR NORMAL_TEMPORARY_FAILURE\n"
    assert bg[0].headers["Content-Length"] == str(len(bg[0].body))
    seqs = [int(decode_event(f).headers["Event-Sequence"]) for f in frames]
    assert len(set(seqs)) == len(seqs)
    client.close()


def test_plain_background_job_has_inner_content_length_and_body(server: SimulatorServer) -> None:
    client = EslTestClient(server.port)
    client.login(PASSWORD, "event plain BACKGROUND_JOB")
    server.wait_for_subscribers(1)
    client.send("bgapi status")
    client.read_until(lambda: len(client.event_frames()) >= 1)
    reply = next(f for f in client.frames if f.headers.get("Reply-Text", "").startswith("+OK Job-UUID: "))
    job = reply.headers["Job-UUID"]
    assert reply.headers["Reply-Text"] == f"+OK Job-UUID: {job}"
    frame = client.event_frames()[0]
    head, _, body = frame.body.partition(b"\n\n")
    assert head.endswith(b"Content-Length: %d" % len(body))
    event = decode_event(frame)
    assert event.headers["Job-UUID"] == job and event.headers["Job-Command"] == "status"
    assert event.body is not None and event.body.startswith("UP 0 years") and "is ready" in event.body
    client.close()


def test_show_channels_and_calls_reflect_live_channels(server: SimulatorServer) -> None:
    replay = CaptureReplay("inbound-queue")
    events = list(replay.events(server.node, 1))
    bridged = next(i for i, ev in enumerate(events) if ev.name == "CHANNEL_BRIDGE")

    class FirstCall:
        def events(self, node, seq_start):
            return iter(events[: bridged + 8])

    client = EslTestClient(server.port)
    client.login(PASSWORD)
    server.wait_for_subscribers(1)
    server.play(FirstCall()).wait(30)  # type: ignore[arg-type]
    client.send("api show channels as json")
    client.send("api show calls as json")
    client.read_until(lambda: sum(f.content_type == "api/response" for f in client.frames) >= 2)
    replies = [orjson.loads(f.body) for f in client.frames if f.content_type == "api/response"]
    channels, calls = replies
    caller = next(ev for ev in events if ev.name == "CHANNEL_CREATE").event().get("Unique-ID")
    assert channels["row_count"] == 2
    assert {row["uuid"] for row in channels["rows"]} >= {caller}
    caller_row = next(row for row in channels["rows"] if row["uuid"] == caller)
    assert caller_row["cid_num"] == "5552001" and caller_row["dest"] == "7000"
    assert caller_row["callstate"] == "ACTIVE" and caller_row["direction"] == "inbound"
    assert calls["row_count"] == 1 and calls["rows"][0]["uuid"] == caller
    assert calls["rows"][0]["b_uuid"] == next(r["uuid"] for r in channels["rows"] if r["uuid"] != caller)
    client.close()


def test_agent_status_change_fires_the_callcenter_event_then_the_api_event(server: SimulatorServer) -> None:
    CaptureReplay("inbound-queue").configure(server.state)
    client = EslTestClient(server.port)
    client.login(PASSWORD)
    server.wait_for_subscribers(1)
    client.send("api callcenter_config agent set status 1001@default 'On Break'")
    events = client.wait_events(2)
    assert [e.name for e in events] == ["CUSTOM", "API"]
    assert events[0].headers["CC-Action"] == "agent-status-change"
    assert events[0].headers["CC-Agent-Status"] == "On Break"
    assert int(events[0].headers["Event-Sequence"]) == int(events[1].headers["Event-Sequence"]) + 1
    assert server.state.agents["1001@default"].status == "On Break"
    client.close()


def test_several_clients_get_the_same_stream(server: SimulatorServer) -> None:
    clients = [EslTestClient(server.port) for _ in range(3)]
    for client in clients:
        client.login(PASSWORD)
    server.wait_for_subscribers(3)
    server.play(CaptureReplay("inbound-queue")).wait(30)
    bodies = []
    for client in clients:
        client.wait_events(398)
        bodies.append([f.body for f in client.event_frames()])
        client.close()
    assert bodies[0] == bodies[1] == bodies[2]


def test_drop_after_n_events_closes_without_notice() -> None:
    with SimulatorServer(password=PASSWORD, options=ConnectionOptions(drop_after_events=50)) as srv:
        client = EslTestClient(srv.port)
        client.login(PASSWORD)
        srv.wait_for_subscribers(1)
        srv.play(CaptureReplay("inbound-queue")).wait(30)
        client.read_until(lambda: client.eof, timeout=10)
        assert len(client.event_frames()) == 50
        assert not any(f.content_type == "text/disconnect-notice" for f in client.frames)
        assert client.parser.take_errors() == []


def test_garbage_frames_cost_only_themselves() -> None:
    with SimulatorServer(password=PASSWORD, options=ConnectionOptions(garbage_every=40)) as srv:
        client = EslTestClient(srv.port)
        client.login(PASSWORD)
        srv.wait_for_subscribers(1)
        srv.play(CaptureReplay("inbound-queue")).wait(30)
        client.read_until(lambda: sum(f.content_type == "text/event-json" for f in client.frames) >= 398 + 6)
        injected = srv.subscribers()[0].garbage_sent
        assert injected == 398 // 40
        decoded, failed = 0, 0
        for frame in client.event_frames():
            try:
                decode_event(frame)
                decoded += 1
            except Exception:
                failed += 1
        framing_errors = client.parser.take_errors()
        assert decoded == 398
        assert failed + len(framing_errors) == injected
        client.close()


def test_trickled_bytes_split_frames_anywhere_and_still_parse() -> None:
    with SimulatorServer(password=PASSWORD, options=ConnectionOptions(trickle=True, overflow="drop")) as srv:
        client = EslTestClient(srv.port)
        client.login(PASSWORD)
        srv.wait_for_subscribers(1)
        srv.play(CaptureReplay("queue-edge-cases")).wait(30)
        events = client.wait_events(417, timeout=60)
        assert len(events) == 417 and client.parser.take_errors() == []
        client.close()


def test_slow_consumer_loses_events_like_freeswitch_with_sequence_gaps() -> None:
    options = ConnectionOptions(overflow="drop", queue_limit=100)
    with SimulatorServer(password=PASSWORD, options=options) as srv:
        client = EslTestClient(srv.port)
        client.login(PASSWORD)
        srv.wait_for_subscribers(1)
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        conn = srv.subscribers()[0]
        handle = srv.play(CaptureReplay("inbound-queue"))
        for _ in range(3):  # three plays back to back while the client is not reading
            handle.wait(30)
            handle = srv.play(CaptureReplay("inbound-queue", seed=9))
        handle.wait(30)
        time.sleep(0.5)
        client.read_until(lambda: len(client.event_frames()) >= conn.events_sent, timeout=30)
        assert conn.events_dropped > 0
        seqs = [int(e.headers["Event-Sequence"]) for e in client.events()]
        assert len(seqs) == conn.events_sent == 4 * 398 - conn.events_dropped
        client.close()


def test_the_projects_gevent_esl_connection_runs_against_it_in_the_same_process(server: SimulatorServer) -> None:
    import gevent

    from ccod_fs.esl.connection import EslConnection

    events: list = []
    errors: list = []
    conn = EslConnection("127.0.0.1", server.port, PASSWORD, on_event=events.append, on_error=errors.append)
    conn.connect()
    try:
        conn.subscribe(["CHANNEL_CREATE", "CHANNEL_HANGUP_COMPLETE", "BACKGROUND_JOB", "CUSTOM", "callcenter::info"])
        assert "FreeSWITCH (Version 1.11.3-dev  64bit) is ready" in conn.api("status")
        job = conn.bgapi("status", job_uuid="0b7c1f2e-3a4d-4e5f-8a9b-0c1d2e3f4a5b")
        assert job == "0b7c1f2e-3a4d-4e5f-8a9b-0c1d2e3f4a5b"
        server.play(CaptureReplay("inbound-queue"))
        deadline = time.monotonic() + 20
        while len(events) < 8 + 8 + 43 + 2 + 1 and time.monotonic() < deadline:
            gevent.sleep(0.05)
        jobs = [e for e in events if e.name == "BACKGROUND_JOB"]
        assert jobs[0].headers["Job-UUID"] == job
        assert len(events) == 8 + 8 + 43 + 2 + 1
        assert errors == []
    finally:
        conn.close()


def test_pace_follows_the_event_clock(server: SimulatorServer) -> None:
    replay = CaptureReplay("inbound-queue")
    events = list(replay.events(server.node, 1))
    span_s = (max(e.ts for e in events) - min(e.ts for e in events)) / 1e6
    client = EslTestClient(server.port)
    client.login(PASSWORD)
    server.wait_for_subscribers(1)
    started = time.monotonic()
    server.play(replay, pace=span_s / 1.5).wait(30)  # the ~75 s capture in about 1.5 s
    elapsed = time.monotonic() - started
    assert 1.2 <= elapsed <= 6.0
    assert len(client.wait_events(398)) == 398
    client.close()


def test_bgapi_originate_plays_the_captured_outbound_leg_for_the_request(server: SimulatorServer) -> None:
    client = EslTestClient(server.port)
    client.login(PASSWORD)
    server.wait_for_subscribers(1)
    client.send("bgapi originate {origination_caller_id_number=7001,origination_caller_id_name=Globex,"
                "ccod_tenant=globex,ccod_direction=outbound}sofia/external/5559999@10.0.0.1:5060 &park()")
    drain(client)
    events = client.events()
    names = [e.name for e in events]
    assert names[:13] == ["CHANNEL_OUTGOING", "CHANNEL_STATE", "CHANNEL_CREATE", "CHANNEL_ORIGINATE",
                          "CHANNEL_STATE", "CHANNEL_STATE", "CHANNEL_PROGRESS", "CHANNEL_CALLSTATE", "CODEC",
                          "CODEC", "CHANNEL_ANSWER", "CHANNEL_CALLSTATE", "CALL_UPDATE"]
    assert names[13:15] == ["API", "BACKGROUND_JOB"]
    assert names[-3:] == ["CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY", "CHANNEL_STATE"]
    leg = events[0].headers["Unique-ID"]
    assert events[14].body == f"+OK {leg}\n"
    complete = next(e for e in events if e.name == "CHANNEL_HANGUP_COMPLETE")
    assert complete.headers["variable_ccod_tenant"] == "globex"
    assert complete.headers["Caller-Destination-Number"] == "5559999"
    assert complete.headers["Hangup-Cause"] == "NORMAL_CLEARING"
    # The API event is numbered first (as FreeSWITCH does) and every number is used once.
    seqs = [int(e.headers["Event-Sequence"]) for e in events]
    assert seqs[13] == min(seqs) and sorted(seqs) == list(range(min(seqs), min(seqs) + len(seqs)))


def test_api_originate_to_a_failing_endpoint_fails_like_the_capture(server: SimulatorServer) -> None:
    client = EslTestClient(server.port)
    client.login(PASSWORD)
    server.wait_for_subscribers(1)
    client.send("api originate {originate_timeout=5,ccod_tenant=acme}sofia/external/5553009@127.0.0.1:5099 &park()")
    drain(client)
    reply = next(f for f in client.frames if f.content_type == "api/response")
    assert reply.body == b"-ERR NORMAL_TEMPORARY_FAILURE\n"
    hangup = next(e for e in client.events() if e.name == "CHANNEL_HANGUP_COMPLETE")
    assert hangup.headers["Hangup-Cause"] == "NORMAL_TEMPORARY_FAILURE"
    assert [e.name for e in client.events()][-2:] == ["CHANNEL_DESTROY", "CHANNEL_STATE"]


def test_event_sequence_is_never_reused_across_plays_and_concurrent_commands(server: SimulatorServer) -> None:
    from ccod_fs.simulator.loadgen import LoadProfile, LoadSimulation
    from ccod_fs.simulator.loadstream import NodeLoad

    simulation = LoadSimulation(LoadProfile(calls=60, nodes=1, seed=8))
    client = EslTestClient(server.port)
    client.login(PASSWORD)
    server.wait_for_subscribers(1)
    first = server.play(NodeLoad(simulation, 0))
    for _ in range(30):
        client.send("api status")
    client.pump(first.done.is_set)
    first.wait()
    for scenario in (CaptureReplay("inbound-queue"), NodeLoad(simulation, 0)):
        handle = server.play(scenario)
        client.pump(handle.done.is_set)
        handle.wait()
    drain(client)
    seqs = [int(e.headers["Event-Sequence"]) for e in client.events()]
    assert len(seqs) == len(set(seqs)) > 2 * 60 * 40
    assert sum(1 for e in client.events() if e.headers.get("API-Command") == "status") == 30 + 2
    # Only the replay's captured gaps are missing from the node's numbering.
    replay = CaptureReplay("inbound-queue")
    assert max(seqs) - min(seqs) + 1 - len(seqs) == replay.seq_span() - len(replay)


@pytest.mark.parametrize(("argument", "fixture"), [("channels as json", "api-show-channels-json.raw"),
                                                   ("calls as json", "api-show-calls-json.raw"),
                                                   ("channels", "api-show-channels-text.raw")])
def test_show_replies_from_event_derived_state_equal_the_captured_replies(argument: str, fixture: str) -> None:
    """The same events FreeSWITCH sent, fed to the node state, give the very reply FreeSWITCH gave."""
    from ccod_fs.esl.decode import decode_capture
    from ccod_fs.simulator.commands import show
    from ccod_fs.simulator.state import TRACKED_EVENTS, SwitchState

    state = SwitchState()
    for event in decode_capture(FIXTURES / "esl-plain-inbound-queue.raw"):
        if event.headers.get("API-Command") == "show" and state.bridges:
            break  # call 1 is bridged: the control connection asked here
        if event.name in TRACKED_EVENTS:
            state.observe(event.headers)
    expected, _ = iter_frames((FIXTURES / fixture).read_bytes())
    assert show(state, argument).body == expected[0].body.decode()
