"""The write-ahead spool on real files: round trips, torn tails, checkpoints and segment deletion."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ccod_fs.ingest.spool import CHECKPOINT_FILE, MAGIC, Spool, SpoolError, SpoolLockedError, SpoolReader


def _open(directory: Path, **kw: int) -> Spool:
    spool = Spool(directory, **kw)
    spool.open()
    return spool


def _value(i: int) -> bytes:
    return b'{"event_id":"%d"}' % i + bytes([i % 251]) * (i % 700)


def _fill(spool: Spool, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        key = None if i % 17 == 0 else b"call-%d" % (i % 13)
        spool.append("calls.v1" if i % 2 else "agents.v1", key, _value(i))


def _read_all(spool: Spool, start: int = 0) -> list[tuple[int, str, bytes | None, bytes]]:
    reader = SpoolReader(spool, start)
    out = []
    while batch := reader.take(333):
        out.extend((r.seq, r.topic, r.key, r.value) for r in batch)
    reader.close()
    return out


def _expected(n: int, start: int = 0) -> list[tuple[int, str, bytes | None, bytes]]:
    return [(i, "calls.v1" if i % 2 else "agents.v1", None if i % 17 == 0 else b"call-%d" % (i % 13), _value(i))
            for i in range(start, n)]


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def test_round_trip_across_segments_and_reopen(tmp_path: Path) -> None:
    spool = _open(tmp_path, segment_bytes=20_000, write_buffer_bytes=4096)
    _fill(spool, 2000)
    assert _read_all(spool) == _expected(2000)
    assert _read_all(spool, 1234) == _expected(2000, 1234)
    spool.close()
    assert len(_segments(tmp_path)) > 10, "small segment_bytes must roll segments"

    reopened = _open(tmp_path, segment_bytes=20_000)
    assert (reopened.acked_seq, reopened.next_seq) == (0, 2000)
    _fill(reopened, 10, start=2000)
    assert _read_all(reopened) == _expected(2010)
    reopened.close()


def test_reader_follows_the_writer_including_unwritten_buffer(tmp_path: Path) -> None:
    spool = _open(tmp_path, write_buffer_bytes=1 << 30)
    reader = SpoolReader(spool, 0)
    _fill(spool, 5)
    assert [r.seq for r in reader.take(100)] == [0, 1, 2, 3, 4]
    assert reader.take(100) == []
    _fill(spool, 3, start=5)
    assert [r.seq for r in reader.take(2)] == [5, 6]
    assert [r.seq for r in reader.take(2)] == [7]
    spool.close()


@pytest.mark.parametrize("damage", ["partial_frame", "flipped_byte", "garbage_tail", "zero_fill"])
def test_torn_tail_is_detected_and_cut(tmp_path: Path, damage: str) -> None:
    spool = _open(tmp_path)
    _fill(spool, 100)
    spool.close()
    seg = _segments(tmp_path)[-1]
    data = seg.read_bytes()
    last_frame_len = len(data) - len(_frame_bytes_before(data, 99))
    if damage == "partial_frame":
        seg.write_bytes(data[:-(last_frame_len // 2)])
    elif damage == "flipped_byte":
        seg.write_bytes(data[:-3] + bytes([data[-3] ^ 0xFF]) + data[-2:])
    elif damage == "garbage_tail":
        seg.write_bytes(data + b"\x30\x00\x00\x00garbage-after-a-crash")
    else:
        seg.write_bytes(data + b"\x00" * 4096)  # preallocated, never written blocks

    reopened = _open(tmp_path)
    survivors = 100 if damage in ("garbage_tail", "zero_fill") else 99
    assert reopened.next_seq == survivors
    assert _read_all(reopened) == _expected(survivors)
    # the cut really happened on disk and new records follow on without a gap
    assert seg.stat().st_size == len(data) if survivors == 100 else seg.stat().st_size < len(data)
    _fill(reopened, 5, start=survivors)
    assert _read_all(reopened) == _expected(survivors + 5)
    reopened.close()


def _frame_bytes_before(data: bytes, seq: int) -> bytes:
    """Bytes of the segment up to (excluding) the frame of ``seq`` (first seq 0)."""
    pos = len(MAGIC)
    for _ in range(seq):
        body_len = int.from_bytes(data[pos:pos + 4], "little")
        pos += 8 + body_len
    return data[:pos]


def test_checkpoint_deletes_acked_segments_and_survives_reopen(tmp_path: Path) -> None:
    spool = _open(tmp_path, segment_bytes=10_000, write_buffer_bytes=2048)
    _fill(spool, 1000)
    spool.write_out()
    before = len(_segments(tmp_path))
    spool.commit(600)
    after = _segments(tmp_path)
    assert len(after) < before
    assert int(after[0].stem) <= 600, "the segment holding seq 600 must be kept"
    assert spool.acked_seq == 600
    with pytest.raises(SpoolError):
        spool.commit(10)  # the checkpoint never moves back
    spool.close()

    reopened = _open(tmp_path, segment_bytes=10_000)
    assert (reopened.acked_seq, reopened.next_seq) == (600, 1000)
    assert [r[0] for r in _read_all(reopened, reopened.acked_seq)] == list(range(600, 1000))
    reopened.commit(1000)
    reopened.close()
    assert _segments(tmp_path) == [], "fully acked: nothing left to replay"

    # with every segment gone, numbering continues after the checkpoint (a reused seq would be
    # taken as already acked and silently dropped on the next restart)
    again = _open(tmp_path)
    assert (again.acked_seq, again.next_seq) == (1000, 1000)
    _fill(again, 3, start=1000)
    again.close()
    last = _open(tmp_path)
    assert [r[0] for r in _read_all(last, last.acked_seq)] == [1000, 1001, 1002]
    last.close()


def test_unreadable_checkpoint_replays_everything_still_on_disk(tmp_path: Path) -> None:
    spool = _open(tmp_path, segment_bytes=10_000)
    _fill(spool, 300)
    spool.write_out()
    spool.commit(150)
    first_kept = int(_segments(tmp_path)[0].stem)
    spool.close()
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"\x01\x02")  # torn checkpoint write

    reopened = _open(tmp_path, segment_bytes=10_000)
    assert reopened.acked_seq == first_kept <= 150
    assert reopened.next_seq == 300
    assert [r[0] for r in _read_all(reopened, reopened.acked_seq)] == list(range(first_kept, 300))
    reopened.close()


def test_records_written_out_survive_sigkill(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import os, signal, sys
        from pathlib import Path
        from ccod_fs.ingest.spool import Spool
        spool = Spool(Path({str(tmp_path)!r}), write_buffer_bytes=1 << 30)
        spool.open()
        for i in range(5000):
            spool.append("t", b"k", b"v%d" % i)
        spool.write_out()                 # what the publisher's poll() does
        spool.append("t", b"k", b"lost")  # still in the process's buffer
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[2], capture_output=True,
                          timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    spool = _open(tmp_path)
    assert spool.next_seq == 5000
    assert [r[3] for r in _read_all(spool)] == [b"v%d" % i for i in range(5000)]
    spool.close()


def test_sync_thread_and_inline_sync(tmp_path: Path) -> None:
    spool = _open(tmp_path)
    _fill(spool, 10)
    spool.request_sync()
    spool.sync()
    assert not spool._dirty
    assert spool.sync_errors == 0
    spool.close()
    assert os.path.getsize(_segments(tmp_path)[0]) > len(MAGIC)


def test_a_second_process_cannot_open_a_spool_in_use(tmp_path: Path) -> None:
    first = _open(tmp_path)
    _fill(first, 3)
    with pytest.raises(SpoolLockedError, match="in use"):
        Spool(tmp_path).open()
    assert first.size_bytes > 0
    first.close()
    second = _open(tmp_path)  # released on close (and by the kernel when a process dies)
    assert second.next_seq == 3
    second.close()


def test_a_lost_middle_segment_is_skipped_not_fatal(tmp_path: Path) -> None:
    spool = _open(tmp_path, segment_bytes=10_000, write_buffer_bytes=2048)
    _fill(spool, 600)
    spool.close()
    segments = _segments(tmp_path)
    lost = segments[len(segments) // 2]
    lost_first, lost_end = int(lost.stem), int(segments[len(segments) // 2 + 1].stem)
    lost.unlink()  # disk corruption took a whole segment
    reopened = _open(tmp_path, segment_bytes=10_000)
    assert [r[0] for r in _read_all(reopened)] == [i for i in range(600) if not lost_first <= i < lost_end]
    reopened.close()


def test_reader_paused_exactly_at_the_written_end_resumes_after_more_writes(tmp_path: Path) -> None:
    spool = _open(tmp_path)
    reader = SpoolReader(spool, 0)
    _fill(spool, 4)
    assert [r.seq for r in reader.take(4)] == [0, 1, 2, 3]  # stops right at the end it knew
    _fill(spool, 3, start=4)
    assert [r.seq for r in reader.take(10)] == [4, 5, 6]
    for i in range(7, 200):  # many small steps, each ending exactly at the written end
        _fill(spool, 1, start=i)
        assert [r.seq for r in reader.take(1)] == [i]
    reader.close()
    spool.close()


def test_a_failed_write_leaves_no_partial_frame_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import ccod_fs.ingest.spool as spool_module

    spool = _open(tmp_path, write_buffer_bytes=1 << 30)
    _fill(spool, 10)
    spool.write_out()
    _fill(spool, 10, start=10)
    real_write = os.write

    def half_then_disk_full(fd: int, data: bytes | memoryview) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool_module.os, "write", half_then_disk_full)
    with pytest.raises(OSError):
        spool.write_out()
    monkeypatch.setattr(spool_module.os, "write", real_write)
    spool.write_out()  # space is back: the buffered records go out intact
    _fill(spool, 5, start=20)
    spool.close()
    reopened = _open(tmp_path)
    assert _read_all(reopened) == _expected(25)
    reopened.close()
