"""The one-process pipeline (the demo): simulated ESL over TCP -> ingest -> bus -> sink -> chDB -> report."""

from __future__ import annotations

import uuid
from pathlib import Path

from ccod_fs.demo import run_pipeline


def test_report_read_back_from_clickhouse_equals_ground_truth(tmp_path: Path) -> None:
    result = run_pipeline(calls=120, seed=3, data_dir=tmp_path, database=f"demo_{uuid.uuid4().hex[:10]}")
    assert result.dead_letters == 0
    assert result.events_out > 0 and result.events_in > result.events_out
    seen = 0
    for tenant, rows in result.report.items():
        for row in rows:
            truth = result.truth[(tenant, row["queue"])]
            assert (row["offered"], row["answered"], row["abandoned"]) == (
                truth.offered,  # type: ignore[attr-defined]
                truth.answered,  # type: ignore[attr-defined]
                truth.abandoned,  # type: ignore[attr-defined]
            ), (tenant, row["queue"])
            # a queue timeout (no agent in time) is offered, neither answered nor abandoned
            assert row["offered"] - row["answered"] - row["abandoned"] == truth.timeout  # type: ignore[attr-defined]
            seen += row["offered"]
    assert seen == 120
