"""One small interface over two backends: embedded chDB (default) and a server (native protocol).

Rows are passed column-wise (``dict[column, list]``) with timestamps as epoch milliseconds
(ints): the native driver sends them straight into ``DateTime64(3)`` (or the legacy ``UInt64``
ms column) without datetime conversions; the chDB writer renders them as ``seconds.millis``
text for JSONEachRow, knowing from the table's description which columns are times.
"""

from __future__ import annotations

import operator
import sys
import threading
import time
import weakref
from array import array
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse
from uuid import UUID, SafeUUID

import orjson
import structlog

from ccod_fs.clickhouse.dialect import Dialect
from ccod_fs.clickhouse.params import bind

log = structlog.get_logger(__name__)


Columns = Mapping[str, Sequence[Any]]


class ClickHouseUnavailable(Exception):
    """The backend cannot be reached right now: retry later, never drop."""


class ClickHouseClient(Protocol):
    dialect: Dialect
    database: str

    def command(self, sql: str, params: Mapping[str, object] | None = None) -> None: ...

    def query(self, sql: str, params: Mapping[str, object] | None = None) -> list[dict[str, Any]]: ...

    def insert(self, table: str, columns: Columns, dedup_token: str | None = None) -> None: ...

    def close(self) -> None: ...


# ---- embedded chDB ------------------------------------------------------------------------------

_chdb_lock = threading.RLock()
_chdb_session: Any = None
_chdb_path: str | None = None
_chdb_current_db: str | None = None  # the session's database: ``USE`` only when it changes


class InsertWatcher(Protocol):
    """Told of every write to one embedded database (see :meth:`ChdbClient.watch`)."""

    def on_insert(self, table: str, columns: Columns) -> None: ...

    def on_command(self) -> None: ...


# database -> watchers; weak, so a dropped Reports stops collecting rows
_watchers: dict[str, weakref.WeakSet[InsertWatcher]] = {}


