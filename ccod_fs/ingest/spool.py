"""Write-ahead spool: every event lands on local disk before Kafka sees it.

Why a spool: FreeSWITCH cannot replay what the ingest has read, so the ingest must own its events
until Kafka confirms them, across Kafka outages and process crashes (SIGKILL included).

Layout of ``directory``:

- ``<first_seq:020d>.seg``: append-only segment files. Each starts with the 8-byte magic
  ``CCODSPL1`` and holds frames::

      u32 body_len | u32 crc32c(body) | body
      body = u64 seq | u16 topic_len | i32 key_len (-1: no key) | topic | key | value

  ``seq`` is a global, gap-free sequence number; a segment's name is the seq of its first frame.
- ``LOCK``: held with ``flock`` while a process has the spool open: a second process (a second
  ingest for the same node) fails to open it instead of interleaving records.
- ``ack.ckpt``: 12 bytes, ``u64 acked_seq | u32 crc32c`` (little endian): every record with
  ``seq < acked_seq`` is confirmed by Kafka. Replaced atomically (write temp file, rename).

Recovery rules (``open``):

1. Frames are read in order; the first frame whose length is out of range, whose bytes run past
   the end of the file, whose CRC does not match or whose seq is not the expected next one ends
   the valid part of its segment. The rest is cut (``truncate``): in the last segment this is
   the torn tail of a crash; in an older segment it is corruption and is logged as an error.
2. A missing or unreadable checkpoint counts as ``0``: everything still on disk is replayed
   (duplicates, never losses).
3. Segments wholly below the checkpoint, and empty ones, are deleted.
4. New records continue at ``max(checkpoint, last valid seq + 1)`` in a new segment, so a
   checkpoint can never claim a record written after it.

Writes are buffered in memory and reach the OS in one ``os.write`` per ``write_out`` (called by
the publisher's ``poll``/``flush`` and whenever the buffer passes ``write_buffer_bytes``): after
that a process crash (SIGKILL) loses nothing. ``fdatasync`` runs in groups, off the caller's
thread (``request_sync``) or inline (``sync``), so a machine crash loses at most one interval.
"""

from __future__ import annotations

import fcntl
import os
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog
from crc32c import crc32c

log = structlog.get_logger(__name__)

MAGIC = b"CCODSPL1"
FRAME_HEAD = struct.Struct("<II")
BODY_HEAD = struct.Struct("<QHi")
CHECKPOINT = struct.Struct("<QI")
CHECKPOINT_FILE = "ack.ckpt"
LOCK_FILE = "LOCK"
SEGMENT_SUFFIX = ".seg"
MAX_RECORD_BYTES = 64 * 1024 * 1024
_HEAD_LEN = FRAME_HEAD.size + BODY_HEAD.size


class SpoolError(Exception):
    """The spool cannot be used (bad directory, record too large, closed)."""


class SpoolLockedError(SpoolError):
    """Another process has this spool open."""


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    seq: int
    topic: str
    key: bytes | None
    value: bytes


@dataclass(slots=True)
class _Segment:
    first_seq: int
    path: Path
    end_seq: int  # exclusive
    size: int  # bytes of valid frames, magic included


def encode_frame(seq: int, topic: bytes, key: bytes | None, value: bytes) -> bytes:
    """One framed record; the CRC covers seq, lengths, topic, key and value."""
    key_len = -1 if key is None else len(key)
    head = BODY_HEAD.pack(seq, len(topic), key_len) + topic + (key or b"")
    body_len = len(head) + len(value)
    if body_len > MAX_RECORD_BYTES:
        raise SpoolError(f"record of {body_len} bytes exceeds the spool limit of {MAX_RECORD_BYTES}")
    return FRAME_HEAD.pack(body_len, crc32c(value, crc32c(head))) + head + value


def _decode_body(body: bytes | memoryview) -> SpoolRecord:
    seq, topic_len, key_len = BODY_HEAD.unpack_from(body, 0)
    pos = BODY_HEAD.size
    topic = bytes(body[pos:pos + topic_len]).decode()
    pos += topic_len
    key: bytes | None = None
    if key_len >= 0:
        key = bytes(body[pos:pos + key_len])
        pos += key_len
    return SpoolRecord(seq, topic, key, bytes(body[pos:]))


