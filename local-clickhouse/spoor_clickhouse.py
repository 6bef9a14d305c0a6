#!/usr/bin/env python3
"""Spoor's local ClickHouse: ClickHouse's HTTP interface served over chDB.

For tests and single-machine use only. Production points the same client code
at a real ClickHouse server. See README.md beside this file for what is
supported.

Architecture invariant: one chDB session, used under one lock. Request bodies
are read, decoded and checksum-verified *before* the lock is taken, so a slow
client never blocks other requests; per-request state (current database,
settings) is set and reset inside the lock, so nothing leaks between requests.
"""

from __future__ import annotations

import argparse
import bz2
import fcntl
import io
import json
import lzma
import os
import re
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Callable, Iterable, Iterator
from urllib.parse import parse_qsl, urlsplit

import lz4.block
import lz4.frame
import zstandard
from chdb import session as chdb_session
from clickhouse_cityhash.cityhash import CityHash128

# --- limits and timeouts -----------------------------------------------------

READ_CHUNK = 1 << 16  # bytes read from the socket at a time
SPOOL_IN_MEMORY = 32 << 20  # request data above this goes to a temp file
MAX_COMPRESSED_BLOCK = 1 << 30  # ClickHouse's DBMS_MAX_COMPRESSED_SIZE
RESPONSE_BLOCK = 1 << 20  # block size for `compress=1` responses
IDLE_TIMEOUT = 10.0  # keep-alive idle timeout (the clickhouse crate uses 2 s)
REQUEST_TIMEOUT = 600.0  # socket timeout while a request is being read/answered
SHUTDOWN_GRACE = 30.0  # how long to wait for in-flight requests on SIGTERM

# URL parameters of ClickHouse's HTTP interface that are not settings.
NOT_SETTINGS = frozenset(
    {
        "query",
        "database",
        "default_format",
        "user",
        "password",
        "quota_key",
        "query_id",
        "session_id",
        "session_timeout",
        "session_check",
        "close_session",
        "compress",
        "decompress",
        "buffer_size",
        "wait_end_of_query",
        "stacktrace",
        "role",
        "client_protocol_version",
    }
)
# Settings this server interprets itself (they only affect the HTTP layer).
HTTP_LAYER_SETTINGS = frozenset(
    {
        "enable_http_compression",
        "http_zlib_compression_level",
        "http_native_compression_disable_checksumming_on_decompress",
    }
)

# --- errors ------------------------------------------------------------------

ERROR_CODES = {
    "NOT_IMPLEMENTED": 48,
    "CANNOT_READ_ALL_DATA": 33,
    "BAD_ARGUMENTS": 36,
    "TOO_LARGE_SIZE_COMPRESSED": 39,
    "CHECKSUM_DOESNT_MATCH": 40,
    "SYNTAX_ERROR": 62,
    "UNKNOWN_COMPRESSION_METHOD": 89,
    "UNKNOWN_SETTING": 115,
    "READONLY": 164,
    "CANNOT_DECOMPRESS": 271,
    "HTTP_LENGTH_REQUIRED": 381,
    "STD_EXCEPTION": 1001,
}

# ClickHouse's exceptionCodeToHTTPStatus (src/Server/HTTP/exceptionCodeToHTTPStatus.cpp).
_BAD_REQUEST_CODES = frozenset(
    {6, 8, 15, 25, 26, 27, 36, 37, 38, 41, 44, 53, 62, 72, 117, 123, 167, 168, 223, 321, 376, 427, 441, 675, 676}
)
_NOT_FOUND_CODES = frozenset({46, 47, 50, 56, 60, 63, 73, 78, 81, 115, 152, 336, 511})
_OTHER_STATUS = {
    194: 401,
    192: 403,
    193: 403,
    497: 403,
    512: 403,
    516: 403,
    229: 413,
    48: 501,
    76: 503,
    209: 503,
    439: 503,
    381: 411,
    159: 408,
    779: 415,
}

_CODE_RE = re.compile(r"Code: (\d+)\. ")
_NESTED_RE = re.compile(r"Code: (\d+)\. DB::Exception: (Code: \1\. .*)\Z", re.S)
_WRAPPER_SUFFIX_RE = re.compile(r"\. \([A-Z0-9_]+\)(?: \(version [^()]*(?:\([^()]*\))?\))?\Z")
_VERSION_SUFFIX_RE = re.compile(r"\(version [^()]*(?:\([^()]*\))?\)\s*\Z")


