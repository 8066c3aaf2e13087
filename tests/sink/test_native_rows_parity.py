"""The native sink decoder (``ccod_fs_native``) against the Python path, value for value.

For every input: the same rows (values, types, order) in every table, the same event count and
dead letters, and exactly the values the Python fast path (orjson + fastcheck) does not accept
are the ones the native decoder hands back to Python. Inputs: synthetic calls of every event type
and several tenants, the canonical events of the real captures and of a simulated load, in-batch
duplicates, and a seeded mutation fuzz (missing/extra fields, wrong types, out-of-range ints, bad
timestamps and ids, unicode, invalid JSON, empty values).
"""

from __future__ import annotations

import copy
import functools
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from ccod_fs.contract.deadletter import DeadLetter
from ccod_fs.contract.events import (
    EVENT_TYPES,
    AgentRegistered,
    AgentStatusChanged,
    AgentUnregistered,
    CallAgentFailed,
    CallBridged,
    CallDtmf,
    CallEnded,
    CallQueued,
    CallRecording,
    CallTransferred,
    CommandResult,
    NodeHeartbeat,
    RoutingDecision,
    WebhookDelivery,
    parse_event,
    serialize_event,
)
from ccod_fs.esl.decode import decode_capture, decode_json_body
from ccod_fs.ingest.normalize import NormalizeError, Normalizer
from ccod_fs.simulator.loadgen import LoadProfile, LoadSimulation
from ccod_fs.simulator.loadstream import NodeLoad
from ccod_fs.sink import native_rows
from ccod_fs.sink.builders import PythonRowBuilder, decoder_name, new_builder
from ccod_fs.sink.fastcheck import CHECKS, Reject
from ccod_fs.sink.native_spec import event_specs
from ccod_fs.sink.rows import TABLES
from ccod_fs.sink.synthetic import EventFactory, agent_states, call_events

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "freeswitch"
CAPTURE_CONFIG = {"domain_tenants": {"default": "acme", "127.0.0.1": "acme"}}
T0 = datetime(2026, 3, 1, 9, 0, 0, 250_000, tzinfo=UTC)
TENANTS = ("acme", "globex", "initech", "t-1.x_y")


# ---- the two paths -----------------------------------------------------------------------------


def run_builder(builder: Any, runs: list[list[bytes | None]]) -> tuple[int, dict[str, Any], list[tuple[str, int]]]:
    dead: list[DeadLetter] = []
    base = 0
    for values in runs:
        builder.add_run(values, list(range(base, base + len(values))), dead=dead, origin="t", topic="x",
                        partition=0)
        base += len(values)
    events = builder.events
    batch = builder.finish()
    assert builder.events == events  # still readable once finished (the service reads it after)
    return events, batch.tables, [(d.reason, d.offset) for d in dead]


def typed(tables: dict[str, Any]) -> dict[str, Any]:
    """Columns with each value's type (True == 1 == 1.0 would hide a difference)."""
    return {t: {c: [(type(v).__name__, v) for v in vals] for c, vals in cols.items()} for t, cols in tables.items()}


def fast_accepts(value: bytes | None) -> bool:
    """Whether decode_run's inline fast path (orjson + the compiled check) takes this value."""
    if not value:
        return False
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        return False
    if type(data) is not dict:
        return False
    kind = data.get("type")
    check = CHECKS.get(kind) if type(kind) is str else None
    if check is None or type(data.get("payload")) is not dict:
        return False
    try:
        check(data)
    except Reject:
        return False
    return True


def handed_back(values: list[bytes | None]) -> list[int]:
    rows = native_rows._native.SinkRows(native_rows.schema())
    out = []
    i = rows.add_run(values, 0)
    while i < len(values):
        out.append(i)
        i = rows.add_run(values, i + 1)
    return out


