"""The native twin of ``decode_run`` + :class:`~ccod_fs.sink.rows.RowBuilder` (``ccod_fs_native``).

The Rust decoder parses, checks (as strictly as :mod:`ccod_fs.sink.fastcheck`, from the same
models: :mod:`ccod_fs.sink.native_spec`) and derives the rows of a run of record values with the
GIL released. It stops at the first value it cannot prove valid and hands back its index: that
value goes through the Python :func:`~ccod_fs.sink.decode.decode` (pydantic decides: a record,
whose rows :func:`~ccod_fs.sink.rows.record_rows` derives into the same batch, or a dead letter),
and the run resumes after it. Same rows, same order, same in-batch dedupe as the Python path
(tests/sink/test_native_rows_parity.py).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import structlog

from ccod_fs.contract.deadletter import DeadLetter
from ccod_fs.sink.decode import decode
from ccod_fs.sink.fastcheck import Record
from ccod_fs.sink.native_spec import event_specs
from ccod_fs.sink.rows import _FACTS, TABLES, RowBatch, record_rows

_native: Any
try:
    _native = importlib.import_module("ccod_fs_native")
except ImportError:  # the extension is not built: the Python path only
    _native = None

log = structlog.get_logger(__name__)

_schema: Any = None


def available() -> bool:
    """Whether the native decoder is importable and agrees with this contract and row layout."""
    if _native is None:
        return False
    try:
        return schema() is not None
    except (AttributeError, TypeError, ValueError) as exc:  # an older build, or rows.py changed without its twin
        log.warning("sink.native_decoder_unusable", error=str(exc))
        return False


def schema() -> Any:
    """The contract's models for the native decoder (built once)."""
    global _schema
    if _schema is None:
        facts = {t: list(cols) for t, (cols, _fn) in _FACTS.items()}
        _schema = _native.SinkSchema(event_specs(), {t: list(c) for t, c in TABLES.items()}, facts)
    return _schema


class NativeRowBuilder:
    """The rows of one batch, decoded natively; the interface of the Python builder."""

    __slots__ = ("_rows",)

    def __init__(self) -> None:
        self._rows = _native.SinkRows(schema())

    @property
    def events(self) -> int:
        """Records added, duplicates included."""
        count: int = self._rows.events
        return count

    def add(self, r: Record) -> None:
        """A record validated in Python (rows derived by :func:`record_rows`)."""
        raw, group, fixed, facts, agent = record_rows(r)
        self._rows.add_rows(r["event_id"], raw, group, fixed, facts, agent)

    def add_run(self, values: Sequence[bytes | None], offsets: Sequence[int], *, dead: list[DeadLetter],
                origin: str, topic: str, partition: int) -> None:
        """``decode_run`` into this batch: valid records become rows, the rest dead letters."""
        if type(values) is not list:
            values = list(values)
        n = len(values)
        add_run = self._rows.add_run
        i = add_run(values, 0)
        while i < n:
            item = decode(values[i], origin=origin, topic=topic, partition=partition, offset=offsets[i])
            if isinstance(item, DeadLetter):
                dead.append(item)
            else:
                self.add(item)
            i = add_run(values, i + 1)

    def finish(self) -> RowBatch:
        _events, tables = self._rows.finish()
        return RowBatch(tables=tables)
