"""Which decoder fills the sink's batches: the native one when ``ccod_fs_native`` is built, else Python.

``CCOD_FS_SINK_DECODER=python`` forces the Python path (``native`` requires the native one).
Both builders take runs of record values (``add_run``) and validated records (``add``), count
``events`` (duplicates included) and ``finish()`` into a :class:`~ccod_fs.sink.rows.RowBatch`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Protocol

from ccod_fs.contract.deadletter import DeadLetter
from ccod_fs.sink import native_rows
from ccod_fs.sink.decode import decode_run
from ccod_fs.sink.fastcheck import Record
from ccod_fs.sink.rows import RowBatch, RowBuilder


class BatchRows(Protocol):
    @property
    def events(self) -> int: ...

    def add(self, r: Record) -> None: ...

    def add_run(self, values: Sequence[bytes | None], offsets: Sequence[int], *, dead: list[DeadLetter],
                origin: str, topic: str, partition: int) -> None: ...

    def finish(self) -> RowBatch: ...


class PythonRowBuilder(RowBuilder):
    """The Python path: :func:`decode_run` (orjson + fastcheck, pydantic for the rest) into a RowBuilder."""

    __slots__ = ()

    def add_run(self, values: Sequence[bytes | None], offsets: Sequence[int], *, dead: list[DeadLetter],
                origin: str, topic: str, partition: int) -> None:
        decode_run(values, offsets, add=self.add, dead=dead, origin=origin, topic=topic, partition=partition)


def decoder_name() -> str:
    """``native`` or ``python``: what :func:`new_builder` builds here."""
    wanted = os.environ.get("CCOD_FS_SINK_DECODER", "").strip().lower()
    if wanted == "python":
        return "python"
    if native_rows.available():
        return "native"
    if wanted == "native":
        raise RuntimeError("CCOD_FS_SINK_DECODER=native but ccod_fs_native's sink decoder is not available")
    return "python"


def new_builder(decoder: str | None = None) -> BatchRows:
    if (decoder or decoder_name()) == "native":
        return native_rows.NativeRowBuilder()
    return PythonRowBuilder()