class ClickHouseError(Exception):
    """An error as ClickHouse reports it: a code and `Code: N. DB::Exception: ...` text."""

    def __init__(self, code: int, text: str):
        super().__init__(text)
        self.code = code
        self.text = text

    @classmethod
    def make(cls, name: str, message: str) -> "ClickHouseError":
        code = ERROR_CODES[name]
        return cls(code, f"Code: {code}. DB::Exception: {message}. ({name})")

    @classmethod
    def from_chdb(cls, exc: BaseException) -> "ClickHouseError":
        message = str(exc)
        found = _CODE_RE.search(message)
        if not found:
            return cls.make("STD_EXCEPTION", message.rstrip(". "))
        return cls(int(found.group(1)), _unnest(message[found.start() :].strip()))

    def http_status(self) -> int:
        if self.code in _BAD_REQUEST_CODES:
            return 400
        if self.code in _NOT_FOUND_CODES:
            return 404
        return _OTHER_STATUS.get(self.code, 500)

    def body(self, version: str) -> bytes:
        text = self.text
        if not _VERSION_SUFFIX_RE.search(text):
            text += f" (version {version} (chDB))"
        return (text + "\n").encode("utf-8", "replace")


def _unnest(message: str) -> str:
    """chDB wraps some errors in copies of themselves; keep the innermost one."""
    while True:
        nested = _NESTED_RE.match(message)
        if not nested:
            return message
        message = _WRAPPER_SUFFIX_RE.sub("", nested.group(2))


class BadRequest(Exception):
    """The HTTP request itself is malformed; the connection cannot be reused."""


# --- SQL helpers -------------------------------------------------------------

_SETTING_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PARAM_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_INSERT_HEAD_RE = re.compile(rb"(\s*INSERT\s+INTO\s.*?)\s+FORMAT\s+([A-Za-z][A-Za-z0-9_]*)", re.S | re.I)
_INSERT_URL_FORMAT_RE = re.compile(r"\s*(INSERT\s+INTO\s.*?)\s+FORMAT\s+([A-Za-z][A-Za-z0-9_]*)\s*;?\s*\Z", re.S | re.I)
_INSERT_URL_VALUES_RE = re.compile(r"\s*(INSERT\s+INTO\s.*?)\s+VALUES\s*\Z", re.S | re.I)
_NOT_A_DATA_INSERT_RE = re.compile(r"\b(SELECT|VALUES|WITH)\b", re.I)
_OUTPUT_FORMAT_RE = re.compile(r"\bFORMAT\s+([A-Za-z][A-Za-z0-9_]*)\s*(?:SETTINGS\b[^;]*)?;?\s*\Z", re.S | re.I)
_SETTINGS_CLAUSE_RE = re.compile(r"SETTINGS\s+[A-Za-z_][A-Za-z0-9_]*\s*=", re.I)
_SET_RE = re.compile(r"\s*SET\s+(?!ROLE\b|DEFAULT\s+ROLE\b)(.*?)\s*;?\s*\Z", re.S | re.I)


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\0", "\\0")
    return "'" + escaped + "'"


def split_url_insert(query: str) -> tuple[str, str] | None:
    """`INSERT INTO t (a) FORMAT RowBinary` → (`INSERT INTO t (a)`, `RowBinary`).

    Used when the URL carries the INSERT and the body carries its data.
    """
    for pattern, fixed_format in ((_INSERT_URL_FORMAT_RE, None), (_INSERT_URL_VALUES_RE, "Values")):
        found = pattern.match(query)
        if found and not _NOT_A_DATA_INSERT_RE.search(found.group(1)):
            return found.group(1), fixed_format or found.group(2)
    return None


def split_body_insert(head: bytes) -> tuple[str, str, int] | None:
    """Find `INSERT ... FORMAT X` at the start of a body holding query and data.

    Returns (insert statement without FORMAT, format, offset of the data). As in
    ClickHouse, the data starts after the first newline that follows the format
    name, or after the blanks that follow it.
    """
    found = _INSERT_HEAD_RE.match(head)
    if not found:
        return None
    try:
        prefix = found.group(1).decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    if _NOT_A_DATA_INSERT_RE.search(prefix):
        return None
    offset = found.end(0)
    while head[offset : offset + 1] in (b" ", b"\t", b"\f"):
        offset += 1
    if head[offset : offset + 1] == b"\r":
        offset += 1
    if head[offset : offset + 1] == b"\n":
        offset += 1
    return prefix, found.group(2).decode("ascii"), offset


def output_format_of(sql: str, default: str) -> str:
    found = _OUTPUT_FORMAT_RE.search(sql)
    return found.group(1) if found else default


def content_type_for(fmt: str) -> str:
    lower = fmt.lower()
    if lower in ("jsoneachrow", "jsonlines", "ndjson", "jsoncompacteachrow", "jsonstringseachrow"):
        return "application/x-ndjson; charset=UTF-8"
    if lower.startswith("json"):
        return "application/json; charset=UTF-8"
    if lower.startswith(("tabseparated", "tsv")):
        return "text/tab-separated-values; charset=UTF-8"
    if lower.startswith("csv"):
        header = "present" if "withnames" in lower else "absent"
        return f"text/csv; charset=UTF-8; header={header}"
    if lower.startswith(("rowbinary", "native", "parquet", "arrow", "orc", "avro", "protobuf", "capnproto", "msgpack", "bson", "npy")):
        return "application/octet-stream"
    return "text/plain; charset=UTF-8"


def truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("1", "true", "yes", "on")


# --- ClickHouse native compressed blocks --------------------------------------

METHOD_NONE = 0x02
METHOD_LZ4 = 0x82
METHOD_ZSTD = 0x90
_BLOCK_HEADER = struct.Struct("<BII")  # method, compressed size (incl. header), raw size
_CHECKSUM_SIZE = 16
_HEADER_SIZE = _BLOCK_HEADER.size  # 9


def block_checksum(header_and_payload: bytes) -> bytes:
    """CityHash128 v1.0.2 of header+payload, laid out as ClickHouse writes it."""
    digest = CityHash128(header_and_payload)
    return struct.pack("<QQ", digest >> 64, digest & 0xFFFF_FFFF_FFFF_FFFF)


def decode_native_blocks(chunks: Iterable[bytes], verify: bool) -> Iterator[bytes]:
    """Decode a stream of ClickHouse native compressed blocks (`decompress=1`)."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= _CHECKSUM_SIZE + _HEADER_SIZE:
            method, compressed_size, raw_size = _BLOCK_HEADER.unpack_from(buffer, _CHECKSUM_SIZE)
            if compressed_size < _HEADER_SIZE or compressed_size > MAX_COMPRESSED_BLOCK or raw_size > MAX_COMPRESSED_BLOCK:
                raise ClickHouseError.make(
                    "TOO_LARGE_SIZE_COMPRESSED",
                    f"Too large size_compressed_without_checksum: {compressed_size} or size_decompressed: {raw_size}."
                    " Most likely corrupted data",
                )
            end = _CHECKSUM_SIZE + compressed_size
            if len(buffer) < end:
                break
            block = bytes(buffer[_CHECKSUM_SIZE:end])
            if verify:
                expected = bytes(buffer[:_CHECKSUM_SIZE])
                actual = block_checksum(block)
                if actual != expected:
                    raise ClickHouseError.make(
                        "CHECKSUM_DOESNT_MATCH",
                        f"Checksum doesn't match: corrupted data. Reference: {expected.hex()}. Actual: {actual.hex()}."
                        f" Size of compressed block: {compressed_size}",
                    )
            yield _decompress_block(method, block[_HEADER_SIZE:], raw_size)
            del buffer[:end]
    if buffer:
        raise ClickHouseError.make(
            "CANNOT_READ_ALL_DATA",
            f"Cannot read all data: the body ends inside a compressed block ({len(buffer)} bytes left over)",
        )


def _decompress_block(method: int, payload: bytes, raw_size: int) -> bytes:
    try:
        if method == METHOD_LZ4:
            data = lz4.block.decompress(payload, uncompressed_size=raw_size)
        elif method == METHOD_ZSTD:
            data = zstandard.ZstdDecompressor().decompress(payload, max_output_size=raw_size)
        elif method == METHOD_NONE:
            data = payload
        else:
            raise ClickHouseError.make("UNKNOWN_COMPRESSION_METHOD", f"Unknown compression method: 0x{method:02x}")
    except (lz4.block.LZ4BlockError, zstandard.ZstdError) as exc:
        raise ClickHouseError.make("CANNOT_DECOMPRESS", f"Cannot decompress block: {exc}") from exc
    if len(data) != raw_size:
        raise ClickHouseError.make(
            "CANNOT_DECOMPRESS", f"Cannot decompress block: got {len(data)} bytes, header says {raw_size}"
        )
    return data


def encode_native_blocks(data: bytes) -> bytes:
    """Encode a response as LZ4 native compressed blocks (`compress=1`)."""
    out = bytearray()
    for offset in range(0, len(data), RESPONSE_BLOCK):
        raw = data[offset : offset + RESPONSE_BLOCK]
        payload = lz4.block.compress(raw, store_size=False)
        header = _BLOCK_HEADER.pack(METHOD_LZ4, _HEADER_SIZE + len(payload), len(raw))
        out += block_checksum(header + payload) + header + payload
    return bytes(out)


# --- HTTP body encodings ------------------------------------------------------


def _decompressor_factory(encoding: str) -> Callable[[], object] | None:
    return {
        "gzip": lambda: zlib.decompressobj(zlib.MAX_WBITS | 16),
        "x-gzip": lambda: zlib.decompressobj(zlib.MAX_WBITS | 16),
        "deflate": lambda: zlib.decompressobj(zlib.MAX_WBITS),
        "zstd": lambda: zstandard.ZstdDecompressor().decompressobj(),
        "lz4": lz4.frame.LZ4FrameDecompressor,
        "xz": lzma.LZMADecompressor,
        "bz2": bz2.BZ2Decompressor,
    }.get(encoding)


def decode_content(chunks: Iterable[bytes], content_encoding: str | None) -> Iterator[bytes]:
    """Undo `Content-Encoding` (gzip, deflate, zstd, lz4, xz, bz2) as a stream."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity", "none"):
        yield from chunks
        return
    factory = _decompressor_factory(encoding)
    if factory is None:
        raise ClickHouseError.make("UNKNOWN_COMPRESSION_METHOD", f"Unknown Content-Encoding: {encoding}")
    decompressor = factory()
    pending = False  # inside a frame/member that has not ended yet
    try:
        for chunk in chunks:
            data = chunk
            while data:
                pending = True
                out = decompressor.decompress(data)
                if out:
                    yield out
                if decompressor.eof:
                    data = decompressor.unused_data
                    decompressor = factory()
                    pending = False
                else:
                    data = b""
    except (zlib.error, lzma.LZMAError, OSError, EOFError, RuntimeError, zstandard.ZstdError) as exc:
        raise ClickHouseError.make("CANNOT_DECOMPRESS", f"Cannot decode {encoding} request body: {exc}") from exc
    if pending:
        raise ClickHouseError.make("CANNOT_DECOMPRESS", f"Cannot decode {encoding} request body: it is truncated")


