"""Helpers of test_native_parity: the Python and the native normalizer side by side, event streams, a fuzzer.

The Python path (``decode_json_body`` -> ``Normalizer.normalize`` -> ``serialize_event``) is the
reference; the native ``ccod_fs_native.Normalizer.normalize_json`` must give, for every body, the
same (tenant, bytes) list or the same exception (class, reason, detail).
"""

from __future__ import annotations

import collections
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ccod_fs_native
import orjson

from ccod_fs.contract.events import serialize_event
from ccod_fs.esl.decode import decode_json_body
from ccod_fs.esl.errors import FrameError
from ccod_fs.esl.frames import Frame, FrameParser, iter_frames
from ccod_fs.ingest.normalize import Normalizer
from ccod_fs.simulator.loadgen import LoadProfile, LoadSimulation
from ccod_fs.simulator.loadstream import NodeLoad

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "freeswitch"
JSON_CAPTURES = sorted(FIXTURES.glob("esl-json-*.raw"))
# The capture switch: one tenant, agents ``<n>@default`` on SIP domain 127.0.0.1 (as test_normalize_captures).
CAPTURE_CONFIG: dict[str, Any] = {"domain_tenants": {"default": "acme", "127.0.0.1": "acme"}}

Outcome = list[tuple[str, bytes]] | tuple[str, str | None, str]


def _error(exc: Exception) -> tuple[str, str | None, str]:
    detail = getattr(exc, "detail", None)
    return type(exc).__name__, getattr(exc, "reason", None), detail if isinstance(detail, str) else str(exc)


def python_outcome(normalizer: Normalizer, body: bytes) -> Outcome:
    try:
        return [(env.tenant_id, serialize_event(env)) for env in normalizer.normalize(decode_json_body(body))]
    except Exception as exc:  # the class, reason and detail are what is compared
        return _error(exc)


def event_kind(body: bytes) -> str:
    """What picks the handler of a (decodable) body: its CC-Action, else its Event-Subclass, else its Event-Name."""
    data = orjson.loads(body)
    for key in ("CC-Action", "Event-Subclass", "Event-Name"):
        if type(data.get(key)) is str:
            return str(data[key])
    return "?"


def native_outcome(normalizer: ccod_fs_native.Normalizer, body: bytes) -> Outcome:
    try:
        return normalizer.normalize_json(body)
    except Exception as exc:
        return _error(exc)


@dataclass
class Pair:
    """A Python and a native normalizer of the same configuration, fed the same bodies."""

    config: dict[str, Any] = field(default_factory=dict)
    python: Normalizer = field(init=False)
    native: ccod_fs_native.Normalizer = field(init=False)
    events: int = 0
    canonical: int = 0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    bad_headers: collections.Counter[str] = field(default_factory=collections.Counter)
    """The header named by each ``bad-header`` outcome: which checked reads the stream reached."""
    bad_header_sites: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    """(the event's CC-Action, else Event-Subclass, else Event-Name; the header) of each ``bad-header``: which
    handler's read it was, for a header more than one handler reads (CC-Member-Session-UUID, Hangup-Cause)."""

    def __post_init__(self) -> None:
        self.python = Normalizer(**self.config)
        self.native = ccod_fs_native.Normalizer(**self.config)

    def feed(self, body: bytes) -> Outcome:
        expected = python_outcome(self.python, body)
        got = native_outcome(self.native, body)
        assert got == expected, f"event #{self.events}: {body[:300]!r}...\npython: {expected!r}\nnative: {got!r}"
        assert self.native.last_seen == self.python.last_seen, f"event #{self.events}: last_seen"
        self.events += 1
        if isinstance(expected, list):
            self.canonical += len(expected)
        else:
            self.errors[f"{expected[0]}:{expected[1]}"] += 1
            if expected[1] == "bad-header":
                header = expected[2].partition(" is a JSON ")[0]
                self.bad_headers[header] += 1
                self.bad_header_sites[(event_kind(body), header)] += 1
        return expected

    def feed_all(self, bodies: Iterable[bytes]) -> None:
        for body in bodies:
            self.feed(body)

    def assert_same_state(self) -> None:
        assert self.native.last_seen == self.python.last_seen
        assert self.native.state_snapshot() == self.python.state_snapshot()
        # JSON-able and identical as the ingest persists it
        assert orjson.dumps(self.native.state_snapshot()) == orjson.dumps(self.python.state_snapshot())


