"""``ccod_fs_native.encode_column`` (the insert path's column encoder) against clickhouse-driver.

For the column types of the sink's tables (read from the schema files) and edge values, the
native bytes equal what the driver's ``write_column`` writes; whatever the native encoder
declines (None) the client leaves to the driver, so the bytes on the wire never change.
"""

from __future__ import annotations

import random
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import ccod_fs_native as native
import pytest
from clickhouse_driver.bufferedwriter import BufferedSocketWriter
from clickhouse_driver.columns.service import write_column
from clickhouse_driver.context import Context

from ccod_fs.clickhouse import client as ch_client
from ccod_fs.sink.native_rows import NativeRowBuilder
from ccod_fs.sink.rows import TABLES

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "clickhouse"


class _Socket:
    def __init__(self) -> None:
        self.data = bytearray()

    def sendall(self, chunk: bytes) -> None:
        self.data += chunk


def _context() -> Context:
    ctx = Context()
    ctx.client_settings = {"strings_as_bytes": False, "strings_encoding": "utf-8", "use_numpy": False,
                           "input_format_null_as_default": False}
    ctx.settings = {}
    ctx.server_info = None
    return ctx


def driver_bytes(type_name: str, values: list[Any]) -> bytes:
    sock = _Socket()
    out = BufferedSocketWriter(sock, 1 << 16)
    write_column(_context(), "c", type_name, list(values), out)
    out.flush()
    return bytes(sock.data)


def client_bytes(type_name: str, values: list[Any]) -> bytes:
    """What ``NativeClient._insert_block`` writes for the column: our encoder, else the driver."""
    sock = _Socket()
    out = BufferedSocketWriter(sock, 1 << 16)
    if not ch_client.encode_column(type_name, values, out):
        write_column(_context(), "c", type_name, list(values), out)
    out.flush()
    return bytes(sock.data)


def schema_types() -> dict[str, dict[str, str]]:
    """Column types of the sink's tables, as their CREATE TABLE statements declare them."""
    out: dict[str, dict[str, str]] = {}
    for path in sorted(SCHEMAS.glob("000[123]_*.sql")):
        for table, body in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)\s*\((.*?)\n\)", path.read_text(), re.S):
            cols = {}
            for line in body.splitlines():
                m = re.match(r"\s+(\w+)\s+(.+?)(?:\s+(?:CODEC|DEFAULT)\b.*)?,?$", line)
                if m and m[1] != "INDEX":
                    cols[m[1]] = m[2].rstrip(",")
            out[table] = cols
    return out


TYPES = ["UInt8", "UInt16", "UInt32", "UInt64", "Int8", "Int16", "Int32", "Int64", "String", "UUID",
         "DateTime64(3, 'UTC')", "LowCardinality(String)"]
NULLABLE = [f"Nullable({t})" for t in TYPES if not t.startswith("LowCardinality") and t != "UUID"] + [
    "LowCardinality(Nullable(String))"]
TEXTS = ["", "a", "é", "😀", "a\x00b", "\u2028", "x" * 300, "tenant-1"]


def values_for(type_name: str, rng: random.Random, n: int, nulls: bool) -> list[Any]:
    inner = type_name.removeprefix("LowCardinality(").removeprefix("Nullable(").rstrip(")")
    if inner.startswith("DateTime64"):
        inner = "Int64"
    out: list[Any] = []
    for _ in range(n):
        if nulls and rng.random() < 0.3:
            out.append(None)
        elif inner == "String":
            out.append(rng.choice(TEXTS) if rng.random() < 0.7 else f"v{rng.randrange(400)}")
        elif inner == "UUID":
            out.append(str(uuid.UUID(int=rng.getrandbits(128))))
        else:
            bits = int(inner.lstrip("UInt").lstrip("Int"))
            lo, hi = (0, 2**bits - 1) if inner.startswith("U") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
            out.append(rng.choice([lo, hi, 0, 1, rng.randint(lo, hi)]))
    return out


@pytest.mark.parametrize("type_name", TYPES + NULLABLE)
def test_native_bytes_equal_the_drivers(type_name: str) -> None:
    rng = random.Random(type_name)
    for n in (0, 1, 2, 5, 255, 256, 300, 2_000):
        values = values_for(type_name, rng, n, "Nullable" in type_name)
        data = native.encode_column(type_name, values)
        assert data is not None, (type_name, n)
        assert data == driver_bytes(type_name, values), (type_name, n)


def test_low_cardinality_key_widths_match_the_driver() -> None:
    for distinct in (1, 2, 255, 256, 257, 65_535, 65_536, 65_537):
        for t in ("LowCardinality(String)", "LowCardinality(Nullable(String))"):
            values = [f"k{i}" for i in range(distinct)]
            assert native.encode_column(t, values) == driver_bytes(t, values), (t, distinct)


@pytest.mark.parametrize(("type_name", "values"), [
    ("UInt8", [256]), ("UInt8", [-1]), ("Int8", [128]), ("UInt64", [2**64]), ("Int64", [1.5]), ("UInt32", [None]),
    ("String", [None]), ("String", [b"bytes"]), ("String", [1]), ("String", ["\ud800"]),
    ("Nullable(String)", ["\udc00"]), ("UUID", ["not-a-uuid"]), ("UUID", [uuid.uuid4()]),
    ("UUID", ["6f1d3c2e8a4b5c6d9e0f1a2b3c4d5e6f"]), ("Nullable(UUID)", [None]),
    ("DateTime64(3, 'UTC')", [datetime(2026, 1, 1)]), ("LowCardinality(String)", [None]),
    ("LowCardinality(UInt8)", [1]), ("DateTime", [1]), ("Float64", [1.0]), ("Array(String)", [["a"]]),
])
def test_declines_what_it_does_not_write_like_the_driver(type_name: str, values: list[Any]) -> None:
    assert native.encode_column(type_name, values) is None


def test_booleans_and_uppercase_uuids_as_the_driver_writes_them() -> None:
    for t, values in (("UInt8", [True, False]), ("DateTime64(3, 'UTC')", [True, 5]),
                      ("UUID", ["6F1D3C2E-8A4B-5C6D-9E0F-1A2B3C4D5E6F"])):
        assert native.encode_column(t, values) == driver_bytes(t, values)


def test_the_sink_tables_columns_encode_like_the_driver() -> None:
    """Every column of a real batch (synthetic calls + coerced records) with its schema type."""
    from test_native_rows_parity import fuzz_values, synthetic_values  # tests/sink is on sys.path

    builder = NativeRowBuilder()
    builder.add_run(list(synthetic_values()) + fuzz_values(7, 1_500), list(range(1_652)), dead=[], origin="t",
                    topic="x", partition=0)
    batch = builder.finish()
    types = schema_types()
    checked = refused = 0
    for table, cols in TABLES.items():
        assert set(cols) <= set(types[table]), table
        for col in cols:
            values = batch.tables[table][col]
            assert values, (table, col)
            type_name = types[table][col]
            data = native.encode_column(type_name, values)
            try:
                expected = driver_bytes(type_name, values)
            except Exception:  # e.g. a schema_version beyond UInt8 (valid for the contract): the driver refuses
                assert data is None, (table, col)
                refused += 1
                continue
            assert data is not None, (table, col, type_name)
            assert data == expected == client_bytes(type_name, values), (table, col)
            checked += 1
    assert checked + refused == sum(len(c) for c in TABLES.values()) and refused <= 2
