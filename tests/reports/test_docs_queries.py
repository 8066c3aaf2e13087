"""Every example query in docs/analysts.md runs: modern ones on chDB, the 18.16 one on the server."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from ccod_fs.clickhouse.client import ChdbClient
from ccod_fs.clickhouse.migrate import migrate
from ccod_fs.sink.writer import Sink

DOC = Path(__file__).resolve().parents[2] / "docs" / "analysts.md"


def examples() -> list[tuple[str, str]]:
    text = DOC.read_text("utf-8")
    section = text[text.index("## Example queries"):]
    out = []
    for m in re.finditer(r"\n(\d+)\. ([^\n]*)\n(?:[^\n`]*\n)*?```sql\n(.*?)```", section, re.S):
        out.append((m.group(2), m.group(3).strip().rstrip(";")))
    return out


def test_docs_have_ten_plus_examples() -> None:
    assert len(examples()) >= 10


def test_modern_examples_run_on_chdb(chdb_path) -> None:
    from test_reports import dataset

    client = ChdbClient(chdb_path, f"docs_{uuid.uuid4().hex[:8]}")
    migrate(client)
    Sink(client).write_events(dataset())
    ran = 0
    for title, sql in examples():
        if "18.16" in title:
            continue
        client.query(sql.replace("call_id = '...'", "call_id = 's1'"))
        ran += 1
    assert ran >= 10
    timeline = client.query(next(sql for t, sql in examples() if "one call" in t).replace("'...'", "'s1'"))
    assert [r["type"] for r in timeline][:2] == ["call.offered", "call.queued"]


def test_legacy_example_runs_on_the_server(native) -> None:
    from test_reports import dataset

    migrate(native)
    Sink(native).write_events(dataset())
    sql = next(sql for t, sql in examples() if "18.16" in t)
    native.query(sql)
    rows = native.query(sql.replace(
        "WHERE answered_at >= toUInt64(toUnixTimestamp(toStartOfDay(now()))) * 1000", "WHERE answered_at > 0"))
    by_queue = {r["queue"]: r for r in rows}
    assert by_queue["sales"]["answered"] == 4  # s1, s2, s5, s7 of the report data set
    assert by_queue["sales"]["asa_ms"] == 15_000
