"""One ingest per FreeSWITCH node: a second one on the same spool refuses to start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ccod_fs.ingest.node_lock import NodeLock


def test_second_lock_on_same_spool_is_refused(tmp_path: Path) -> None:
    first = NodeLock(tmp_path)
    first.acquire()
    try:
        # A separate process, as a second pod on the same volume would be.
        code = (
            "import sys; from pathlib import Path; from ccod_fs.ingest.node_lock import NodeLock\n"
            "try:\n    NodeLock(Path(sys.argv[1])).acquire()\nexcept RuntimeError as e:\n"
            "    print(e); sys.exit(3)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 3, proc.stderr
        assert "one ingest per FreeSWITCH node" in proc.stdout
    finally:
        first.release()
    again = NodeLock(tmp_path)
    again.acquire()
    again.release()


def test_lock_in_same_process_is_refused_too(tmp_path: Path) -> None:
    first = NodeLock(tmp_path)
    first.acquire()
    with pytest.raises(RuntimeError):
        NodeLock(tmp_path).acquire()
    first.release()
