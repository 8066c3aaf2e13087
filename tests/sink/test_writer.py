"""Sink.write_events against embedded chDB (modern DDL) and the 18.16 server (legacy DDL)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from ccod_fs.clickhouse.migrate import migrate
from ccod_fs.sink.synthetic import EventFactory, call_events
from ccod_fs.sink.writer import Sink

T0 = datetime(2026, 3, 1, 9, 0, 0, 250_000, tzinfo=UTC)
T0_MS = 1772355600250


def _three_calls():
    f = EventFactory()
    return (
        call_events(f, tenant="acme", queue="sales", start=T0, call_id="c1", agent="a1", wait_ms=12_345,
                    ring_ms=2_000, talk_ms=60_000, holds=((5_000, 3_000),), ivr_ms=1_500)
        + call_events(f, tenant="acme", queue="sales", start=T0, call_id="c2", outcome="abandoned", wait_ms=4_000)
        + call_events(f, tenant="other", queue="sales", start=T0, call_id="c3", agent="b1", wait_ms=1_000)
    )


def _calls(client) -> dict[str, dict]:
    rows = client.query("SELECT * FROM calls ORDER BY tenant_id, call_id")
    return {r["call_id"]: r for r in rows}


def test_chdb_calls_are_exact_whatever_the_order_and_duplicates(chdb) -> None:
    migrate(chdb)
    evs = _three_calls()
    shuffled = evs + evs[::3]  # every third event twice
    random.Random(7).shuffle(shuffled)
    sink = Sink(chdb)
    for i in range(0, len(shuffled), 4):  # many small batches, cut anywhere
        sink.write_events(shuffled[i : i + 4])
    sink.write_events(evs)  # and a full replay
    calls = _calls(chdb)
    assert set(calls) == {"c1", "c2", "c3"}
    c1 = calls["c1"]
    assert c1["tenant_id"] == "acme"
    assert c1["offered_at"] == "2026-03-01 09:00:00.250"
    assert c1["queued_at"] == "2026-03-01 09:00:01.750"
    assert c1["answered_at"] == "2026-03-01 09:00:14.095"
    assert (c1["wait_ms"], c1["ring_ms"], c1["bridge_ms"], c1["hold_ms"], c1["talk_ms"]) == (
        12_345, 2_000, 60_000, 3_000, 57_000)
    assert (c1["disposition"], c1["agent_id"], c1["agent_offers"]) == ("answered", "a1", 1)
    c2 = calls["c2"]
    assert (c2["disposition"], c2["abandoned"], c2["abandon_ms"], c2["wait_ms"]) == ("abandoned", 1, 4_000, None)
    assert calls["c3"]["tenant_id"] == "other"
    unique = len({e.event_id for e in evs})
    assert chdb.query("SELECT count() AS n FROM events_raw FINAL")[0]["n"] == unique
    agg = chdb.query(
        "SELECT uniqExactMerge(offered) AS offered, uniqExactMerge(answered) AS answered, "
        "uniqExactMerge(abandoned) AS abandoned, "
        "arraySum(arrayMap(x -> bitAnd(x, 268435455), groupUniqArrayMerge(answer_waits))) AS waits, "
        "arraySum(arrayMap(x -> bitAnd(x, 268435455), groupUniqArrayMerge(bridge))) AS bridge "
        "FROM queue_interval_stats WHERE tenant_id = 'acme' AND queue_id = 'sales'")[0]
    assert agg == {"offered": 2, "answered": 1, "abandoned": 1, "waits": 12_345, "bridge": 60_000}


def test_native_legacy_write_path_dedupes_and_keeps_ms(native) -> None:
    migrate(native)
    evs = _three_calls()
    sink = Sink(native)
    written = sink.write_events(evs)
    assert written["events_raw"] == len(evs)
    sink.write_events(evs)  # re-delivery of the whole batch
    sink.write_events(evs[5:9])  # and of a re-cut part
    unique = len(evs)
    # before merges the duplicates are physically there; FINAL collapses them by event_id
    assert native.query("SELECT count() AS n FROM events_raw")[0]["n"] == 2 * unique + 4
    assert native.query("SELECT count() AS n FROM events_raw FINAL")[0]["n"] == unique
    native.command("OPTIMIZE TABLE events_raw FINAL")
    assert native.query("SELECT count() AS n FROM events_raw")[0]["n"] == unique
    first = native.query("SELECT occurred_at, event_id, tenant_id FROM events_raw WHERE type = 'call.offered' "
                         "AND call_id = 'c1'")[0]
    assert first["occurred_at"] == T0_MS
    assert str(first["event_id"]) == str(evs[0].event_id)
    # call facts: one row per event, duplicates collapse with FINAL; folded per call by GROUP BY
    assert native.query("SELECT count() AS n FROM calls_partial FINAL")[0]["n"] == unique
    row = native.query(
        "SELECT call_id, min(queued_at) AS queued_at, min(answered_at) AS answered_at, "
        "max(answer_wait_ms) AS wait_ms, sum(bridge_ms) AS bridge, "
        "max(ended_at) AS ended_at, max(hangup_cause) AS cause "
        "FROM calls_partial FINAL WHERE tenant_id = 'acme' AND call_id = 'c1' GROUP BY call_id")[0]
    assert row["queued_at"] == T0_MS + 1_500
    assert row["answered_at"] == T0_MS + 1_500 + 12_345
    assert row["wait_ms"] == 12_345
    assert row["bridge"] == 60_000
    assert row["ended_at"] == T0_MS + 1_500 + 12_345 + 60_000
    assert row["cause"] == "NORMAL_CLEARING"


def test_native_block_encoder_writes_what_the_driver_writes(native) -> None:
    """The insert path's own column encoding against clickhouse-driver's, value for value, on the
    server: every type the encoder handles, NULLs, extremes, non-ASCII text, UUID text and objects,
    and a type it leaves to the driver (Float64)."""
    import uuid

    from ccod_fs.clickhouse.client import NativeClient

    columns = {
        "u8": ("UInt8", [0, 1, 255]), "u16": ("UInt16", [0, 7, 65_535]), "u32": ("UInt32", [0, 9, 2**32 - 1]),
        "u64": ("UInt64", [0, 1772355600250, 2**64 - 1]), "i8": ("Int8", [-128, 0, 127]),
        "i16": ("Int16", [-32_768, 1, 32_767]), "i32": ("Int32", [-(2**31), 2, 2**31 - 1]),
        "i64": ("Int64", [-(2**63), 3, 2**63 - 1]),
        "nu8": ("Nullable(UInt8)", [None, 1, None]), "nu32": ("Nullable(UInt32)", [5, None, 2**32 - 1]),
        "nu64": ("Nullable(UInt64)", [None, None, None]), "ni16": ("Nullable(Int16)", [-1, 0, 1]),
        "s": ("String", ["", "acme", "Grüße, 東京 \\n \"q\""]),
        "ns": ("Nullable(String)", [None, "", "ünï"]),
        "id": ("UUID", [str(uuid.uuid4()), "6f1d3c2e-8a4b-5c6d-9e0f-1a2b3c4d5e6f", str(uuid.UUID(int=0))]),
        "oid": ("UUID", [uuid.uuid4(), uuid.UUID(int=2**128 - 1), uuid.UUID(int=1)]),
        "f": ("Float64", [0.5, -1.25, 1e300]),
    }
    ddl = ", ".join(f"{name} {t}" for name, (t, _v) in columns.items())
    for table in ("by_encoder", "by_driver"):
        native.command(f"CREATE TABLE {table} (k UInt8, {ddl}) ENGINE = MergeTree ORDER BY k")
    data = {"k": [0, 1, 2], **{name: values for name, (_t, values) in columns.items()}}
    assert native._blocks, "clickhouse-driver internals for block inserts are missing"
    native.insert("by_encoder", {name: list(v) for name, v in data.items()})
    driver = NativeClient.__new__(NativeClient)
    driver.__dict__.update(native.__dict__)
    driver._blocks = False  # the driver's own execute(columnar=True)
    driver.insert("by_driver", {name: list(v) for name, v in data.items()})
    encoded = native.query("SELECT * FROM by_encoder ORDER BY k")
    assert encoded == native.query("SELECT * FROM by_driver ORDER BY k")
    assert [str(r["id"]) for r in encoded] == data["id"]
    assert [r["ns"] for r in encoded] == [None, "", "ünï"]
    assert encoded[2]["u64"] == 2**64 - 1 and encoded[0]["i64"] == -(2**63)


def _edge_events() -> list:
    """Events at the edges of what the contract admits: the store must hold every one of them."""
    from ccod_fs.contract.envelope import UTC_MS_MAX, UTC_MS_MIN
    from ccod_fs.contract.events import AgentStatusChanged, CallAnswered, CallOffered

    f = EventFactory()
    out = []
    for i, at in enumerate((UTC_MS_MIN, UTC_MS_MAX)):
        offered = f.make(CallOffered, tenant="acme", at=at, call_id=f"e{i}")
        source = offered.source.model_copy(update={"event_sequence": 2**64 - 1})
        out.append(offered.model_copy(update={"schema_version": 255, "source": source}))
        out.append(f.make(CallAnswered, tenant="acme", at=at, call_id=f"e{i}", queue="q", agent="a", answered_at=at,
                          joined_at=UTC_MS_MIN, called_at=UTC_MS_MAX))
        out.append(f.make(AgentStatusChanged, tenant="acme", at=at, agent_id="a", status="Available"))
    return out


def test_the_edges_of_the_contract_fit_the_modern_columns(chdb) -> None:
    migrate(chdb)
    evs = _edge_events()
    Sink(chdb).write_events(evs)
    raw = chdb.query("SELECT toUnixTimestamp64Milli(occurred_at) AS ms, schema_version AS v, source_sequence AS s "
                     "FROM events_raw WHERE type = 'call.offered' ORDER BY ms")
    # the insert holds both edges; the 1970 rows are past the tables' retention TTL at once (as any old row)
    assert [(int(r["ms"]), int(r["v"]), int(r["s"])) for r in raw] == [(10_413_791_999_999, 255, 2**64 - 1)]
    answered = chdb.query("SELECT toUnixTimestamp64Milli(answered_at) AS ms FROM calls_partial "
                          "WHERE type = 'call.answered'")
    assert [int(r["ms"]) for r in answered] == [10_413_791_999_999]
    assert chdb.query("SELECT count() AS n FROM agent_state_changes")[0]["n"] == 1


def test_the_edges_of_the_contract_fit_the_legacy_columns(native) -> None:
    migrate(native)
    evs = _edge_events()
    Sink(native).write_events(evs)
    raw = native.query("SELECT occurred_at, schema_version, source_sequence FROM events_raw "
                       "WHERE type = 'call.offered' ORDER BY occurred_at")
    assert raw == [{"occurred_at": 0, "schema_version": 255, "source_sequence": 2**64 - 1},
                   {"occurred_at": 10_413_791_999_999, "schema_version": 255, "source_sequence": 2**64 - 1}]
    answered = native.query("SELECT answered_at FROM calls_partial WHERE type = 'call.answered' ORDER BY answered_at")
    assert answered == [{"answered_at": 0}, {"answered_at": 10_413_791_999_999}]