_RESPONSE_ENCODINGS = ("zstd", "lz4", "gzip", "deflate")


def choose_response_encoding(accept_encoding: str | None) -> str | None:
    offered = set()
    for item in (accept_encoding or "").split(","):
        name, _, params = item.strip().partition(";")
        if re.search(r"q\s*=\s*0(\.0*)?\s*\Z", params.strip()):
            continue
        offered.add(name.strip().lower())
    for name in _RESPONSE_ENCODINGS:
        if name in offered:
            return name
    return None


def encode_content(data: bytes, encoding: str, zlib_level: int) -> bytes:
    if encoding == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(data)
    if encoding == "lz4":
        return lz4.frame.compress(data)
    if encoding == "gzip":
        compressor = zlib.compressobj(zlib_level, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    else:
        compressor = zlib.compressobj(zlib_level, zlib.DEFLATED, zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


# --- reading the request body -------------------------------------------------


class RequestBody:
    """The body of one request (Content-Length or chunked), read lazily.

    `drain()` consumes whatever is left so the connection can serve the next
    request even when the body was not needed or processing stopped early.
    """

    def __init__(self, rfile: IO[bytes], headers):
        transfer_encoding = (headers.get("Transfer-Encoding") or "").lower()
        length = headers.get("Content-Length")
        if "chunked" in transfer_encoding:
            self._chunks = self._read_chunked(rfile)
        elif length is not None:
            try:
                size = int(length)
            except ValueError as exc:
                raise BadRequest(f"bad Content-Length: {length!r}") from exc
            if size < 0:
                raise BadRequest(f"bad Content-Length: {length!r}")
            self._chunks = self._read_exactly(rfile, size)
        else:
            self._chunks = iter(())
        self.received = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.received += len(chunk)
            yield chunk

    def drain(self) -> None:
        for _ in self:
            pass

    @staticmethod
    def _read_exactly(rfile: IO[bytes], size: int) -> Iterator[bytes]:
        while size:
            data = rfile.read(min(size, READ_CHUNK))
            if not data:
                raise BadRequest("connection closed before the whole body arrived")
            size -= len(data)
            yield data

    @staticmethod
    def _read_chunked(rfile: IO[bytes]) -> Iterator[bytes]:
        while True:
            line = rfile.readline(1024)
            if not line.endswith(b"\n"):
                raise BadRequest("bad chunked encoding: missing chunk size line")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise BadRequest(f"bad chunked encoding: chunk size {line!r}") from exc
            if size == 0:
                while True:  # trailer section
                    trailer = rfile.readline(8192)
                    if not trailer:
                        raise BadRequest("bad chunked encoding: connection closed in trailers")
                    if trailer in (b"\r\n", b"\n"):
                        return
            yield from RequestBody._read_exactly(rfile, size)
            if rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BadRequest("bad chunked encoding: chunk not followed by CRLF")


SPOOL_PREFIX = "body-"  # named spool files in the data dir's tmp/ (removed at start-up)


def spool(chunks: Iterable[bytes], tmp_dir: str, on_disk: bool = False) -> tuple[IO[bytes], int]:
    """Write decoded request data to memory, or to a named temp file when large or `on_disk`.

    The file is named (unlike SpooledTemporaryFile's) so that chDB can read
    INSERT data from it with `FROM INFILE`; it is deleted when closed.
    """
    spooled: IO[bytes] = _spool_file(tmp_dir) if on_disk else io.BytesIO()
    size = 0
    try:
        for chunk in chunks:
            if isinstance(spooled, io.BytesIO) and size + len(chunk) > SPOOL_IN_MEMORY:
                in_memory = spooled
                spooled = _spool_file(tmp_dir)
                spooled.write(in_memory.getvalue())
            spooled.write(chunk)
            size += len(chunk)
    except BaseException:
        spooled.close()
        raise
    spooled.seek(0)
    return spooled, size


def _spool_file(tmp_dir: str) -> IO[bytes]:
    return tempfile.NamedTemporaryFile(dir=tmp_dir, prefix=SPOOL_PREFIX)


def spool_to_file(data: IO[bytes], offset: int, tmp_dir: str) -> IO[bytes]:
    """The data from `offset` on, in a named file of its own (for `FROM INFILE`)."""
    if offset == 0 and isinstance(getattr(data, "name", None), str):
        return data
    try:
        data.seek(offset)
        rest, _ = spool(iter(lambda: data.read(1 << 20), b""), tmp_dir, on_disk=True)
    finally:
        data.close()
    return rest


def parse_multipart(body: bytes, content_type: str) -> dict[str, bytes]:
    """Fields of a multipart/form-data body (used for `query` and `param_*`)."""
    found = re.search(r'boundary="?([^";]+)"?', content_type)
    if not found:
        raise ClickHouseError.make("BAD_ARGUMENTS", "multipart/form-data request without a boundary")
    delimiter = b"--" + found.group(1).encode("latin-1")
    fields: dict[str, bytes] = {}
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        if part.startswith(b"\r\n"):
            part = part[2:]
        head, separator, value = part.partition(b"\r\n\r\n")
        if not separator:
            raise ClickHouseError.make("BAD_ARGUMENTS", "malformed multipart/form-data body")
        if value.endswith(b"\r\n"):
            value = value[:-2]
        name = re.search(rb'\bname="([^"]*)"', head)
        if not name:
            continue
        if re.search(rb'\bfilename="', head):
            raise ClickHouseError.make(
                "NOT_IMPLEMENTED", "External data (files in multipart/form-data) is not supported by the local server"
            )
        fields[name.group(1).decode("utf-8", "replace")] = value
    return fields


# --- the engine ---------------------------------------------------------------


@dataclass
class Statement:
    """One unit of work for chDB, with everything needed to run it."""

    sql: str  # the query, or the INSERT without its FORMAT clause when `data` is set
    database: str = "default"
    settings: list[tuple[str, str]] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    default_format: str = "TabSeparated"
    readonly: bool = False
    insert_format: str | None = None
    data: IO[bytes] | None = None


@dataclass
class Outcome:
    body: bytes = b""
    result_rows: int = 0
    read_rows: int = 0
    read_bytes: int = 0
    written_rows: int = 0
    written_bytes: int = 0
    elapsed_ns: int = 0

    def summary(self) -> str:
        return json.dumps(
            {
                "read_rows": str(self.read_rows),
                "read_bytes": str(self.read_bytes),
                "written_rows": str(self.written_rows),
                "written_bytes": str(self.written_bytes),
                "total_rows_to_read": str(self.read_rows),
                "result_rows": str(self.result_rows),
                "result_bytes": str(len(self.body)),
                "elapsed_ns": str(self.elapsed_ns),
            },
            separators=(",", ":"),
        )


class Engine:
    """The chDB session, used by one request at a time."""

    def __init__(self, path: str):
        self._session = chdb_session.Session(path)
        self._lock = threading.Lock()
        raw = getattr(getattr(self._session, "_conn", None), "_conn", None)
        self._classify = getattr(raw, "classify_query", None)
        info = self._session.query("SELECT version(), timezone()", "TabSeparated").bytes()
        self.version, self.timezone = info.decode().strip().split("\t")

    def close(self) -> None:
        with self._lock:
            self._session.close()

    def run(self, statement: Statement) -> Outcome:
        with self._lock:
            applied: list[str] = []
            try:
                self._session.query(f"USE {quote_identifier(statement.database)}", "TabSeparated")
                if statement.settings:
                    applied = [name for name, _ in statement.settings]
                    assignments = ", ".join(f"{name} = {quote_string(value)}" for name, value in statement.settings)
                    self._session.query(f"SET {assignments}", "TabSeparated")
                if statement.insert_format is not None:
                    return self._insert(statement)
                return self._query(statement)
            except ClickHouseError:
                raise
            except Exception as exc:  # chDB reports every engine error as an exception
                raise ClickHouseError.from_chdb(exc) from None
            finally:
                if applied:
                    self._reset(applied)

    def _reset(self, names: list[str]) -> None:
        try:
            self._session.query("SET " + ", ".join(f"{name} = DEFAULT" for name in names), "TabSeparated")
        except Exception:  # e.g. an unknown name among them: reset the others one by one
            for name in names:
                try:
                    self._session.query(f"SET {name} = DEFAULT", "TabSeparated")
                except Exception:
                    pass

    def _query(self, statement: Statement) -> Outcome:
        sql = statement.sql
        if not sql.strip():
            raise ClickHouseError.make("SYNTAX_ERROR", "Empty query")
        if self._classify is not None:
            info = self._classify(sql)
            if info.get("statement_count", 0) > 1:
                raise ClickHouseError.make(
                    "SYNTAX_ERROR", "Syntax error (Multi-statements are not allowed): send one statement per request"
                )
            query_class = getattr(info.get("query_class"), "name", "")
            if statement.readonly and query_class.startswith("MUTATING"):
                raise _readonly_error()
        set_statement = _SET_RE.match(sql)
        if set_statement:
            return self._set(set_statement.group(1))
        started = time.monotonic_ns()
        result = self._session.query(sql, statement.default_format, params=statement.params or None)
        return Outcome(
            body=result.bytes(),
            result_rows=result.rows_read(),
            read_rows=result.storage_rows_read(),
            read_bytes=result.storage_bytes_read(),
            written_rows=result.rows_written(),
            written_bytes=result.bytes_written(),
            elapsed_ns=time.monotonic_ns() - started,
        )

    def _set(self, assignments: str) -> Outcome:
        # Without a session, a SET over HTTP only lasts for its own request, as in
        # ClickHouse. Check it is valid, but do not let it change the session.
        if "param_" not in assignments:
            self._session.query(f"SELECT 1 FORMAT Null SETTINGS {assignments}", "TabSeparated")
        return Outcome()

    def _insert(self, statement: Statement) -> Outcome:
        """Run an INSERT whose data came in the request body.

        The data is in a file, which chDB reads with `INSERT ... FROM INFILE`,
        one ordinary query that raises every error and forms and commits blocks
        as ClickHouse does for an HTTP insert. Two other ways are broken in chDB
        26.9: its streaming insert (`send_insert`/`append`/`finish`) reports
        success, with rows_written, when the pipeline fails after parsing (a
        throwIf() in a DEFAULT/MATERIALIZED column, a CHECK constraint) and then
        stores nothing; and data inline after `FORMAT X` in the query text ends
        at the first blank line (the rest is run as another statement), which
        silently truncates binary formats.
        """
        assert statement.data is not None and statement.insert_format is not None
        if statement.readonly:
            raise _readonly_error()
        path = statement.data.name
        sql = insert_from_infile(statement.sql, path, statement.insert_format)
        started = time.monotonic_ns()
        try:
            result = self._session.query(sql, "TabSeparated")
        except Exception as exc:
            raise _without_infile(ClickHouseError.from_chdb(exc), path) from None
        return Outcome(
            written_rows=result.rows_written(),
            written_bytes=result.bytes_written(),
            elapsed_ns=time.monotonic_ns() - started,
        )


def insert_from_infile(insert: str, path: str, fmt: str) -> str:
    """`INSERT INTO t (a) [SETTINGS ...]` → `INSERT INTO t (a) FROM INFILE ... [SETTINGS ...] FORMAT fmt`."""
    settings = _top_level_settings(insert)
    head, tail = (insert[:settings], "\n" + insert[settings:]) if settings >= 0 else (insert, "")
    # Newlines, not blanks: a `-- comment` at the end of a part must not swallow the next.
    return f"{head}\nFROM INFILE {quote_string(path)} COMPRESSION 'none'{tail}\nFORMAT {fmt}"


def _top_level_settings(sql: str) -> int:
    """Offset of a `SETTINGS name =` clause outside quotes and parentheses, or -1."""
    depth, index, found = 0, 0, -1
    while index < len(sql):
        char = sql[index]
        if char in "'`\"":
            index += 1
            while index < len(sql) and sql[index] != char:
                index += 2 if sql[index] == "\\" else 1
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char.isalpha() or char == "_":
            end = index
            while end < len(sql) and (sql[end].isalnum() or sql[end] == "_"):
                end += 1
            if depth == 0 and _SETTINGS_CLAUSE_RE.match(sql, index):
                found = index
            index = end
            continue
        index += 1
    return found


def _without_infile(error: ClickHouseError, path: str) -> ClickHouseError:
    """Drop what `FROM INFILE` adds to an error: the spool file is not the client's business."""
    text = _unnest(error.text)
    noises = (f": (in file/uri {path})", f" (in file/uri {path})", ": While executing File: data for INSERT was parsed from file")
    for noise in noises:
        text = text.replace(noise, "")
    return ClickHouseError(error.code, text)


def _readonly_error() -> ClickHouseError:
    return ClickHouseError.make(
        "READONLY",
        "Cannot execute query in readonly mode. For queries over HTTP, method GET implies readonly."
        " You should use method POST for modifying queries",
    )


# --- HTTP --------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], engine: Engine | None, tmp_dir: str, verbose: bool):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)
        self.engine = engine
        self.tmp_dir = tmp_dir
        self.verbose = verbose
        self.display_name = socket.gethostname()
        self._inflight = 0
        self._idle = threading.Condition()

    def request_started(self) -> None:
        with self._idle:
            self._inflight += 1

    def request_finished(self) -> None:
        with self._idle:
            self._inflight -= 1
            self._idle.notify_all()

    def handle_error(self, request, client_address) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            return  # the client went away; nothing to report
        if self.verbose:
            super().handle_error(request, client_address)
        else:
            print(f"error serving {client_address[0]}: {error!r}", file=sys.stderr)

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._inflight == 0, timeout)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "spoor-local-clickhouse"
    sys_version = ""
    server: Server

    def handle_one_request(self) -> None:
        self.connection.settimeout(IDLE_TIMEOUT)
        super().handle_one_request()

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def version_string(self) -> str:
        return self.server_version

    def log_request(self, code="-", size="-") -> None:
        pass  # `_serve` writes its own line per request

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - signature from the base class
        if self.server.verbose:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _serve(self, method: str) -> None:
        self.connection.settimeout(REQUEST_TIMEOUT)
        started = time.monotonic()
        self.server.request_started()
        try:
            body = None
            try:
                body = RequestBody(self.rfile, self.headers)
                reply = self._dispatch(method, body)
            except BadRequest as exc:
                self.close_connection = True
                reply = self._error(ClickHouseError.make("BAD_ARGUMENTS", f"Bad HTTP request: {exc}"), "")
            except ClickHouseError as exc:
                reply = self._error(exc, "")
            except Exception as exc:  # a bug here must not kill the connection silently
                reply = self._error(ClickHouseError.make("STD_EXCEPTION", f"{type(exc).__name__}: {exc}"), "")
            if body is not None and not self.close_connection:
                try:
                    body.drain()
                except (BadRequest, OSError):
                    self.close_connection = True
            self._send(reply)
        finally:
            self.server.request_finished()
        if self.server.verbose:
            elapsed = (time.monotonic() - started) * 1000
            path = self.path if len(self.path) <= 200 else self.path[:200] + "..."
            sys.stderr.write(
                f'{self.address_string()} "{method} {path}" {reply.status} in={body.received if body else 0}B'
                f" out={len(reply.body)}B {elapsed:.1f}ms\n"
            )

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        else:
            self.send_header("Keep-Alive", f"timeout={int(IDLE_TIMEOUT)}")
        self.end_headers()
        if reply.body:
            self.wfile.write(reply.body)

    def _error(self, error: ClickHouseError, query_id: str) -> Reply:
        version = self.server.engine.version if self.server.engine else "unknown"
        headers = [
            ("Content-Type", "text/plain; charset=UTF-8"),
            ("X-ClickHouse-Exception-Code", str(error.code)),
            ("X-ClickHouse-Server-Display-Name", self.server.display_name),
        ]
        if query_id:
            headers.append(("X-ClickHouse-Query-Id", query_id))
        return Reply(error.http_status(), error.body(version), headers)

    def _dispatch(self, method: str, body: RequestBody) -> Reply:
        url = urlsplit(self.path)
        args = dict(parse_qsl(url.query, keep_blank_values=True))
        if url.path in ("/ping", "/replicas_status"):
            return Reply(200, b"Ok.\n", [("Content-Type", "text/plain; charset=UTF-8")])
        if method == "GET" and "query" not in args:
            if url.path == "/":
                return Reply(200, b"Ok.\n", [("Content-Type", "text/html; charset=UTF-8")])
            message = f"There is no handle {self.path}\n\nUse / or /ping for health checks.\n"
            return Reply(404, message.encode(), [("Content-Type", "text/plain; charset=UTF-8")])

        query_id = args.get("query_id") or str(uuid.uuid4())
        statement = None
        try:
            statement = self._statement(method, args, body)
            outcome = self.server.engine.run(statement)
        except ClickHouseError as exc:
            return self._error(exc, query_id)
        finally:
            if statement is not None and statement.data is not None:
                statement.data.close()
        return self._success(statement, outcome, args, query_id)

    def _statement(self, method: str, args: dict[str, str], body: RequestBody) -> Statement:
        params: dict[str, str] = {}
        settings: list[tuple[str, str]] = []
        for name, value in args.items():
            if name.startswith("param_"):
                params[name[len("param_") :]] = value
            elif name in NOT_SETTINGS or name in HTTP_LAYER_SETTINGS or not name:
                continue
            elif not _SETTING_NAME_RE.match(name):
                raise ClickHouseError.make("UNKNOWN_SETTING", f"Unknown setting '{name}'")
            else:
                settings.append((name, value))

        chunks: Iterable[bytes] = decode_content(body, self.headers.get("Content-Encoding"))
        if truthy(args.get("decompress")):
            verify = not truthy(args.get("http_native_compression_disable_checksumming_on_decompress"))
            chunks = decode_native_blocks(chunks, verify)
        url_query = args.get("query")
        content_type = self.headers.get("Content-Type") or ""
        multipart = content_type.lower().startswith("multipart/form-data")
        url_insert = split_url_insert(url_query) if url_query is not None and not multipart else None
        # The data of an INSERT in the URL goes straight to a file for `FROM INFILE`.
        data, size = spool(chunks, self.server.tmp_dir, on_disk=url_insert is not None)

        statement = Statement(
            sql="",
            database=args.get("database") or "default",
            settings=settings,
            params=params,
            default_format=args.get("default_format") or "TabSeparated",
            readonly=method == "GET",
        )
        try:
            if multipart:
                fields = parse_multipart(data.read(), content_type)
                for name, value in fields.items():
                    if name.startswith("param_"):
                        if not _PARAM_NAME_RE.match(name[len("param_") :]):
                            raise ClickHouseError.make("BAD_ARGUMENTS", f"Bad query parameter name '{name}'")
                        params[name[len("param_") :]] = value.decode("utf-8", "replace")
                body_query = fields.get("query", b"").decode("utf-8", "replace")
                statement.sql = "\n".join(part for part in (url_query, body_query) if part)
                return statement
            if url_query is not None:
                if url_insert is not None:
                    statement.sql, statement.insert_format = url_insert
                    statement.data, data = data, None
                    return statement
                rest = data.read().decode("utf-8", "replace") if size else ""
                statement.sql = url_query + "\n" + rest if rest else url_query
                return statement
            head = data.read(1 << 16)
            insert_in_body = split_body_insert(head)
            if insert_in_body is not None:
                statement.sql, statement.insert_format, offset = insert_in_body
                statement.data, data = spool_to_file(data, offset, self.server.tmp_dir), None
                return statement
            statement.sql = (head + data.read()).decode("utf-8", "replace")
            return statement
        finally:
            if data is not None:
                data.close()

    def _success(self, statement: Statement, outcome: Outcome, args: dict[str, str], query_id: str) -> Reply:
        server = self.server
        headers = [
            ("X-ClickHouse-Server-Display-Name", server.display_name),
            ("X-ClickHouse-Query-Id", query_id),
            ("X-ClickHouse-Timezone", server.engine.timezone),
        ]
        if statement.insert_format is None:
            fmt = output_format_of(statement.sql, statement.default_format)
            headers.append(("Content-Type", content_type_for(fmt)))
            headers.append(("X-ClickHouse-Format", fmt))
        else:
            headers.append(("Content-Type", "text/plain; charset=UTF-8"))
        headers.append(("X-ClickHouse-Summary", outcome.summary()))

        payload = outcome.body
        if truthy(args.get("compress")) and payload:
            payload = encode_native_blocks(payload)
        if payload and truthy(args.get("enable_http_compression", "1")):
            encoding = choose_response_encoding(self.headers.get("Accept-Encoding"))
            if encoding:
                try:
                    level = int(args.get("http_zlib_compression_level", "3"))
                except ValueError:
                    level = 3
                payload = encode_content(payload, encoding, max(1, min(level, 9)))
                headers.append(("Content-Encoding", encoding))
        return Reply(200, payload, headers)


# --- main --------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="ClickHouse-HTTP-compatible server over chDB, for tests and single-machine use."
        " Production uses a real ClickHouse server.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8123, help="port to listen on (default: 8123)")
    parser.add_argument(
        "--data-dir",
        default=os.path.join(".spoor", "clickhouse"),
        help="directory for the database files (default: .spoor/clickhouse, relative to the working directory)",
    )
    parser.add_argument("--pid-file", help="write the process id here once listening; removed on exit")
    parser.add_argument("--verbose", action="store_true", help="log one line per request to stderr")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data_dir = os.path.abspath(args.data_dir)
    tmp_dir = os.path.join(data_dir, "tmp")
    os.makedirs(os.path.join(data_dir, "chdb"), exist_ok=True)
    os.makedirs(tmp_dir, exist_ok=True)

    lock_file = open(os.path.join(data_dir, "server.lock"), "w")
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print(f"error: another local ClickHouse is already using {data_dir}", file=sys.stderr)
        return 1
    for leftover in os.listdir(tmp_dir):  # spool files of a server that did not stop cleanly
        if leftover.startswith(SPOOL_PREFIX):
            try:
                os.remove(os.path.join(tmp_dir, leftover))
            except OSError:
                pass

    try:
        server = Server((args.host, args.port), None, tmp_dir, args.verbose)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    server.engine = Engine(os.path.join(data_dir, "chdb"))

    stopping = threading.Event()

    def stop(signum, _frame) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    if args.pid_file:
        with open(args.pid_file, "w") as pid_file:
            pid_file.write(f"{os.getpid()}\n")
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"Spoor local ClickHouse (chDB, ClickHouse {server.engine.version}) listening on http://{host}:{args.port}"
        f" with data in {data_dir}",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        if not server.wait_idle(SHUTDOWN_GRACE):
            print("warning: stopping with requests still running", file=sys.stderr)
        server.engine.close()
        if args.pid_file:
            try:
                os.remove(args.pid_file)
            except FileNotFoundError:
                pass
        print("Spoor local ClickHouse stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