def assert_parity(runs: list[list[bytes | None]]) -> dict[str, int]:
    """Native == Python on these runs (one batch); returns what was seen, for coverage asserts."""
    py = run_builder(PythonRowBuilder(), runs)
    nat = run_builder(native_rows.NativeRowBuilder(), runs)
    assert nat[0] == py[0], "event counts differ"
    assert nat[2] == py[2], "dead letters differ"
    assert list(nat[1]) == list(TABLES)
    for table, cols in TABLES.items():
        assert list(nat[1][table]) == list(cols), table
    if typed(nat[1]) != typed(py[1]):
        for table in TABLES:
            for col in TABLES[table]:
                a, b = typed(nat[1])[table][col], typed(py[1])[table][col]
                first = next(((i, x, y) for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
                assert a == b, (table, col, first, len(a), len(b))
    back = fast = 0
    for values in runs:
        expected = [i for i, v in enumerate(values) if not fast_accepts(v)]
        assert handed_back(values) == expected
        back += len(expected)
        fast += len(values) - len(expected)
    return {"events": py[0], "dead": len(py[2]), "handed_back": back, "fast": fast,
            "rows": sum(len(next(iter(cols.values()))) for cols in py[1].values())}


# ---- corpora ------------------------------------------------------------------------------------


def every_type_events(f: EventFactory, tenant: str, at: datetime) -> list[Any]:
    """One event of each type the synthetic calls do not produce (so all types are covered)."""
    c = {"tenant": tenant, "at": at, "call_id": f"call-{tenant}"}
    return [
        f.make(CallBridged, **c, other_leg_uuid="leg-2", leg_role="agent"),
        f.make(CallTransferred, **c, target="1002", kind="attended"),
        f.make(CallDtmf, **c, digit="5", duration_ms=120, source="rtp"),
        f.make(CallRecording, **c, started=True, path="/rec/é.wav"),
        f.make(CallRecording, **c, started=False),
        f.make(CallAgentFailed, **c, queue="q", agent="a1", hangup_cause="NO_ANSWER", called_at=at, aborted_at=at,
               ring_ms=30_000),
        f.make(CallQueued, **c, queue="q", joined_at=None, resumed=True),
        f.make(CallEnded, **c, leg_uuid="leg-2", leg_role="agent", direction="outbound",
               hangup_cause="NORMAL_CLEARING", ended_at=at, duration_ms=5),
        f.make(CallEnded, **c, leg_uuid=f"call-{tenant}", leg_role="other", direction="inbound",
               hangup_cause="NORMAL_CLEARING", ended_at=at, duration_ms=2**40, codec_rate=-8000),
        f.make(AgentRegistered, tenant=tenant, at=at, agent_id="a1", user="1001", realm="r", expires_s=3600),
        f.make(AgentUnregistered, tenant=tenant, at=at, agent_id="a1", user="1001"),
        f.make(NodeHeartbeat, tenant=tenant, at=at, uptime_ms=10, session_count=2, version="1.10"),
        f.make(CommandResult, tenant=tenant, at=at, job_uuid="j1", ok=True, result="+OK"),
        f.make(RoutingDecision, tenant=tenant, at=at, action="offer", target_node="fs1", queue="q", agent="a1",
               decided_by_offset=2**63),
        f.make(WebhookDelivery, tenant=tenant, at=at, subscription_id="s", delivered_event_id="e", url="http://x",
               attempt=1, status="delivered", http_status=200),
        f.make(AgentStatusChanged, tenant=tenant, at=at, agent_id=None, status="Available", previous=""),
    ]


@functools.cache
def synthetic_values() -> tuple[bytes, ...]:
    f = EventFactory(core_uuid="00000000-0000-4000-8000-00000000aaaa")
    evs: list[Any] = []
    for i, tenant in enumerate(TENANTS):
        start = T0 + timedelta(minutes=i)
        evs += call_events(f, tenant=tenant, queue=f"q{i}", start=start, agent=f"a{i}", holds=((1_000, 2_000),),
                           acw_ms=3_000)
        evs += call_events(f, tenant=tenant, queue="q", start=start, outcome="abandoned", wait_ms=4_000)
        evs += call_events(f, tenant=tenant, queue="q", start=start, outcome="timeout", wait_ms=90_000)
        evs += agent_states(f, tenant=tenant, agent=f"a{i}", at=start, states=(("Available", 0), ("On Break", 9)),
                            kind="status")
        evs += every_type_events(f, tenant, start)
    return tuple(serialize_event(e) for e in evs)


@functools.cache
def capture_values() -> tuple[bytes, ...]:
    out: list[bytes] = []
    for capture in sorted(FIXTURES.glob("esl-json-*.raw")):
        normalizer = Normalizer(**CAPTURE_CONFIG)  # type: ignore[arg-type]
        for event in decode_capture(capture):
            try:
                out += [serialize_event(e) for e in normalizer.normalize(event)]
            except NormalizeError:
                continue
    return tuple(out)


@functools.cache
def simulated_values() -> tuple[bytes, ...]:
    sim = LoadSimulation(LoadProfile(calls=150, nodes=2, tenants=3, p_offer_failures=0.2, p_transfer=0.3, seed=5))
    out: list[bytes] = []
    for node in range(len(sim.nodes)):
        normalizer = Normalizer(domain_is_tenant=True)
        for event in NodeLoad(sim, node).events():
            try:
                out += [serialize_event(e) for e in normalizer.normalize(decode_json_body(event.payload("json")))]
            except NormalizeError:
                continue
    return tuple(out)


def types_of(values: tuple[bytes, ...]) -> set[str]:
    return {orjson.loads(v)["type"] for v in values}


# ---- tests --------------------------------------------------------------------------------------


def test_the_native_decoder_is_built_and_mirrors_every_fast_checked_type() -> None:
    assert native_rows.available(), "ccod_fs_native has no sink decoder: run `make venv`"
    assert set(event_specs()) == set(CHECKS) == set(EVENT_TYPES)
    assert decoder_name() == "native"
    assert isinstance(new_builder(), native_rows.NativeRowBuilder)


def test_decoder_can_be_forced_to_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCOD_FS_SINK_DECODER", "python")
    assert decoder_name() == "python"
    assert isinstance(new_builder(), PythonRowBuilder)


def test_falls_back_to_python_when_the_build_is_stale_or_rows_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native_rows, "_schema", None)
    monkeypatch.setattr(native_rows, "_native", object())  # a build without the sink classes
    assert decoder_name() == "python"
    monkeypatch.undo()
    monkeypatch.setattr(native_rows, "_schema", None)
    from ccod_fs.sink import rows

    monkeypatch.setitem(rows._FACTS, "call.new", ((), rows._marker))  # rows.py changed, its twin did not
    assert decoder_name() == "python"
    monkeypatch.setenv("CCOD_FS_SINK_DECODER", "native")
    with pytest.raises(RuntimeError):
        decoder_name()


def test_synthetic_events_of_every_type_and_tenant() -> None:
    values = list(synthetic_values())
    assert types_of(synthetic_values()) == set(EVENT_TYPES)
    seen = assert_parity([values[:37], values[37:]])
    assert seen["handed_back"] == 0 and seen["dead"] == 0 and seen["events"] == len(values)
    assert seen["rows"] > 1.5 * len(values)


def test_canonical_events_of_the_real_captures() -> None:
    values = list(capture_values())
    assert len(values) > 120 and len(types_of(capture_values())) >= 14
    seen = assert_parity([values])
    assert seen["handed_back"] == 0 and seen["events"] == len(values)


def test_canonical_events_of_a_simulated_load() -> None:
    values = list(simulated_values())
    assert len(values) > 1_000 and {"call.transferred", "call.agent_failed"} <= types_of(simulated_values())
    seen = assert_parity([values[i:i + 700] for i in range(0, len(values), 700)])
    assert seen["handed_back"] == 0 and seen["events"] == len(values)


def test_duplicates_inside_a_batch_first_occurrence_wins() -> None:
    values = list(synthetic_values())
    # the same event again, and again with other content under the same id (written once, the first)
    changed = []
    for v in values[:40]:
        d = orjson.loads(v)
        d["tenant_id"] = "other"
        d["source"]["event_sequence"] = 99
        changed.append(orjson.dumps(d))
    coerced = []  # same id, valid only after pydantic's coercion: handed back, still a duplicate
    for v in values[40:60]:
        d = orjson.loads(v)
        d["occurred_at"] = d["occurred_at"].replace("Z", "+00:00").replace("T", " ")
        coerced.append(orjson.dumps(d))
    runs = [values[:80], changed, values[:10] + coerced, values[80:] + values[5:25]]
    seen = assert_parity(runs)
    assert seen["events"] == len(values) + 40 + 10 + 20 + 20
    assert seen["handed_back"] == 20


def test_records_handed_back_join_the_batch_in_order() -> None:
    """Coerced (valid after pydantic) and invalid values between fast ones: same rows, same places."""
    values = list(synthetic_values())[:60]
    mixed: list[bytes | None] = []
    for i, v in enumerate(values):
        d = orjson.loads(v)
        if i % 3 == 0:
            d["occurred_at"] = d["occurred_at"][:-1] + "+00:00" if d["occurred_at"].endswith("Z") else "x"
            d["schema_version"] = "1"  # lax mode: pydantic coerces, the fast path does not
        mixed.append(orjson.dumps(d))
        if i % 7 == 0:
            mixed.append(b"{broken")
        if i % 11 == 0:
            mixed.append(None)
    seen = assert_parity([mixed])
    assert seen["handed_back"] > 30 and seen["dead"] > 10


# ---- the seeded mutation fuzz -------------------------------------------------------------------

BAD_TIMES = [
    "2026-03-01T09:00:00Z", "2026-03-01T09:00:00.1Z", "2026-03-01T09:00:00.123456Z", "2026-03-01T09:00:00.1234567Z",
    "2026-03-01T09:00:00+00:00", "2026-03-01T09:00:00.999+00:00", "2026-03-01T11:00:00+02:00",
    "2026-03-01T09:00:00", "2026-03-01 09:00:00Z", "2026-03-01t09:00:00Z", "2026-03-01T09:00:00z",
    "2024-02-29T23:59:59.999Z", "2026-02-29T00:00:00Z", "2026-02-30T09:00:00Z", "2026-13-01T09:00:00Z",
    "2026-00-10T09:00:00Z", "2026-03-00T09:00:00Z", "2026-03-01T24:00:00Z", "2026-03-01T23:60:00Z",
    "2026-03-01T23:59:60Z", "0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z",
    "1969-12-31T23:59:59.999Z", "1900-02-29T00:00:00Z", "2000-02-29T00:00:00Z", "2026-03-01T09:00:00.Z",
    "\u0662\u0660\u0662\u0666-03-01T09:00:00Z", "\uff12\uff10\uff12\uff16-03-01T09:00:00Z", "2026-03-01T09:00:00Z\n",
    " 2026-03-01T09:00:00Z", "+2026-03-01T09:00:00Z", "2026-3-1T09:00:00Z", "", "Z", 1772355600, 1772355600.5,
    # the contract's (the store's) range: 1970-01-01T00:00:00.000Z .. 2299-12-31T23:59:59.999Z
    "1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000999Z", "1970-01-01T00:00:00+00:00", "1969-12-31T23:59:59.9999Z",
    "1969-12-31T23:59:59.999999+00:00", "1900-01-01T00:00:00Z", "2299-12-31T23:59:59.999Z",
    "2299-12-31T23:59:59.999999Z", "2299-12-31T23:59:59.999+00:00", "2300-01-01T00:00:00Z", "2300-01-01T00:00:00.000Z",
    "2300-01-01T00:00:00+00:00", "2299-12-31T23:00:00-01:00", "9999-12-31T23:00:00-05:00", 0, -1, 10_413_792_000,
]
BAD_IDS = [
    "6f1d3c2e-8a4b-5c6d-9e0f-1a2b3c4d5e6f", "6F1D3C2E-8A4B-5C6D-9E0F-1A2B3C4D5E6F", "6f1d3c2e8a4b5c6d9e0f1a2b3c4d5e6f",
    "{6f1d3c2e-8a4b-5c6d-9e0f-1a2b3c4d5e6f}", "urn:uuid:6f1d3c2e-8a4b-5c6d-9e0f-1a2b3c4d5e6f",
    "6f1d3c2e-8a4b-5c6d-9e0f-1a2b3c4d5e6", "6f1d3c2e-8a4b-5c6d-9e0f-1a2b3c4d5e6g",
    "6f1d3c2e_8a4b_5c6d_9e0f_1a2b3c4d5e6f",
    "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff", "",
]
INTS = [0, 1, -1, 2, 255, 256, 2**31, 2**32 - 1, 2**32, 2**32 + 5, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, -(2**63),
        2**64, 2**70, -(2**63) - 1]  # beyond 64 bits: orjson cannot read them, pydantic can
TEXTS = [
    "", "x", "é", "\u00e9\u0301", "😀", "a\nb", "\x00", "\x1f\x7f", "\u2028\u2029", "\ufeff", "\\", "\"q\"", "a" * 64,
    "a" * 65, "tenant-1", "-tenant", "_t", "t.e-n_t", "tenant!", "t\u0131", "caller", "agent", "answered", "inbound",
    "unknown", "blind", "1", "12",
]
ODD = [None, True, False, 1.0, 0.5, -0.0, [], [1], {}, {"a": 1}]


def bad_json(blob: bytes, rng: random.Random) -> bytes:
    """Text-level damage: truncation, garbage, invalid UTF-8, BOM, trailing commas, NaN, escapes."""
    k = rng.randrange(14)
    cut = rng.randrange(1, len(blob))
    if k == 0:
        return blob[:cut]
    if k == 1:
        return blob[:cut] + bytes([rng.randrange(256)]) + blob[cut:]
    if k == 2:
        return b"\xef\xbb\xbf" + blob
    if k == 3:
        return blob[:-1] + b",}"
    if k == 4:
        return blob.replace(b'"schema_version":1', b'"schema_version":NaN')
    if k == 5:
        return blob + b" x"
    if k == 6:
        return b" \t\r\n" + blob.replace(b",", b" ,\n ", 3) + b"\n "
    if k == 7:
        return blob.replace(b'"type"', b'"\\u0074ype"')
    if k == 8:
        return blob.replace(b'"tenant_id":"', b'"tenant_id":"\\ud800', 1)
    if k == 9:
        return blob.replace(b'"tenant_id":"', b'"tenant_id":"\xff', 1)
    if k == 10:
        return blob.replace(b'"payload":{', b'"payload":{"' + b"\\u00e9\\ud83d\\ude00" + b'":1,', 1)
    if k == 11:  # a duplicate key: orjson keeps the last value at the first position
        return blob.replace(b'"tenant_id":', b'"tenant_id":"dup","tenant_id":', 1)
    if k == 12:
        return blob.replace(b'"payload":{', b'"payload":{"queue":"first",', 1)
    return blob.replace(b":1,", b":1.0,", 1).replace(b":0,", b":-0,", 1)


def mutate(d: dict[str, Any], rng: random.Random) -> None:
    """One structural mutation of a parsed event, in place."""
    spots: list[dict[str, Any]] = [d]
    for key in ("payload", "source"):
        if type(d.get(key)) is dict:
            spots.append(d[key])
    target = rng.choice(spots)
    keys = list(target) or ["x"]
    key = rng.choice(keys)
    k = rng.randrange(9)
    if k == 0:
        target.pop(key, None)
    elif k == 1:
        target[rng.choice(["extra", "Type", "payload2", key.upper()])] = rng.choice([1, "x", None])
    elif k == 2:
        target[key] = rng.choice(INTS)
    elif k == 3:
        target[key] = rng.choice(BAD_TIMES)
    elif k == 4:
        target[key] = rng.choice(BAD_IDS)
    elif k == 5:
        target[key] = rng.choice(TEXTS)
    elif k == 6:
        target[key] = rng.choice(ODD)
    elif k == 7:
        target[key] = None
    else:
        other = rng.choice(keys)
        target[key], target[other] = target.get(other), target.get(key)


def dumps(d: dict[str, Any]) -> bytes:
    """orjson's bytes; the stdlib's for an int beyond 64 bits (orjson cannot write it, pydantic reads it)."""
    try:
        return orjson.dumps(d)
    except TypeError:
        return json.dumps(d, separators=(",", ":"), ensure_ascii=False).encode()


def fuzz_values(seed: int, n: int) -> list[bytes | None]:
    rng = random.Random(seed)
    base = [orjson.loads(v) for v in synthetic_values() + capture_values()[:300] + simulated_values()[:600]]
    out: list[bytes | None] = []
    for i in range(n):
        d = copy.deepcopy(rng.choice(base))
        d["event_id"] = f"{i:08x}-0000-4000-8000-{seed:012x}"  # every row visible (no accidental dedupe)
        for _ in range(rng.choice((0, 1, 1, 1, 2, 3))):
            mutate(d, rng)
        blob = dumps(d)
        r = rng.random()
        if r < 0.12:
            blob = bad_json(blob, rng)
        elif r < 0.14:
            out.append(rng.choice([None, b""]))
            continue
        out.append(blob)
    return out


def pydantic_accepts(value: bytes) -> bool:
    try:
        parse_event(value)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_seeded_mutation_fuzz(seed: int) -> None:
    values = fuzz_values(seed, 4_000)
    seen = assert_parity([values[i:i + 997] for i in range(0, len(values), 997)])
    # both branches exercised, in volume
    assert seen["fast"] > 800 and seen["handed_back"] > 1_500 and seen["dead"] > 800
    # and what the native decoder took, pydantic (the contract) accepts too
    back = set(handed_back(values))
    for i, v in enumerate(values):
        if i not in back:
            assert v is not None and pydantic_accepts(v), v


def test_fuzz_with_duplicate_ids() -> None:
    """Mutations that keep their event ids: dedupe decides between fast and handed-back duplicates."""
    rng = random.Random(99)
    base = [orjson.loads(v) for v in synthetic_values()[:50]]
    values: list[bytes | None] = []
    for _ in range(3_000):
        d = copy.deepcopy(rng.choice(base))
        if rng.random() < 0.5:
            mutate(d, rng)
        values.append(dumps(d))
    seen = assert_parity([values[:1500], values[1500:]])
    assert seen["events"] > 2_000 and seen["rows"] < seen["events"]


def test_a_finished_builder_refuses_more() -> None:
    b = native_rows.NativeRowBuilder()
    b.add_run([synthetic_values()[0]], [0], dead=[], origin="t", topic="x", partition=0)
    assert b.finish().count("events_raw") == 1
    with pytest.raises(RuntimeError):
        b.finish()


def test_edge_values_of_the_json_reader() -> None:
    """Exact orjson behaviour where a JSON reader could differ: numbers, escapes, nesting, keys."""
    base = synthetic_values()[0]
    d = orjson.loads(base)
    text = base.decode()
    seq = f'"event_sequence":{d["source"]["event_sequence"]}'
    edits = [
        (seq, '"event_sequence":18446744073709551615'), (seq, '"event_sequence":18446744073709551616'),
        (seq, '"event_sequence":-0'), (seq, '"event_sequence":0'), (seq, '"event_sequence":1e2'),
        (seq, '"event_sequence":1E400'), (seq, '"event_sequence":01'), (seq, '"event_sequence":-9223372036854775809'),
        (seq, '"event_sequence":9223372036854775808'), (seq, '"event_sequence":null'),
        ('"schema_version":1', '"schema_version":1.0'), ('"schema_version":1', '"schema_version":true'),
        ('"schema_version":1', '"schema_version":255'), ('"schema_version":1', '"schema_version":256'),
        ('"tenant_id":"', '"tenant_id":"\\u0061'), ('"tenant_id":"', '"tenant_id":"\\ud83d\\ude00'),
        ('"tenant_id":"', '"tenant_id":"\\uD83D\\uDE00'), ('"tenant_id":"', '"tenant_id":"\\ud83d'),
        ('"tenant_id":"', '"tenant_id":"\\udc00\\ud83d'), ('"tenant_id":"', '"tenant_id":"\\/'),
        ('"type":', '"\\u0074\\u0079\\u0070\\u0065":'), ('"type":', '"type":"call.nothing","type":'),
        ('"payload":{', '"payload":{"direction":"outbound",'),
        ('"payload":{', '"payload": {\n\t"direction" : "internal" ,'),
        ('"payload":{', '"payload":' + "[" * 100 + "]" * 100 + ',"payload2":{'),
        ('"payload":{', '"x":' + "[" * 2000 + "]" * 2000 + ',"payload":{'),
        ('"caller_number":"', '"caller_number":"\\u0000\\u001f\\b\\f\\n\\r\\t\\"\\\\\x7f\u2028'),
        ('"caller_number":"', '"caller_number":"\x01'), ('"caller_number":"', '"caller_number":"\\x'),
    ]
    values: list[bytes | None] = [base, b"\xef\xbb\xbf" + base, base + b"\n", b"\n " + base, base[:-1], b"[]",
                                  b"null", b"1", b'"s"', b"{}", base + b"{}", base.replace(b"}", b",}", 1)]
    for old, new in edits:
        assert old in text, old
        values.append(text.replace(old, new, 1).encode())
    fresh = []
    for i, v in enumerate(values):  # distinct ids, so every accepted one adds rows
        assert v is not None
        fresh.append(v.replace(d["event_id"].encode(), f"{i:08x}{d['event_id'][8:]}".encode()))
    seen = assert_parity([fresh])
    assert seen["fast"] >= 12 and seen["handed_back"] >= 20, seen


def test_the_store_range_edges_natively_as_in_python() -> None:
    """Ints and timestamps at and beyond what the columns hold (UInt8 schema_version, UInt64 sequence,
    DateTime64(3) / UInt64-ms times): the native decoder takes exactly what fastcheck takes, and the
    values beyond are dead letters on both paths (not rows, whose insert would fail forever)."""
    in_range = ["1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000999Z", "1970-01-01T00:00:00+00:00",
                "2299-12-31T23:59:59.999Z", "2299-12-31T23:59:59.999999Z", "2299-12-31T23:59:59.999+00:00"]
    beyond = ["1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59.9999+00:00", "0001-01-01T00:00:00Z",
              "2300-01-01T00:00:00Z", "2300-01-01T00:00:00.000+00:00", "9999-12-31T23:59:59.999999Z"]
    values: list[bytes | None] = []
    expect_dead = 0
    for i, v in enumerate(synthetic_values()[:60]):
        d = orjson.loads(v)
        keys = [("occurred_at", None)] + [(k, "payload") for k, x in d["payload"].items() if k.endswith("_at") and x]
        for j, (key, where) in enumerate(keys):
            for n, ts in enumerate(in_range + beyond):
                e = copy.deepcopy(d)
                (e[where] if where else e)[key] = ts
                e["event_id"] = f"{i:08x}-{j:04x}-4{n:03x}-8000-00000000cccc"
                values.append(orjson.dumps(e))
                expect_dead += ts in beyond
    d = orjson.loads(synthetic_values()[0])
    ints = [("schema_version", 255, True), ("schema_version", 256, False), ("schema_version", 2**64 - 1, False),
            ("event_sequence", 2**64 - 1, True), ("event_sequence", 2**64, False), ("event_sequence", 2**64 + 7, False)]
    for n, (key, v, valid) in enumerate(ints):
        e = copy.deepcopy(d)
        (e["source"] if key == "event_sequence" else e)[key] = v
        e["event_id"] = f"ffff{n:04x}-0000-4000-8000-00000000cccc"
        values.append(dumps(e))
        expect_dead += not valid
    seen = assert_parity([values[:500], values[500:]])
    assert seen["dead"] == expect_dead > 300 and seen["events"] == len(values) - expect_dead
    assert seen["fast"] == len(values) - expect_dead  # every value in range is fast-checked, natively too


def test_a_spec_without_the_timestamp_range_is_refused() -> None:
    """The native check cannot drop the contract's timestamp range: a spec without it (or a build that
    predates it, which wants 14-tuples) is refused, and the sink decodes on the Python path."""
    from ccod_fs.sink import rows

    specs = event_specs()
    assert all(f[14] == (0, 10_413_791_999_999) for f in specs["call.answered"] if f[1] == "ts")
    tables = {t: list(c) for t, c in TABLES.items()}
    facts = {t: list(cols) for t, (cols, _fn) in rows._FACTS.items()}
    native_rows._native.SinkSchema(specs, tables, facts)
    no_range = {t: [(*f[:14], None) for f in spec] for t, spec in specs.items()}
    with pytest.raises(ValueError, match="range"):
        native_rows._native.SinkSchema(no_range, tables, facts)
    with pytest.raises(ValueError, match="15-tuple"):
        native_rows._native.SinkSchema({t: [f[:14] for f in spec] for t, spec in specs.items()}, tables, facts)