# ---- streams ------------------------------------------------------------------------------------


def capture_bodies(path: Path) -> list[bytes]:
    """Every ``text/event-json`` body of a raw capture, in order."""
    frames, errors = iter_frames(path.read_bytes())
    assert not errors
    return [frame.body for frame in frames if frame.content_type == "text/event-json"]


def all_capture_bodies() -> list[bytes]:
    return [body for path in JSON_CAPTURES for body in capture_bodies(path)]


def simulated_nodes(seed: int, calls: int = 120) -> list[list[bytes]]:
    """The event-json bodies of a multi-tenant simulated load, one list per node."""
    profile = LoadProfile(calls=calls, nodes=2, tenants=3, p_offer_failures=0.25, p_transfer=0.3, p_hold=0.4,
                          p_dtmf=0.4, p_ring_abandon=0.1, p_agent_hangup=0.3, seed=seed)
    sim = LoadSimulation(profile)
    return [[event.payload("json") for event in NodeLoad(sim, node).events()] for node in range(len(sim.nodes))]


# ---- fuzz ---------------------------------------------------------------------------------------

# Headers the normalizer reads (mutating these is what exercises its branches).
READ_KEYS = (
    "Event-Name", "Event-Subclass", "CC-Action", "ccod_subclass", "Core-UUID", "Event-Sequence",
    "Event-Date-Timestamp", "FreeSWITCH-Switchname", "FreeSWITCH-Hostname", "Unique-ID", "variable_ccod_tenant",
    "Caller-Channel-Created-Time", "variable_cc_agent", "variable_ccod_agent", "Call-Direction",
    "variable_cc_member_session_uuid", "variable_ccod_call_id", "variable_originating_leg_uuid",
    "Other-Leg-Unique-ID", "Other-Type", "CC-Member-Session-UUID", "Caller-Caller-ID-Number",
    "Caller-Caller-ID-Name", "Caller-Destination-Number", "variable_ccod_entry_point", "Channel-Name",
    "ccod_action", "ccod_transfer_target", "ccod_transfer_kind", "variable_cc_queue", "Bridge-A-Unique-ID",
    "Bridge-B-Unique-ID", "DTMF-Digit", "DTMF-Duration", "DTMF-Source", "Record-File-Path", "variable_start_uepoch",
    "Caller-Channel-Answered-Time", "Caller-Channel-Hangup-Time", "Hangup-Cause", "variable_hangup_cause",
    "Channel-Read-Codec-Name", "variable_read_codec", "Channel-Write-Codec-Name", "variable_write_codec",
    "Channel-Read-Codec-Rate", "variable_read_rate", "variable_sip_hangup_disposition", "CC-Queue",
    "CC-Member-UUID", "CC-Member-CID-Number", "CC-Member-CID-Name", "CC-Agent", "CC-Agent-Called-Time",
    "CC-Agent-Aborted-Time", "CC-Hangup-Cause", "CC-Agent-Answered-Time", "CC-Member-Joined-Time", "CC-Agent-UUID",
    "CC-Cause", "CC-Cancel-Reason", "Answer-State", "CC-Agent-Status", "CC-Agent-State", "CC-Agent-Contact",
    "username", "from-user", "user", "realm", "from-host", "host", "domain_name", "ccod_tenant", "contact",
    "expires", "network-ip", "user-agent", "Job-UUID", "Job-Command-Arg", "Job-Command", "Uptime-msec",
    "Session-Count", "FreeSWITCH-Version", "_body",
)
# Read headers that are only tested or compared (``esl_values.checked()``, ``== "inbound"``, truthiness): an odd
# JSON type there is bad-header, reached mostly on a leg's first event (the new-leg reads).
COMPARED_KEYS = (
    "Call-Direction", "variable_cc_member_session_uuid", "variable_ccod_call_id", "variable_ccod_agent",
    "variable_originating_leg_uuid", "Other-Type", "Other-Leg-Unique-ID", "variable_ccod_tenant",
    "variable_cc_agent", "Unique-ID", "ccod_action", "ccod_transfer_kind", "variable_sip_hangup_disposition",
    "CC-Member-Session-UUID", "CC-Cause", "Hangup-Cause", "Answer-State", "ccod_tenant",
)
# (event kind as Pair.bad_header_sites counts it, header) of the checked reads in cc_actions / node_events, for the
# headers another handler reads too (a bad-header on those events comes from these reads only).
COMPARED_SITES = (
    ("bridge-agent-start", "CC-Member-Session-UUID"), ("bridge-agent-end", "CC-Member-Session-UUID"),
    ("member-queue-end", "CC-Cause"), ("member-queue-end", "Hangup-Cause"), ("member-queue-end", "Answer-State"),
    ("sofia::register", "ccod_tenant"),
)
# JSON types FreeSWITCH never sends, falsy ones included (they must not pass for an absent header).
ODD_TYPES = (0, 0.0, False, {}, 5, True, {"a": "b"}, [1, "x"], [None])
NAMES = ("CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_PARK", "CHANNEL_BRIDGE", "CHANNEL_HOLD", "CHANNEL_UNHOLD",
         "DTMF", "RECORD_START", "RECORD_STOP", "CHANNEL_HANGUP_COMPLETE", "BACKGROUND_JOB", "HEARTBEAT", "CUSTOM")