def _utc_text(value: datetime) -> str:
    """``YYYY-MM-DD hh:mm:ss.mmm`` in UTC, how ClickHouse parses a DateTime64(3, 'UTC') parameter."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _ms_text(value: int | None) -> str | None:
    """Epoch ms -> ``YYYY-MM-DD hh:mm:ss.mmm`` UTC (short numbers would be read as dates)."""
    if value is None:
        return None
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(value // 1000)) + f".{value % 1000:03d}"


class ChdbClient:
    """chDB keeps one engine per process; every client shares it and picks its database."""

    dialect = Dialect.MODERN

    def __init__(self, path: Path, database: str) -> None:
        global _chdb_session, _chdb_path
        from chdb import session as chdb_session

        self.database = database
        self._times: dict[str, frozenset[str]] = {}
        with _chdb_lock:
            resolved = str(Path(path).resolve())
            if _chdb_session is None:
                Path(resolved).mkdir(parents=True, exist_ok=True)
                _chdb_session = chdb_session.Session(resolved)
                _chdb_session.query("SET output_format_json_quote_64bit_integers = 0")
                _chdb_path = resolved
            elif _chdb_path != resolved:
                # chDB runs one engine per process: keep the open one, databases still isolate
                log.warning("chdb.already_open", open_path=_chdb_path, requested_path=resolved, database=database)
            _chdb_session.query(f"CREATE DATABASE IF NOT EXISTS {database}")

    def _run(self, sql: str, params: Mapping[str, object] | None, fmt: str) -> bytes:
        global _chdb_current_db
        native = {k: (_utc_text(v) if isinstance(v, datetime) else v) for k, v in (params or {}).items()}
        with _chdb_lock:
            if _chdb_current_db != self.database:
                _chdb_current_db = None  # unknown until USE succeeds
                _chdb_session.query(f"USE {self.database}")
                _chdb_current_db = self.database
            result = _chdb_session.query(sql, fmt, params=native or None)
        return bytes(result.bytes()) if result is not None else b""

    def watch(self, watcher: InsertWatcher) -> None:
        """Tell ``watcher`` of every insert into this database through any ChdbClient (after it
        succeeded, under the engine lock, so in commit order) and of every command, which may
        have written rows it cannot see. An embedded database has no other writer than this
        process, so these calls are every change there is. Held weakly."""
        with _chdb_lock:
            _watchers.setdefault(self.database, weakref.WeakSet()).add(watcher)

    def command(self, sql: str, params: Mapping[str, object] | None = None) -> None:
        with _chdb_lock:
            try:
                self._run(sql, params, "TSV")
            finally:
                for watcher in list(_watchers.get(self.database, ())):
                    watcher.on_command()

    def query(self, sql: str, params: Mapping[str, object] | None = None) -> list[dict[str, Any]]:
        data = self._run(sql, params, "JSONEachRow")
        return [orjson.loads(line) for line in data.splitlines() if line]

    def _time_columns(self, table: str) -> frozenset[str]:
        if table not in self._times:
            rows = self.query(f"DESCRIBE TABLE {table}")
            self._times[table] = frozenset(r["name"] for r in rows if "DateTime64" in r["type"])
        return self._times[table]

    def insert(self, table: str, columns: Columns, dedup_token: str | None = None) -> None:
        names = list(columns)
        if not names or not len(columns[names[0]]):
            return
        times = self._time_columns(table)
        cols = [[_ms_text(v) for v in columns[n]] if n in times else columns[n] for n in names]
        body = b"\n".join(orjson.dumps(dict(zip(names, row, strict=True))) for row in zip(*cols, strict=True))
        settings = f" SETTINGS insert_deduplication_token = '{dedup_token}'" if dedup_token else ""
        sql = f"INSERT INTO {self.database}.{table} ({', '.join(names)}){settings} FORMAT JSONEachRow\n"
        with _chdb_lock:
            _chdb_session.query(sql + body.decode("utf-8"), "TSV")
            for watcher in list(_watchers.get(self.database, ())):
                watcher.on_insert(table, columns)

    def close(self) -> None:
        """The shared engine stays open for the process; see :func:`close_embedded`."""


def close_embedded() -> None:
    global _chdb_session, _chdb_path, _chdb_current_db
    with _chdb_lock:
        if _chdb_session is not None:
            _chdb_session.close()
        _chdb_session = None
        _chdb_path = None
        _chdb_current_db = None


def exit_process(status: int = 0) -> None:
    """End a process that loaded chDB without running its native global shutdown.

    chDB 4.4 can segfault in ``global_context->shutdown()`` at interpreter exit
    ("ShutdownTablesThreadPool is not initialized"), turning a finished run into exit 139.
    Entry points call this once their output is written; data is already durable.
    """
    import os
    import sys

    if "chdb" not in sys.modules:
        sys.exit(status)
    close_embedded()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


# ---- server over the native protocol -------------------------------------------------------------

_new_uuid = UUID.__new__
_set = object.__setattr__
_UNKNOWN = SafeUUID.unknown  # enum member lookup is slow on the hot path


def fast_uuid(text: str) -> UUID:
    """``UUID(text)`` for canonical 36-char text at a fraction of the cost (the driver wants UUIDs)."""
    if len(text) != 36 or not text[8] == text[13] == text[18] == text[23] == "-" or "_" in text:
        return UUID(text)
    u = _new_uuid(UUID)
    _set(u, "int", int(text.replace("-", ""), 16))
    _set(u, "is_safe", _UNKNOWN)
    return u



# ---- native block encoding for the insert path ---------------------------------------------------
#
# Why: clickhouse-driver serialises most columns item by item in Python (a null map per
# Nullable cell, ``UUID`` -> two ints per id, a type check per value): ~10 us per event of the
# sink, as much as all of its decoding. Here the common column types are encoded whole with
# C-level operations (``array``, ``bytes.fromhex``, ``map``); the driver still speaks the
# protocol, and any other type (or a value that does not fit) is written by the driver itself.

_ARRAY_CODES = {"UInt8": "B", "UInt16": "H", "UInt32": "I", "UInt64": "Q",
                "Int8": "b", "Int16": "h", "Int32": "i", "Int64": "q"}
_BITS = {"UInt8": 8, "UInt16": 16, "UInt32": 32, "UInt64": 64, "Int8": 8, "Int16": 16, "Int32": 32, "Int64": 64}
_LITTLE = sys.byteorder == "little" and all(array(code).itemsize * 8 == _BITS[t] for t, code in _ARRAY_CODES.items())


class _Unencodable(Exception):
    """This column (type or values) is left to the driver's own writer."""


def _ints(code: str, values: Sequence[Any]) -> bytes:
    try:
        return array(code, values).tobytes()
    except (TypeError, OverflowError) as exc:
        raise _Unencodable from exc


