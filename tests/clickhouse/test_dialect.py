from __future__ import annotations

from ccod_fs.clickhouse.dialect import Dialect, render, split_statements, to_legacy
from ccod_fs.clickhouse.params import bind

MODERN = """
CREATE TABLE IF NOT EXISTS t
(
    tenant_id   LowCardinality(String),
    at          DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    maybe_at    Nullable(DateTime64(3, 'UTC')),
    first_at    SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    pairs       SimpleAggregateFunction(groupUniqArrayArray, Array(Tuple(DateTime64(3, 'UTC'), UInt8))),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx tenant_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (tenant_id, at)
TTL toDateTime(at) + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000
"""


def test_legacy_rewrites_every_modern_feature() -> None:
    sql = to_legacy(MODERN)
    for gone in ("LowCardinality", "CODEC", "DateTime64", "SimpleAggregateFunction", "TTL", "SETTINGS",
                 "INDEX", "AggregatingMergeTree", "now64"):
        assert gone not in sql, gone
    assert "tenant_id   String," in sql
    assert "at          UInt64," in sql
    assert "maybe_at    Nullable(UInt64)" in sql
    assert "first_at    UInt64" in sql
    assert "pairs       Array(Tuple(UInt64, UInt8))" in sql
    assert "DEFAULT (toUInt64(now()) * 1000)" in sql
    assert "ENGINE = MergeTree" in sql
    assert "PARTITION BY toYYYYMM(toDateTime(intDiv(at, 1000)))" in sql
    # the dropped INDEX line must not leave a dangling comma before ')'
    assert "DEFAULT (toUInt64(now()) * 1000)\n)" in sql


def test_modern_render_is_identity() -> None:
    assert render(MODERN, Dialect.MODERN) == MODERN


def test_split_statements_keeps_modern_only_marker() -> None:
    script = "-- a table\nCREATE TABLE a (x UInt8) ENGINE = Memory;\n\n-- @modern-only\nCREATE VIEW v AS SELECT 1;\n"
    sts = split_statements(script)
    assert [s.modern_only for s in sts] == [False, True]
    assert sts[0].sql == "CREATE TABLE a (x UInt8) ENGINE = Memory"
    assert sts[1].sql == "CREATE VIEW v AS SELECT 1"


def test_bind_escapes_strings_and_checks_numbers() -> None:
    sql = bind("SELECT {t:String}, {n:UInt32}, {xs:Array(String)}", {"t": "a'b\\c", "n": "7", "xs": ["x", "y'"]})
    assert sql == "SELECT 'a\\'b\\\\c', 7, ['x', 'y\\'']"


def test_bind_refuses_missing_parameter() -> None:
    import pytest

    with pytest.raises(KeyError):
        bind("SELECT {t:String}", {"other": 1})
    with pytest.raises(ValueError):
        bind("SELECT {n:UInt32}", {"n": "1; DROP TABLE x"})


def test_legacy_aggregate_states_keep_the_if_combinator() -> None:
    sql = to_legacy("CREATE TABLE s\n(\n    k String,\n    n AggregateFunction(uniqExact, UInt64)\n)\n"
                    "ENGINE = AggregatingMergeTree\nORDER BY k")
    assert "n AggregateFunction(uniqExactIf, UInt64, UInt8)" in sql
    assert "ENGINE = AggregatingMergeTree" in sql


def test_legacy_rewrites_time_columns_defined_elsewhere() -> None:
    mv = "CREATE MATERIALIZED VIEW v TO s AS SELECT toStartOfFifteenMinutes(at) AS i FROM t GROUP BY i"
    assert "toStartOfFifteenMinutes(toDateTime(intDiv(at, 1000)))" in to_legacy(mv, {"at"})
    assert "toStartOfFifteenMinutes(at)" in to_legacy(mv)