SUBCLASSES = ("callcenter::info", "sofia::register", "sofia::unregister", "sofia::expire", "ccod::queue",
              "ccod::agent", "sofia::pre_register")
CC_ACTIONS = ("member-queue-start", "member-queue-resume", "agent-offering", "bridge-agent-fail",
              "bridge-agent-start", "bridge-agent-end", "member-queue-end", "agent-status-change",
              "agent-state-change", "agent-contact-change", "members-count")
ODD_STRINGS = (
    "", "²", "١٢٣", "0", "00", "1234567890123456789", "123456789012345678", "999", "-5", "+5", " 12", "12 ",
    "9999999999999999", "1000000000000000", "999999999999999", "10000000000000000", "4102444800123999",
    "9999999999999", "bad tenant", "-x", "a" * 65, "ü", "acme", "acme.b-c_d", "tenant2",
    "Cancel", "Terminated", "BREAK_OUT", "TIMEOUT", "NO_AGENT_TIMEOUT", "EXIT_WITH_KEY", "hangup",
    "recv_bye", "recv_cancel", "recv_refuse", "send_bye", "send_cancel", "inbound", "outbound", "originator",
    "transfer", "blind", "attended", "queue", "nope", "1", "*", "#", "A", "12",
    "quote\" back\\slash\nnew\rline\ttab\x01\x1f\x7f é 😀 \u2028", "\u00a0 padded \u3000", "1000@default",
    "1001@acme", "1002@127.0.0.1", "x@", "@acme", "[ccod_tenant=acme]user/1000", "{ccod_tenant=t_2,x=y}user/1",
    "<ccod_tenant=bad tenant>user/2", "{ccod_tenant=acme,origination_uuid=abc-123,ccod_decision_id=d9}originate",
    "{origination_uuid=}originate", "[a=b] {ccod_tenant = spaced }x", "{unclosed=1",
    "+OK 0f1e2d3c-1111-2222-3333-444455556666\n", "-ERR NO_ANSWER\n", "-USAGE: x", " \x1c+OK  \x1f ",
    "+OK \u2003", "originate", "status", "x" * 5000 + "é",
)


def _value(rng: random.Random, old: Any, pool: list[str]) -> Any:
    kind = rng.randrange(16)
    if kind == 0:
        return rng.choice(ODD_STRINGS)
    if kind == 1:
        return [rng.choice(ODD_STRINGS) for _ in range(rng.randrange(0, 3))]
    if kind == 2:
        return [old] if isinstance(old, str) else old
    if kind == 3:
        return rng.choice([0, 1, 17, -1, 1.5, 0.0, True, False, None, 10**20])
    if kind == 4:
        return rng.choice([{}, {"a": "b", "c": "d"}, [1, "x"], ["a", None], [[]]])
    if kind == 5:
        return rng.choice(pool) if pool else ""
    if kind == 6:
        return str(rng.randrange(1_000_000_000_000_000, 10_000_000_000_000_000))
    if kind == 7:
        return str(rng.randrange(1_000_000_000, 10_000_000_000))
    if kind == 8:
        return rng.choice(NAMES)
    if kind == 9:
        return rng.choice(SUBCLASSES)
    if kind == 10:
        return rng.choice(CC_ACTIONS)
    return rng.choice(ODD_STRINGS)