def _uuids(values: Sequence[Any]) -> bytes:
    """ClickHouse UUID: the high and the low 64 bits, each little-endian."""
    try:
        text = "".join(values).replace("-", "")
    except TypeError:  # UUID objects
        if not all(type(v) is UUID for v in values):
            raise _Unencodable from None
        text = "".join([v.hex for v in values])
    if len(text) != 32 * len(values):
        raise _Unencodable
    try:
        raw = array("Q", bytes.fromhex(text))
    except ValueError as exc:
        raise _Unencodable from exc
    raw.byteswap()  # big-endian halves as written in the text -> little-endian
    return raw.tobytes()


def _native_encoder() -> Any:
    try:
        from ccod_fs_native import encode_column as native_encode_column
    except ImportError:  # the extension is not built (or older): the Python encoder below
        return None
    return native_encode_column


# ``ccod_fs_native.encode_column``: whole columns in Rust, byte for byte what the driver writes
# (tests/sink/test_native_encode.py), including the LowCardinality and DateTime64 columns that
# the Python encoder below leaves to the driver.
_native_encode = _native_encoder()


def encode_column(type_name: str, values: Sequence[Any], out: Any) -> bool:
    """Write one column (state prefix and data) in the native format to ``out``; False: the driver must do it."""
    if _native_encode is not None and type(values) is list:
        data = _native_encode(type_name, values)
        if data is not None:
            out.write(data)
            return True
    if not _LITTLE:
        return False
    nullable = type_name.startswith("Nullable(")
    inner = type_name[9:-1] if nullable else type_name
    code = _ARRAY_CODES.get(inner)
    if code is None and inner not in ("String", "UUID"):
        return False
    try:
        if nullable:
            nulls = bytes(map(operator.is_, values, repeat(None)))
            if 1 in nulls:
                default: Any = "" if inner == "String" else 0
                values = [default if v is None else v for v in values]
        data = b"" if inner == "String" else _uuids(values) if inner == "UUID" else _ints(code or "", values)
    except _Unencodable:
        return False
    if nullable:
        out.write(nulls)
    if inner == "String":
        out.write_strings(values, encoding="utf-8")
    else:
        out.write(data)
    return True


def _driver_supports_blocks() -> bool:
    try:
        from clickhouse_driver import __version__
        from clickhouse_driver.client import Client

        return __version__ == "0.2.11" and all(
            hasattr(Client, name) for name in ("disconnect_on_error", "receive_sample_block",
                                               "receive_end_of_insert_query", "receive_profile_events"))
    except ImportError:
        return False


