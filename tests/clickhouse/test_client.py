from __future__ import annotations

import uuid

import pytest

from ccod_fs.clickhouse.client import fast_uuid


@pytest.mark.parametrize("text", [str(uuid.uuid4()) for _ in range(5)] + [
    "00000000-0000-0000-0000-000000000000", "6f1d3c2e-8a4b-5c6d-9e0f-1a2b3c4d5e6f"])
def test_fast_uuid_equals_uuid(text: str) -> None:
    a, b = fast_uuid(text), uuid.UUID(text)
    assert a == b and a.int == b.int and str(a) == text and hash(a) == hash(b)


BAD = ["6f1d3c2g-8a4b-5c6d-9e0f-1a2b3c4d5e6f", "6f1d3c2e8a4b5c6d9e0f1a2b3c4d5e6fxxxx", "nope"]


@pytest.mark.parametrize("text", BAD)
def test_fast_uuid_rejects_what_uuid_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        uuid.UUID(text)
    with pytest.raises(ValueError):
        fast_uuid(text)


def test_chdb_roundtrip_of_ms_timestamps(chdb) -> None:
    chdb.command("CREATE TABLE t (at DateTime64(3, 'UTC'), n Nullable(DateTime64(3, 'UTC'))) ENGINE = Memory")
    chdb.insert("t", {"at": [0, 1772355600250], "n": [None, 1772355600001]})
    rows = chdb.query("SELECT toUnixTimestamp64Milli(at) AS a, toUnixTimestamp64Milli(n) AS b FROM t ORDER BY a")
    assert rows == [{"a": 0, "b": None}, {"a": 1772355600250, "b": 1772355600001}]
