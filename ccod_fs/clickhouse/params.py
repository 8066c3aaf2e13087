"""Query parameters written once as ``{name:Type}`` (ClickHouse's own syntax) for both backends.

chDB binds them natively; for clickhouse-driver (and servers too old for server-side
parameters) they are rendered here as escaped literals, never by string formatting of SQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

_PARAM = re.compile(r"\{(\w+):([A-Za-z0-9_(), ']+)\}")


def quote_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def literal(value: object, type_name: str) -> str:
    t = type_name.strip()
    if value is None:
        return "NULL"
    if t.startswith(("Int", "UInt")):
        return str(int(value))  # type: ignore[call-overload]
    if t.startswith("Float"):
        return repr(float(value))  # type: ignore[arg-type]
    if t.startswith("DateTime") and isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return quote_string(value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3])
    if t.startswith("Array"):
        inner = t[t.index("(") + 1 : -1]
        return "[" + ", ".join(literal(v, inner) for v in value) + "]"  # type: ignore[attr-defined]
    return quote_string(str(value))


def bind(sql: str, params: Mapping[str, object] | None) -> str:
    """Replace ``{name:Type}`` placeholders by literals; a missing parameter is an error."""
    if not params:
        if _PARAM.search(sql):
            raise KeyError("query has parameters but none were given")
        return sql

    def sub(m: re.Match[str]) -> str:
        name, type_name = m.group(1), m.group(2)
        if name not in params:
            raise KeyError(f"missing query parameter {name!r}")
        return literal(params[name], type_name)

    return _PARAM.sub(sub, sql)
