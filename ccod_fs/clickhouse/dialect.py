"""Production DDL (ClickHouse >= 24.8) and its rewrite for a legacy 18.16 server.

The migrations are written once, for the modern engine. ClickHouse 18.16 (Debian's
package, used for the native-protocol tests) lacks DateTime64, LowCardinality, codecs,
TTL, SimpleAggregateFunction, bloom_filter indexes, window functions and insert
deduplication tokens, so :func:`to_legacy` rewrites each statement:

* ``DateTime64(3, 'UTC')`` -> ``UInt64`` holding epoch milliseconds (exact, sortable; the
  sink already carries timestamps as epoch ms, so the write path is identical);
  ``toYYYYMM(ts)``, ``toDate(ts)``, ``toStartOfHour(ts)``... on such columns get ``intDiv(ts, 1000)``;
  ``now64(3)`` -> ``toUInt64(now()) * 1000``.
* ``LowCardinality(T)`` -> ``T``; ``SimpleAggregateFunction(f, T)`` -> ``T`` and
  ``AggregatingMergeTree`` -> ``MergeTree`` (reads aggregate with GROUP BY anyway).
* ``AggregateFunction(f, T)`` -> ``AggregateFunction(fIf, T, UInt8)``: 18.16 keeps the -If
  combinator in the type of ``fIfState(x, cond)``, which is how our materialized views fill
  every such column; read them with ``fIfMerge`` there.
* ``CODEC(...)``, ``TTL ...``, ``INDEX ...`` and ``SETTINGS ...`` lines are dropped, except a
  ``SETTINGS index_granularity = N`` line (18.16 has it).
* Statements marked ``-- @modern-only`` (views and materialized views that need modern
  functions) are skipped.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class Dialect(enum.StrEnum):
    MODERN = "modern"
    LEGACY = "legacy"


MODERN_ONLY = "-- @modern-only"

_DT64 = re.compile(r"DateTime64\(\s*3\s*,\s*'UTC'\s*\)")
# ``SETTINGS index_granularity = N`` alone on its line is kept: 18.16 has it, and a table of
# large aggregate states needs small granules there too (a read decodes whole granules).
_GRANULARITY = re.compile(r"\s*SETTINGS\s+index_granularity\s*=\s*\d+\s*;?\s*$")
_CODEC = re.compile(r"\s+CODEC\((?:[^()]|\([^()]*\))*\)")


@dataclass(frozen=True)
class Statement:
    sql: str
    modern_only: bool


def split_statements(script: str) -> list[Statement]:
    """Split a migration file into statements ending with ``;`` at end of a (non-comment) line.

    Whole-line ``--`` comments are dropped (they may contain ``;``) but a ``-- @modern-only``
    marker among them applies to the statement that follows.
    """
    out: list[Statement] = []
    lines: list[str] = []
    modern_only = False
    for line in script.splitlines():
        stripped = line.strip()
        if stripped.startswith("--"):
            modern_only = modern_only or stripped.startswith(MODERN_ONLY)
            continue
        lines.append(line)
        if stripped.endswith(";"):
            body = "\n".join(lines).strip().removesuffix(";").strip()
            if body:
                out.append(Statement(sql=body, modern_only=modern_only))
            lines, modern_only = [], False
    body = "\n".join(lines).strip()
    if body:
        out.append(Statement(sql=body, modern_only=modern_only))
    return out


def _strip_wrapper(sql: str, name: str) -> str:
    """Replace ``name(inner)`` by ``inner`` for every occurrence, honouring nested parentheses."""
    token = name + "("
    while (start := sql.find(token)) != -1:
        depth, i = 1, start + len(token)
        while depth:
            depth += {"(": 1, ")": -1}.get(sql[i], 0)
            i += 1
        sql = sql[:start] + sql[start + len(token) : i - 1] + sql[i:]
    return sql


def _strip_simple_aggregate(sql: str) -> str:
    """``SimpleAggregateFunction(f, T)`` -> ``T``."""
    token = "SimpleAggregateFunction("
    while (start := sql.find(token)) != -1:
        depth, i = 1, start + len(token)
        comma = -1
        while depth:
            ch = sql[i]
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            elif ch == "," and depth == 1 and comma == -1:
                comma = i
            i += 1
        sql = sql[:start] + sql[comma + 1 : i - 1].strip() + sql[i:]
    return sql


def _dt64_columns(sql: str) -> set[str]:
    cols = set()
    for line in sql.splitlines():
        m = re.match(r"\s*(\w+)\s+(.*)$", line)
        if m and "DateTime64" in m.group(2):
            cols.add(m.group(1))
    return cols


def dt64_columns(sql: str) -> set[str]:
    """Names of the DateTime64 columns a CREATE TABLE statement defines."""
    return _dt64_columns(sql)


def to_legacy(sql: str, time_columns: frozenset[str] | set[str] = frozenset()) -> str:
    """Rewrite one modern statement for ClickHouse 18.16 (see module doc).

    ``time_columns`` names DateTime64 columns defined elsewhere (e.g. those a materialized view
    reads), so that date functions on them get the epoch-ms conversion too.
    """
    dt_cols = _dt64_columns(sql) | set(time_columns)
    sql = _CODEC.sub("", sql)
    sql = _strip_wrapper(sql, "LowCardinality")
    sql = _strip_simple_aggregate(sql)
    sql = _DT64.sub("UInt64", sql)
    sql = sql.replace("now64(3)", "(toUInt64(now()) * 1000)")
    if "MATERIALIZED VIEW" not in sql:
        # 18.16 keeps the -If combinator in the state type of ``fIfState(x, cond)``; our
        # materialized views fill every AggregateFunction column that way.
        sql = re.sub(r"AggregateFunction\((\w+), ([^()]+)\)", r"AggregateFunction(\1If, \2, UInt8)", sql)
    if "AggregateFunction(" not in sql:
        sql = re.sub(r"\bAggregatingMergeTree\b", "MergeTree", sql)
    lines = [
        ln
        for ln in sql.splitlines()
        if not re.match(r"\s*(TTL|SETTINGS|INDEX)\b", ln) or _GRANULARITY.match(ln)
    ]
    sql = "\n".join(lines)
    sql = re.sub(r",(\s*\n\s*\))", r"\1", sql)  # trailing comma left by a dropped INDEX line
    for col in dt_cols:
        sql = re.sub(
            rf"\b(toYYYYMM|toYYYYMMDD|toDate|toDateTime|toStartOfHour|toStartOfFifteenMinutes)\(\s*{col}\s*\)",
            rf"\1(toDateTime(intDiv({col}, 1000)))",
            sql,
        )
    return sql


def render(sql: str, dialect: Dialect, time_columns: frozenset[str] | set[str] = frozenset()) -> str:
    return sql if dialect is Dialect.MODERN else to_legacy(sql, time_columns)