class NativeClient:
    """clickhouse-driver; dialect detected from the server version (< 20 -> legacy DDL)."""

    def __init__(self, host: str, port: int, database: str, user: str = "default", password: str = "",
                 connect_timeout: float = 5.0, send_receive_timeout: float = 60.0) -> None:
        from clickhouse_driver import Client

        self.database = database
        kwargs = dict(host=host, port=port, user=user, password=password,
                      connect_timeout=connect_timeout, send_receive_timeout=send_receive_timeout)
        boot = Client(database="default", **kwargs)  # type: ignore[arg-type]
        try:
            boot.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
            major = int(str(boot.execute("SELECT version()")[0][0]).split(".")[0])
        except Exception as exc:
            raise ClickHouseUnavailable(str(exc)) from exc
        finally:
            boot.disconnect()
        self.server_major = major
        self.dialect = Dialect.LEGACY if major < 20 else Dialect.MODERN
        self._client = Client(database=database, **kwargs)  # type: ignore[arg-type]
        self._tables: dict[str, tuple[dict[str, int], frozenset[str]]] = {}
        self._blocks = _driver_supports_blocks()

    def command(self, sql: str, params: Mapping[str, object] | None = None) -> None:
        self._client.execute(bind(sql, params))

    def query(self, sql: str, params: Mapping[str, object] | None = None) -> list[dict[str, Any]]:
        rows, cols = self._client.execute(bind(sql, params), with_column_types=True)
        names = [c[0] for c in cols]
        return [dict(zip(names, r, strict=True)) for r in rows]

    def _describe(self, table: str) -> tuple[dict[str, int], frozenset[str]]:
        """Per table: 18.16's nested ``col.1, col.2`` sub-columns of ``Array(Tuple)``, and UUID columns."""
        if table not in self._tables:
            counts: dict[str, int] = {}
            uuids = set()
            for (name, type_name, *_rest) in self._client.execute(f"DESCRIBE TABLE {table}"):
                base, _, idx = name.partition(".")
                if idx.isdigit():
                    counts[base] = max(counts.get(base, 0), int(idx))
                if type_name == "UUID":
                    uuids.add(name)
            self._tables[table] = (counts, frozenset(uuids))
        return self._tables[table]

    def _legacy_nested(self, table: str) -> dict[str, int]:
        return self._describe(table)[0]

    def insert(self, table: str, columns: Columns, dedup_token: str | None = None) -> None:
        names = list(columns)
        if not names or not len(columns[names[0]]):
            return
        data: dict[str, Sequence[Any]] = dict(columns)
        nested, uuid_columns = self._describe(table)
        if not self._blocks:  # the driver wants UUID objects; our encoder takes canonical text too
            for name in uuid_columns.intersection(data):
                data[name] = [v if isinstance(v, UUID) else fast_uuid(v) for v in data[name]]
        settings: dict[str, Any] = {}
        if self.dialect is Dialect.MODERN:
            if dedup_token:
                settings["insert_deduplication_token"] = dedup_token
        else:
            for base, width in nested.items():
                if base in data:
                    cells = data.pop(base)
                    empty: list[Any] = []  # shared: most cells are empty, the driver only reads them
                    for i in range(width):
                        data[f"{base}.{i + 1}"] = [[t[i] for t in cell] if cell else empty for cell in cells]
        query = f"INSERT INTO {table} ({', '.join(f'`{n}`' for n in data)}) VALUES"
        if self._blocks:
            self._insert_block(query, data, settings or None)
        else:
            self._client.execute(query, list(data.values()), columnar=True, settings=settings or None)

    def _insert_block(self, query: str, data: dict[str, Sequence[Any]], settings: dict[str, Any] | None) -> None:
        """``execute(INSERT, columns, columnar=True)`` with one block whose columns we encode.

        The same packets as the driver's ``process_insert_query`` + ``send_data`` +
        ``BlockOutputStream.write`` (clickhouse-driver 0.2.11, pinned; checked at start-up).
        """
        from clickhouse_driver import defines
        from clickhouse_driver.block import BlockInfo, RowOrientedBlock
        from clickhouse_driver.columns.service import write_column
        from clickhouse_driver.protocol import ClientPacketTypes
        from clickhouse_driver.varint import write_varint
        from clickhouse_driver.writer import write_binary_str, write_binary_uint8

        client = self._client
        rows = len(next(iter(data.values())))
        with client.disconnect_on_error(query, settings):
            conn = client.connection
            conn.send_query(query)
            conn.send_external_tables(None)
            sample = client.receive_sample_block()
            types = dict(sample.columns_with_types)
            revision = conn.server_info.used_revision
            write_varint(ClientPacketTypes.DATA, conn.fout)
            if revision >= defines.DBMS_MIN_REVISION_WITH_TEMPORARY_TABLES:
                write_binary_str("", conn.fout)
            stream = conn.block_out
            out = stream.fout
            if revision >= defines.DBMS_MIN_REVISION_WITH_BLOCK_INFO:
                BlockInfo().write(out)
            write_varint(len(data), out)
            write_varint(rows, out)
            for name, values in data.items():
                if len(values) != rows:
                    raise ValueError("Different rows length")
                type_name = types[name]
                write_binary_str(name, out)
                write_binary_str(type_name, out)
                if revision >= defines.DBMS_MIN_REVISION_WITH_CUSTOM_SERIALIZATION:
                    write_binary_uint8(0, out)
                if not encode_column(type_name, values, out):
                    write_column(conn.context, name, type_name, list(values), out)
            stream.finalize()
            client.receive_profile_events()
            conn.send_data(RowOrientedBlock())  # an empty block ends the data
            client.receive_profile_events()
            client.receive_end_of_insert_query()

    def close(self) -> None:
        self._client.disconnect()


def connect(settings: Any) -> ClickHouseClient:
    """Build the client named by ``ClickHouseSettings``: ``url`` set -> server, else embedded chDB."""
    url = getattr(settings, "url", None)
    database = getattr(settings, "database", "ccod")
    if not url:
        return ChdbClient(Path(getattr(settings, "chdb_path", "var/chdb")), database)
    parsed = urlparse(url)
    if parsed.scheme not in ("clickhouse", "tcp", "native"):
        raise ValueError(f"unsupported ClickHouse url scheme {parsed.scheme!r}; use clickhouse://host:9000/db")
    db = parsed.path.lstrip("/") or database
    return NativeClient(
        host=parsed.hostname or "127.0.0.1",
        port=parsed.port or 9000,
        database=db,
        user=unquote(parsed.username) if parsed.username else "default",
        password=unquote(parsed.password) if parsed.password else "",
    )
