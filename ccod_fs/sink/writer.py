"""The sink's write side: derive rows, insert them table by table, idempotently.

Used by the Kafka service and directly by the single-process demo (``Sink.write_events``).
Re-delivery is harmless twice over: (1) a retried batch carries the same
``insert_deduplication_token`` per table, so a modern server drops the repeat block at once;
(2) whatever gets through anyway (a batch re-cut after a crash, a replay) collapses by event id
in the ReplacingMergeTree tables (read with FINAL), and the interval aggregates fed by
materialized views keep only idempotent states (distinct call ids, sets keyed by call).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import structlog

from ccod_fs.clickhouse.client import ClickHouseClient
from ccod_fs.contract.envelope import Envelope
from ccod_fs.sink.fastcheck import Record
from ccod_fs.sink.rows import TABLES, RowBatch, derive_rows, derive_rows_from_records

log = structlog.get_logger(__name__)


def batch_token(parts: Iterable[tuple[str, int, int, int]]) -> str:
    """Stable id of a batch from its (topic, partition, first, last offset) ranges."""
    text = ";".join(f"{t}:{p}:{a}-{b}" for t, p, a, b in sorted(parts))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Sink:
    def __init__(self, client: ClickHouseClient) -> None:
        self.client = client

    def write_rows(self, batch: RowBatch, token: str | None = None) -> dict[str, int]:
        """Insert every non-empty table; raises on failure so the caller retries the whole batch."""
        written: dict[str, int] = {}
        for table in TABLES:
            n = batch.count(table)
            if n:
                self.client.insert(table, batch.tables[table], f"{token}:{table}" if token else None)
                written[table] = n
        return written

    def write_events(self, events: Iterable[Envelope], token: str | None = None) -> dict[str, int]:
        """In-process entry point (demo, tests): validated events -> rows -> ClickHouse."""
        return self.write_rows(derive_rows(events), token)

    def write_records(self, records: Iterable[Record], token: str | None = None) -> dict[str, int]:
        return self.write_rows(derive_rows_from_records(records), token)