def _dump(pairs: list[tuple[str, Any]], rng: random.Random) -> bytes:
    """A JSON object from (key, value) pairs (duplicates kept), in one of several legal spellings."""
    ascii_escapes = rng.random() < 0.3
    spaced = rng.random() < 0.15
    colon, comma = (" : ", " ,\n ") if spaced else (":", ",")
    parts = []
    for key, value in pairs:
        k = json.dumps(key, ensure_ascii=ascii_escapes)
        if rng.random() < 0.02:  # a key spelled with escapes: "Event\u002dName"
            k = '"' + "".join(f"\\u{ord(c):04x}" if c == "-" else c for c in key) + '"'
        parts.append(k + colon + json.dumps(value, ensure_ascii=ascii_escapes))
    text = ("{ " if spaced else "{") + comma.join(parts) + (" }\n" if spaced else "}")
    return text.encode("utf-8", "surrogatepass")


def _break(body: bytes, rng: random.Random) -> bytes:
    """Broken JSON or broken UTF-8."""
    kind = rng.randrange(12)
    cut = rng.randrange(1, max(2, len(body)))
    if kind == 0:
        return body[:cut]
    if kind == 1:
        return body[:cut] + b"\xff" + body[cut:]
    if kind == 2:
        return body.replace(b'":"', b'":"\xc3', 1)
    if kind == 3:
        return body.replace(b'":"', b'":"\\ud800', 1)
    if kind == 4:
        return body.replace(b'":"', b'":"\\udc00x', 1)
    if kind == 5:
        return body.replace(b'":"', b'":"\x01', 1)
    if kind == 6:
        return body + b" x"
    if kind == 7:
        return rng.choice([b"", b"[]", b'"x"', b"null", b"{}", b'{"_body":"x"}', b'{"Event-Name":null}',
                           b'{"Event-Name":"HEARTBEAT","_body":["x"]}', b'{"Event-Name":"HEARTBEAT","_body":5}',
                           b"\xef\xbb\xbf{}", b'{"a":1e400,"Event-Name":"x"}', b'{"Event-Name":"x",}'])
    if kind == 8:
        return body.replace(b'":"', b'":"\\x', 1)
    if kind == 9:
        return body.replace(b'","', b'",,"', 1)
    if kind == 10:
        return body.replace(b'":"', b'":"\\ud83d\\u0041', 1)
    return body.replace(b'{', b'{"Event-Name":"CUSTOM","Event-Name":', 1)


def mutate(body: bytes, rng: random.Random, pool: list[str]) -> bytes:
    """One mutated variant of a capture body (or the body itself, re-spelled)."""
    if rng.random() < 0.06:
        return _break(body, rng)
    data: dict[str, Any] = orjson.loads(body)
    pairs = list(data.items())
    for _ in range(rng.randrange(1, 5)):
        op = rng.randrange(11)
        if op <= 1 and pairs:  # remove a header the normalizer reads (or any)
            keys = [i for i, (k, _) in enumerate(pairs) if k in READ_KEYS] or list(range(len(pairs)))
            pairs.pop(rng.choice(keys))
        elif op <= 5:  # set a read header to an odd value (often one this event carries)
            present = [k for k, _ in pairs if k in READ_KEYS]
            key = rng.choice(present) if present and rng.random() < 0.6 else rng.choice(READ_KEYS)
            old = data.get(key)
            new = _value(rng, old, pool)
            for i, (k, _) in enumerate(pairs):
                if k == key:
                    pairs[i] = (k, new)
                    break
            else:
                pairs.append((key, new))
        elif op == 6:  # duplicated key: the last one wins
            key = rng.choice(READ_KEYS)
            pairs.append((key, _value(rng, data.get(key), pool)))
            if rng.random() < 0.5:
                pairs.append((key, data.get(key, "late")))
        elif op == 7 and pairs:  # shuffle the header order
            rng.shuffle(pairs)
        elif op == 8:  # a value FreeSWITCH-escaped in the body: caller-controlled text
            key = rng.choice(("Caller-Caller-ID-Name", "CC-Member-CID-Name", "variable_cc_queue", "Channel-Name"))
            pairs.append((key, rng.choice(ODD_STRINGS[-20:]) + "\U0001f600\u00e9\\\"\x00"))
        elif op == 9:  # a tenant or an identity change
            key = rng.choice(("variable_ccod_tenant", "ccod_tenant", "Core-UUID", "Unique-ID", "CC-Agent"))
            pairs.append((key, rng.choice(pool) if pool and rng.random() < 0.5 else rng.choice(ODD_STRINGS)))
        else:
            _mutate_compared(pairs, data, rng, pool)
    return _dump(pairs, rng)