def iter_frames(fd: int, start: int, end: int, first_seq: int,
                chunk: int = 1 << 20) -> Iterator[tuple[int, SpoolRecord]]:
    """Yield ``(offset_after_frame, record)`` for valid frames in ``[start, end)``; stop at the first bad one.

    ``first_seq`` is the seq the frame at ``start`` must carry; seqs must then follow without gaps.
    """
    buf = b""
    base = start  # file offset of buf[0]
    read_at = start
    pos = 0
    expected = first_seq
    head_size = FRAME_HEAD.size
    while True:
        avail = len(buf) - pos
        need = head_size
        if avail >= head_size:
            body_len, crc = FRAME_HEAD.unpack_from(buf, pos)
            if body_len < BODY_HEAD.size or body_len > MAX_RECORD_BYTES:
                return
            need = head_size + body_len
        if avail < need:
            if read_at >= end:
                return
            more = os.pread(fd, min(max(chunk, need - avail), end - read_at), read_at)
            if not more:
                return
            read_at += len(more)
            buf = buf[pos:] + more
            base += pos
            pos = 0
            continue
        body = memoryview(buf)[pos + head_size:pos + need]
        if crc32c(body) != crc:
            return
        record = _decode_body(body)
        if record.seq != expected:
            return
        expected += 1
        pos += need
        yield base + pos, record