_HANDLER_COMPARED: dict[Any, tuple[str, ...]] = collections.defaultdict(tuple)
for _kind, _key in COMPARED_SITES:
    _HANDLER_COMPARED[_kind] += (_key,)


def _mutate_compared(pairs: list[tuple[str, Any]], data: dict[str, Any], rng: random.Random, pool: list[str]) -> None:
    """Set a compared header (one the event carries, half the time) to an odd JSON type or a FreeSWITCH shape,
    often on a leg seen for the first time (the new-leg reads), half of those outbound (Other-Type is read)."""
    own = _HANDLER_COMPARED.get(data.get("CC-Action") or data.get("Event-Subclass"), ())
    present = [k for k, _ in pairs if k in COMPARED_KEYS]
    if own and rng.random() < 0.5:  # one its handler alone reads (COMPARED_SITES), among many the event carries
        key = rng.choice(own)
    else:
        key = rng.choice(present) if present and rng.random() < 0.5 else rng.choice(COMPARED_KEYS)
    if rng.random() < 0.4:
        pairs.append(("Unique-ID", f"fuzz-leg-{rng.randrange(1000)}"))
        if rng.random() < 0.5:
            pairs.append(("Call-Direction", "outbound"))
    if key == "Answer-State" and rng.random() < 0.9:
        pairs.append(("Hangup-Cause", ""))  # read only when Hangup-Cause is not (a caller still up)
    pairs.append((key, rng.choice(ODD_TYPES) if rng.random() < 0.6 else _value(rng, data.get(key), pool)))


def compared_fuzzed(bodies: list[bytes], seed: int, rate: float = 0.3) -> Iterator[bytes]:
    """The stream with about ``rate`` of its events (and every rare event of our dialplan, ``ccod_subclass``)
    carrying one compared-header mutation and nothing else (no broken JSON, no other odd header first):
    what reaches every checked() read."""
    rng = random.Random(seed)
    pool = value_pool(bodies)
    for body in bodies:
        data: dict[str, Any] = orjson.loads(body)
        if rng.random() >= rate and "ccod_subclass" not in data:
            yield body
            continue
        pairs = list(data.items())
        _mutate_compared(pairs, data, rng, pool)
        yield _dump(pairs, rng)


def value_pool(bodies: Iterable[bytes]) -> list[str]:
    """String values of the read headers seen in the captures (uuids, agents, queues...): re-used by mutations."""
    seen: set[str] = set()
    for body in bodies:
        data = orjson.loads(body)
        for key in ("Unique-ID", "Other-Leg-Unique-ID", "CC-Member-Session-UUID", "CC-Agent", "CC-Queue",
                    "variable_cc_agent", "Core-UUID", "variable_ccod_tenant"):
            value = data.get(key)
            if isinstance(value, str):
                seen.add(value)
    return sorted(seen)


def fuzzed(bodies: list[bytes], seed: int, rate: float = 0.35) -> Iterator[bytes]:
    """The stream with about ``rate`` of its events mutated (and some replayed twice or dropped)."""
    rng = random.Random(seed)
    pool = value_pool(bodies)
    for body in bodies:
        roll = rng.random()
        if roll < 0.03:
            continue
        yield mutate(body, rng, pool) if roll < rate else body
        if rng.random() < 0.03:
            yield body


# ---- framing ------------------------------------------------------------------------------------

FeedItem = Any


def _frame_item(item: Any) -> Any:
    """Comparable form of one feed item."""
    if isinstance(item, Frame):
        return ("frame", item.headers, item.body)
    if isinstance(item, FrameError):
        return ("frame-error", item.reason, item.detail, item.raw)
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], Frame):
        return ("failed", _frame_item(item[0]), _error(item[1]))
    return item


def python_feed(parser: FrameParser, normalizer: Normalizer, data: bytes) -> list[Any]:
    """The reference of ``ccod_fs_native.Normalizer.feed``: FrameParser + the Python path per event-json frame."""
    out: list[Any] = []
    for frame in parser.feed(data):
        if frame.content_type == "text/event-json":
            try:
                events = normalizer.normalize(decode_json_body(frame.body))
                out.append([(env.tenant_id, serialize_event(env)) for env in events])
            except Exception as exc:
                out.append((frame, exc))
        else:
            out.append(frame)
    out += parser.take_errors()
    return [_frame_item(item) for item in out]


@dataclass
class FeedPair:
    """The Python framing + normalizer and the native ``feed`` side by side."""

    config: dict[str, Any] = field(default_factory=dict)
    chunks: int = 0
    frames: int = 0
    kinds: collections.Counter[str] = field(default_factory=collections.Counter)

    def __post_init__(self) -> None:
        self.parser = FrameParser()
        self.python = Normalizer(**self.config)
        self.native = ccod_fs_native.Normalizer(**self.config)

    def feed(self, data: bytes) -> None:
        expected = python_feed(self.parser, self.python, data)
        got = [_frame_item(item) for item in self.native.feed(data)]
        assert got == expected, f"chunk #{self.chunks} ({len(data)} bytes): {data[:200]!r}"
        self.chunks += 1
        self.frames += len(got)
        for item in got:
            self.kinds[item[0] if isinstance(item, tuple) else "event"] += 1

    def finish(self) -> None:
        self.parser.finish()
        expected = [_frame_item(e) for e in self.parser.take_errors()]
        got = [_frame_item(e) for e in self.native.finish()]
        assert got == expected
        self.kinds["finish-error"] += len(got)
        assert self.native.state_snapshot() == self.python.state_snapshot()


def chunked(data: bytes, rng: random.Random, max_size: int = 70_000) -> Iterator[bytes]:
    pos = 0
    while pos < len(data):
        size = rng.choice((1, 2, 7, 30, 100, 1000, 4096, 65536, rng.randrange(1, max_size)))
        yield data[pos:pos + size]
        pos += size


JUNK = (
    b"garbage\n\n", b"\n", b"\n\n\n", b"Content-Length: abc\nContent-Type: text/event-json\n\n",
    b"Content-Length: 99999999\nContent-Type: text/event-json\n\n", b"Content-Type: command/reply\nReply-Text: +OK\n\n",
    b"Content-Length: 3\nContent-Type: api/response\n\n+OK", b"Bad Header Line\n\n", b"\xff\xfe: x\n\n",
    b"Content-Length: 00000005\nContent-Type: text/event-json\n\n{\"a\":",
    b"Content-Length: 2\nContent-Type: text/x\n\n{}",
    b"Content-Type: text/disconnect-notice\nContent-Length: 0\n\n", b"Content-Length: 5\nContent-Type: text/event-json",
    b"Content-Length: 0\nContent-Type: text/event-json\n\n", b"X" * 70_000, b"Content-Length: 1234567\n",
    b"Content-Length: 12\nContent-Type: text/event-plain\n\nEvent-Name: x",
)


def junked_stream(seed: int) -> bytes:
    """Every fixture capture's frames, shuffled together with broken frames and garbage."""
    rng = random.Random(seed)
    pieces: list[bytes] = []
    for path in sorted(FIXTURES.glob("*.raw")):
        frames, _ = iter_frames(path.read_bytes())
        for frame in frames:
            head = "".join(f"{k}: {v}\n" for k, v in frame.headers.items()).encode()
            pieces.append(head + b"\n" + frame.body)
    out = bytearray()
    for piece in pieces:
        if rng.random() < 0.08:
            out += rng.choice(JUNK)
        if rng.random() < 0.02:
            piece = piece[: rng.randrange(len(piece))]
        out += piece
    return bytes(out)