class Spool:
    """Append-only, CRC-framed, segmented record log with an ack checkpoint. Single-threaded use."""

    def __init__(self, directory: Path, *, segment_bytes: int = 64 * 1024 * 1024,
                 write_buffer_bytes: int = 256 * 1024) -> None:
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self.write_buffer_bytes = write_buffer_bytes
        self._segments: list[_Segment] = []
        self._fd: int | None = None  # active segment, opened lazily at first write
        self._fd_lock = threading.Lock()  # the sync thread must not fdatasync a closing fd
        self._next_seq = 0
        self._acked_seq = 0
        self._buf = bytearray()
        self._buf_first_seq = 0
        self._dirty = False
        self._opened = False
        self._topics: dict[str, bytes] = {}
        self._sync_wanted = threading.Event()
        self._sync_thread: threading.Thread | None = None
        self._closing = False
        self._lock_fd: int | None = None
        self.sync_errors = 0

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        """Recover the directory (see module doc) and get ready to append."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock()
        checkpoint = self._read_checkpoint()
        paths = sorted(self.directory.glob("*" + SEGMENT_SUFFIX))
        last_valid = -1
        segments: list[_Segment] = []
        for index, path in enumerate(paths):
            try:
                first_seq = int(path.stem)
            except ValueError:
                log.warning("spool.foreign_file_ignored", path=str(path))
                continue
            seg = self._recover_segment(path, first_seq, is_last=index == len(paths) - 1)
            if seg.end_seq == seg.first_seq or seg.end_seq <= checkpoint:
                path.unlink()
                continue
            if last_valid >= 0 and seg.first_seq != last_valid + 1:
                log.error("spool.sequence_gap", after=last_valid, next_segment=seg.first_seq, path=str(path))
            last_valid = seg.end_seq - 1
            segments.append(seg)
        self._segments = segments
        self._next_seq = max(checkpoint, last_valid + 1)
        self._acked_seq = max(checkpoint, segments[0].first_seq if segments else self._next_seq)
        self._buf_first_seq = self._next_seq
        self._opened = True
        self._closing = False
        self._fsync_dir()
        self._sync_thread = threading.Thread(target=self._sync_loop, name="spool-fsync", daemon=True)
        self._sync_thread.start()
        log.info("spool.opened", directory=str(self.directory), acked_seq=self._acked_seq,
                 next_seq=self._next_seq, unacked=self.unacked, segments=len(segments))

    def close(self) -> None:
        """Make everything durable and release the file descriptor."""
        if not self._opened:
            return
        self.sync()
        self._closing = True
        self._sync_wanted.set()
        if self._sync_thread is not None:
            self._sync_thread.join(timeout=10)
        with self._fd_lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
        self._opened = False

    # -- properties ------------------------------------------------------------------------
    @property
    def next_seq(self) -> int:
        """Seq the next appended record gets."""
        return self._next_seq

    @property
    def acked_seq(self) -> int:
        """First seq not confirmed by Kafka (everything below is)."""
        return self._acked_seq

    @property
    def unacked(self) -> int:
        return self._next_seq - self._acked_seq

    @property
    def segment_count(self) -> int:
        return len(self._segments)

    @property
    def size_bytes(self) -> int:
        """Bytes on disk (segments) plus bytes still buffered: what an outage costs in disk space."""
        return sum(seg.size for seg in self._segments) + len(self._buf)

    # -- writing ---------------------------------------------------------------------------
    def append(self, topic: str, key: bytes | None, value: bytes) -> int:
        """Buffer one framed record and return its seq (reaches the OS at the next ``write_out``)."""
        if not self._opened:
            raise SpoolError("spool is not open")
        seq = self._next_seq
        topic_b = self._topics.get(topic)
        if topic_b is None:
            topic_b = self._topics[topic] = topic.encode()
        self._buf += encode_frame(seq, topic_b, key, value)
        self._next_seq = seq + 1
        if len(self._buf) >= self.write_buffer_bytes:
            self.write_out()
        return seq

    def write_out(self) -> None:
        """Hand buffered frames to the OS (one write); from here on a process crash loses nothing."""
        if not self._buf:
            return
        seg = self._segments[-1] if self._fd is not None else None
        if seg is None or seg.size >= self.segment_bytes:
            seg = self._roll(self._buf_first_seq)
        fd = self._fd
        assert fd is not None
        view = memoryview(self._buf)
        try:
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError:
            # disk full or I/O error: cut any partial frame so later appends stay readable, keep the buffer
            os.ftruncate(fd, seg.size)
            raise
        finally:
            view.release()
        seg.size += len(self._buf)
        seg.end_seq = self._next_seq
        self._buf.clear()
        self._buf_first_seq = self._next_seq
        self._dirty = True

    def sync(self) -> None:
        """Write out and fdatasync now (blocking): everything appended so far survives a machine crash."""
        self.write_out()
        with self._fd_lock:
            if self._dirty and self._fd is not None:
                self._dirty = False
                os.fdatasync(self._fd)

    def request_sync(self) -> None:
        """Write out and let the background thread fdatasync (group commit without blocking the caller)."""
        self.write_out()
        if self._dirty:
            self._sync_wanted.set()

    def _sync_loop(self) -> None:
        while not self._closing:
            self._sync_wanted.wait()
            self._sync_wanted.clear()
            if self._closing:
                return
            with self._fd_lock:
                if self._dirty and self._fd is not None:
                    self._dirty = False
                    try:
                        os.fdatasync(self._fd)
                    except OSError as exc:
                        self._dirty = True
                        self.sync_errors += 1
                        log.error("spool.fsync_failed", error=str(exc), directory=str(self.directory))

    def commit(self, acked_seq: int) -> None:
        """Persist the ack checkpoint atomically and delete segments Kafka fully confirmed."""
        if acked_seq < self._acked_seq or acked_seq > self._next_seq:
            raise SpoolError(f"ack checkpoint {acked_seq} outside [{self._acked_seq}, {self._next_seq}]")
        if acked_seq == self._acked_seq and (self.directory / CHECKPOINT_FILE).exists():
            return
        tmp = self.directory / (CHECKPOINT_FILE + ".tmp")
        payload = struct.pack("<Q", acked_seq)
        with tmp.open("wb") as fh:
            fh.write(CHECKPOINT.pack(acked_seq, crc32c(payload)))
        os.replace(tmp, self.directory / CHECKPOINT_FILE)
        self._acked_seq = acked_seq
        # the active segment stays until it rolls; recovered ones (no active yet) may all go
        candidates = self._segments if self._fd is None else self._segments[:-1]
        doomed = [seg for seg in candidates if seg.end_seq <= acked_seq]
        if doomed:
            for seg in doomed:
                seg.path.unlink(missing_ok=True)
            self._segments = [s for s in self._segments if s not in doomed]
            log.debug("spool.segments_deleted", count=len(doomed), acked_seq=acked_seq)

    # -- reading ---------------------------------------------------------------------------
    def read(self, start_seq: int, max_records: int = 1000) -> Iterator[SpoolRecord]:
        """Records from ``start_seq`` on, in order; see ``SpoolReader`` for sequential reads."""
        reader = SpoolReader(self, start_seq)
        try:
            yield from reader.take(max_records)
        finally:
            reader.close()

    # -- internals -------------------------------------------------------------------------
    def _roll(self, first_seq: int) -> _Segment:
        path = self.directory / f"{first_seq:020d}{SEGMENT_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        os.write(fd, MAGIC)
        os.fdatasync(fd)
        self._fsync_dir()
        with self._fd_lock:
            if self._fd is not None:
                os.fdatasync(self._fd)
                os.close(self._fd)
            self._fd = fd
            self._dirty = False
        seg = _Segment(first_seq, path, first_seq, len(MAGIC))
        self._segments.append(seg)
        return seg

    def _recover_segment(self, path: Path, first_seq: int, *, is_last: bool) -> _Segment:
        seg = _Segment(first_seq, path, first_seq, len(MAGIC))
        fd = os.open(path, os.O_RDWR)
        try:
            file_size = os.fstat(fd).st_size
            if os.pread(fd, len(MAGIC), 0) != MAGIC:
                log.error("spool.bad_segment_header", path=str(path))
                seg.size = 0
                return seg
            for offset, record in iter_frames(fd, len(MAGIC), file_size, first_seq):
                seg.size = offset
                seg.end_seq = record.seq + 1
            if seg.size < file_size:
                event = "spool.torn_tail_cut" if is_last else "spool.corrupt_segment_cut"
                (log.warning if is_last else log.error)(
                    event, path=str(path), kept_bytes=seg.size, cut_bytes=file_size - seg.size,
                    last_seq=seg.end_seq - 1)
                os.ftruncate(fd, seg.size)
                os.fsync(fd)
        finally:
            os.close(fd)
        return seg

    def _lock(self) -> None:
        fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SpoolLockedError(f"spool {self.directory} is in use by another process") from None
        self._lock_fd = fd

    def _read_checkpoint(self) -> int:
        path = self.directory / CHECKPOINT_FILE
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return 0
        if len(raw) == CHECKPOINT.size:
            seq, crc = CHECKPOINT.unpack(raw)
            if crc32c(raw[:8]) == crc:
                return int(seq)
        log.error("spool.checkpoint_unreadable", path=str(path), size=len(raw))
        return 0

    def _fsync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _segment_for(self, seq: int) -> _Segment:
        """The segment holding ``seq``, else the first one after it (records lost to corruption are skipped)."""
        for seg in self._segments:
            if seq < seg.end_seq and seg.end_seq > seg.first_seq:
                return seg
        raise SpoolError(f"seq {seq} is not in the spool")


class SpoolReader:
    """Sequential reader from a seq onwards, following the writer into the active segment."""

    def __init__(self, spool: Spool, start_seq: int) -> None:
        self._spool = spool
        self.next_seq = start_seq
        self._fd: int | None = None
        self._seg: _Segment | None = None
        self._offset = 0
        self._offset_seq = start_seq  # seq of the frame at _offset
        self._frames_end = 0  # the segment size the current frame iterator reads up to
        self._frames: Iterator[tuple[int, SpoolRecord]] | None = None

    def take(self, max_records: int) -> list[SpoolRecord]:
        """Up to ``max_records`` records in seq order (fewer when the reader catches up)."""
        out: list[SpoolRecord] = []
        spool = self._spool
        spool.write_out()
        while len(out) < max_records and self.next_seq < spool.next_seq:
            if self._seg is None or (self.next_seq >= self._seg.end_seq and self._frames is None):
                self._open_segment()
            assert self._seg is not None and self._fd is not None
            if self._frames is None:
                self._frames_end = self._seg.size
                self._frames = iter_frames(self._fd, self._offset, self._frames_end, self._offset_seq)
            got = False
            for offset, record in self._frames:
                self._offset = offset
                self._offset_seq = record.seq + 1
                if record.seq < self.next_seq:
                    continue
                out.append(record)
                self.next_seq = record.seq + 1
                got = True
                if len(out) >= max_records:
                    break
            else:
                self._frames = None
                if self.next_seq >= self._seg.end_seq and self._seg is not spool._segments[-1]:
                    self._close_fd()
                    self._seg = None
                elif not got and self.next_seq < self._seg.end_seq and self._frames_end >= self._seg.size:
                    raise SpoolError(f"spool frame for seq {self.next_seq} unreadable in {self._seg.path}")
        return out

    def close(self) -> None:
        self._close_fd()
        self._seg = None
        self._frames = None

    def _open_segment(self) -> None:
        self._close_fd()
        self._frames = None
        seg = self._spool._segment_for(self.next_seq)
        if seg.first_seq > self.next_seq:
            log.error("spool.gap_skipped", from_seq=self.next_seq, to_seq=seg.first_seq, path=str(seg.path))
            self.next_seq = seg.first_seq
        self._seg = seg
        self._fd = os.open(seg.path, os.O_RDONLY)
        self._offset = len(MAGIC)
        self._offset_seq = seg.first_seq

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
