"""Input (docs/input.md): every format as a stream of Arrow record batches.

``open_input`` picks the reader by file extension; ``-`` is an Arrow IPC stream
on stdin.  Nothing reads a whole file at once.  Any failure to read a file as a
whole (missing, truncated, not the format it claims, invalid UTF-8, ragged CSV)
raises :class:`InputRefused` naming the file: exit 3, nothing of it committed.
CSV columns are read as text, exactly as written; validation parses them.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import sys
import tempfile
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Iterator

import fastavro
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from fastavro.read import SchemaResolutionError
from fastavro.schema import SchemaParseException

from txcore import paths
from txcore.cardno import mask_names, redact
from txcore.errors import InputRefused
from txcore.io import textdict
from txcore.vocab import INPUT_COLUMNS

FORMATS = {".parquet": "parquet", ".csv": "csv", ".avro": "avro", ".arrow": "arrow",
           ".feather": "arrow", ".arrows": "arrows", ".iso8583": "iso8583"}
DEFAULT_BATCH_SIZE = 65536
#: The largest --batch-size: 4 Mi rows.  A batch is held in memory several times over, and
#: its control totals (fees up to 2 * 10**12 fen a row) must fit 64-bit integers.
MAX_BATCH_SIZE = 1 << 22


#: A Parquet file declaring more than this many times its size in uncompressed data,
#: and more than MAX_UNCOMPRESSED bytes, is refused as a decompression bomb.
MAX_EXPANSION = 100
MAX_UNCOMPRESSED = 256 << 20


def sha256_of(path: Path, stop: threading.Event | None = None) -> str | None:
    """The file's sha256 (None if ``stop`` is set before the end: nobody needs it)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                if stop is not None and stop.is_set():
                    return None
                h.update(block)
    except OSError as exc:
        raise InputRefused(f"{mask_names(path.name)}: cannot be read: "
                           f"{exc.strerror or exc}") from exc
    return h.hexdigest()


class BackgroundHashes:
    """The sha256 of input files, made on one thread in input order while the run reads
    and prices them: the hash of a big file (0.24 s for the benchmark month's 285 MB,
    about 2.4 s for a 100 M-row day) leaves the serial start of a run with ``--workers``.
    Each source's :attr:`InputSource.sha256` waits for its own; :attr:`InputSource.hash_ready`
    says whether it is there yet.  :meth:`close` stops the thread at its next megabyte
    (a run that failed needs no hash) and waits for it."""

    def __init__(self, sources):
        self._stop = threading.Event()
        self._thread = None
        todo = [s for s in sources if s.path is not None and s._sha256 is None]
        for s in todo:
            s._hashing = Future()
        if todo:
            self._thread = threading.Thread(target=self._hash, args=(todo,),
                                            name="txcore-hash", daemon=True)
            self._thread.start()

    def _hash(self, todo):
        for s in todo:
            try:
                s._hashing.set_result(sha256_of(s.path, self._stop))
            except BaseException as exc:  # handed to whoever asks for the hash
                s._hashing.set_exception(exc)

    def close(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


class _HashingReader(io.RawIOBase):
    """Passes bytes through from ``raw`` while hashing them (for stdin)."""

    def __init__(self, raw):
        self.raw, self.hash = raw, hashlib.sha256()

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self.raw.read(len(buffer))
        self.hash.update(data)
        buffer[:len(data)] = data
        return len(data)


class InputSource:
    """One input: its name, format, sha256, row count (once read) and batches."""

    def __init__(self, spec: str, batch_size: int = DEFAULT_BATCH_SIZE):
        self.spec, self.batch_size = spec, batch_size
        if spec == "-":
            self.name, self.stem, self.format = "<stdin>", "stdin", "arrows"
            self.path = None
        else:
            self.path = Path(spec)
            # a card number in a file name is masked wherever the name is printed or stored
            # (messages, summary.json, the ledger) and in the output files' names
            self.name, self.stem = mask_names(self.path.name), mask_names(self.path.stem)
            self.format = FORMATS.get(self.path.suffix.lower())
            if self.format is None:
                raise InputRefused(f"{self.name}: unsupported file type "
                                   f"(use {', '.join(sorted(FORMATS))} or -)")
            paths.regular_file(self.path, "input", InputRefused)
        self._sha256 = None
        self._hashing: Future | None = None  # made by BackgroundHashes
        self._stdin_hash = None
        self._spool = None
        self._metadata = None
        self._as_dictionary = None  # columns read as dictionaries (window_batches)
        self.rows = 0
        self.total_rows: int | None = None  # known up front for Parquet and Arrow files
        self.schema: pa.Schema | None = None  # known once reading has started

    def expected_rows(self) -> int | None:
        """Rows a Parquet file declares, before reading it; else None.

        A footer whose row count disagrees with its row groups' is refused (exit 3)."""
        if self.total_rows is not None or self.path is None:
            return self.total_rows
        try:
            if self.format == "parquet":
                md = self._parquet_metadata()
                self._check_declared_rows(md)
                return md.num_rows
        except (OSError, pa.ArrowException, ValueError):
            return None  # reading it will say what is wrong
        return None

    def reservable_rows(self) -> int:
        """Rows worth reserving state room for before reading: what the file declares, but
        never more than its size in bytes (no real row takes less than a byte on disk), so
        a forged footer declaring 2**31 rows in a few kilobytes reserves a few kilobytes'
        worth; rows beyond that get room as they are actually read."""
        declared = self.expected_rows()
        if not declared:
            return 0
        try:
            return min(declared, self.path.stat().st_size)
        except OSError:
            return 0

    def _check_declared_rows(self, md):
        declared = sum(md.row_group(i).num_rows for i in range(md.num_row_groups))
        if declared != md.num_rows:
            raise InputRefused(f"{self.name}: corrupt footer: row groups hold {declared} rows, "
                               f"the file declares {md.num_rows}")

    @property
    def hash_known(self) -> bool:
        """Whether :attr:`sha256` can be had before reading (stdin: once spooled)."""
        return self.path is not None or self._sha256 is not None

    def spool_stdin(self):
        """Copy stdin into an unnamed temporary file, hashing it, so its sha256 is known
        before its rows are read (``--skip-committed``: a committed stdin is left out)."""
        self._spool = tempfile.TemporaryFile(prefix="txcore-stdin-")
        h = hashlib.sha256()
        for block in iter(lambda: sys.stdin.buffer.read(1 << 20), b""):
            h.update(block)
            self._spool.write(block)
        self._spool.seek(0)
        self._sha256 = h.hexdigest()

    @property
    def hash_ready(self) -> bool:
        """Whether :attr:`sha256` is known without waiting (a file being hashed by
        :class:`BackgroundHashes`: once that is done; stdin: once read)."""
        if self._hashing is not None:
            return self._hashing.done()
        return self.hash_known

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            if self._hashing is not None:
                # raises what hashing raised; a hash stopped by close() is made here
                self._sha256 = self._hashing.result() or sha256_of(self.path)
            elif self._stdin_hash is not None:
                self._sha256 = self._stdin_hash.hash.hexdigest()
            else:
                self._sha256 = sha256_of(self.path)
        return self._sha256

    # the runner's hooks (an ``.iso8583`` source, txcore.io.iso8583.IsoSource, has its own)
    def output_schemas(self) -> tuple[pa.Schema, pa.Schema]:
        """The priced and reject schemas, from the input's (for an input without rows)."""
        from txcore.io.assemble import priced_schema, rejects_schema
        return priced_schema(self.schema), rejects_schema(self.schema)

    def priceable(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The rows of ``batch`` that reach the pricing engine: all of them."""
        return batch

    def price(self, engine, batch: pa.RecordBatch):
        """``(priced, rejects)`` for one batch."""
        return engine.price_batch(batch)

    def refuse(self, exc: Exception) -> InputRefused:
        return InputRefused(f"{self.name}: cannot be read as {self.format}: {redact(str(exc))}")

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Stream the record batches, checked; counts rows; raises :class:`InputRefused`."""
        try:
            for batch in getattr(self, f"_read_{self.format}")():
                if self.format != "parquet":  # window_batches checks its own
                    batch = self._checked(batch)
                self.rows += batch.num_rows
                yield batch
        except InputRefused:
            raise
        except (OSError, pa.ArrowException, ValueError, UnicodeDecodeError, EOFError,
                StopIteration, TypeError, KeyError, IndexError, AssertionError, OverflowError,
                MemoryError, SchemaParseException, SchemaResolutionError, csv.Error) as exc:
            raise self.refuse(exc) from exc

    def _checked(self, batch):
        """Refuse what would crash or mislead later: corrupt buffers (Arrow data is not
        validated on read), undecodable names or zones, repeated column names; view
        types are cast to plain strings, which every kernel takes."""
        if self.format in ("parquet", "arrow", "arrows"):
            batch.validate(full=True)
        names = batch.schema.names  # raises UnicodeDecodeError on a non-UTF-8 name
        for f in batch.schema:
            if pa.types.is_timestamp(f.type):
                _ = f.type.tz  # likewise for a zone name
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InputRefused(f"{self.name}: duplicate column names {dupes}")
        schema = self.normalised(batch.schema)
        if schema != batch.schema:
            try:
                batch = batch.cast(schema)
            except pa.ArrowInvalid as exc:
                changed = [f.name for f, g in zip(schema, batch.schema) if f.type != g.type]
                raise InputRefused(f"{self.name}: column(s) {changed} cannot be read as "
                                   f"text: {redact(str(exc))}") from exc
        return batch

    def normalised(self, schema: pa.Schema) -> pa.Schema:
        """The schema batches are handed on with: view types as plain strings and binaries
        (every kernel takes those); the transaction's own columns (``txn_id``, ``amount``,
        ...) of type uint64 as their decimal text (a value past int64 would overflow the
        encoders; text is checked like any text column) and of a binary type as text
        (bytes that are not UTF-8 refuse the file); any dictionary of nulls as null.  A transaction column of a type no check reads (struct, list, map, union,
        interval, ...) refuses the file, naming the column: exit 3."""
        views = {pa.string_view(): pa.string(), pa.binary_view(): pa.binary()}
        fields = []
        for f in schema:
            t = views.get(f.type, f.type)
            if pa.types.is_dictionary(t) and pa.types.is_null(t.value_type):
                t = pa.null()  # all null whatever the indices; Parquet cannot write it
            if f.name in INPUT_COLUMNS:
                if pa.types.is_uint64(t):
                    t = pa.string()
                elif pa.types.is_binary(t) or pa.types.is_large_binary(t):
                    t = pa.string()  # e.g. Parquet strings without the UTF8 annotation
                value = t.value_type if pa.types.is_dictionary(t) else t
                if not _readable_scalar(value):
                    raise InputRefused(f"{self.name}: column {f.name!r} has type {f.type}, "
                                       f"which txcore does not read (text, integer, "
                                       f"timestamp or date)")
            fields.append(f.with_type(t))
        return pa.schema(fields, metadata=schema.metadata)

    def _parquet_metadata(self):
        """The footer, parsed once (a footer of 8,000 row groups takes 0.7 s to parse)."""
        if self._metadata is None:
            self._metadata = pq.read_metadata(self.path)
        return self._metadata

    def parquet_windows(self) -> list[list[int]]:
        """The row groups of a Parquet input, cut into the windows it is read by (each
        a batch or more of rows); the footer checked first (exit 3 when it lies)."""
        try:
            md = self._parquet_metadata()
            self.total_rows = md.num_rows
            self.schema = self.normalised(pq.ParquetFile(self.path, metadata=md).schema_arrow)
            expanded = sum(md.row_group(i).total_byte_size for i in range(md.num_row_groups))
            size = self.path.stat().st_size
            if expanded > MAX_UNCOMPRESSED and expanded > MAX_EXPANSION * size:
                raise InputRefused(f"{self.name}: refused as a decompression bomb: {size:,} "
                                   f"bytes declare {expanded:,} bytes of data")
            self._check_declared_rows(md)
            # a window of row groups at a time: a reader over the whole file keeps the
            # buffers of every row group it has read until it ends (~28 MB per million rows
            # here), so memory would grow with the file; a group of --batch-size rows or
            # more is a window of its own (memory stays at one row group's), and smaller
            # groups are read together until they hold --batch-size rows, so that 8,000
            # one-row groups make one batch, not 8,000 (each batch costs the kernel call,
            # the writers and a row group of output)
            return list(_windows([md.row_group(i).num_rows for i in range(md.num_row_groups)],
                                 self.batch_size))
        except InputRefused:
            raise
        except (OSError, pa.ArrowException, ValueError) as exc:
            raise self.refuse(exc) from exc

    def window_ends(self) -> set[int]:
        """The input rows read when each window of a Parquet input ends (a priced file's
        row groups never span two: a chunk of a partitioned run writes its own, and one
        process writes the same, docs/parallel.md); empty for other inputs."""
        if self.format != "parquet" or self.path is None:
            return set()
        windows = self.parquet_windows()  # a footer that cannot be read refuses the input
        md, ends, rows = self._parquet_metadata(), set(), 0
        for window in windows:
            rows += sum(md.row_group(g).num_rows for g in window)
            ends.add(rows)
        return ends

    def window_batches(self, window: list[int]) -> Iterator[pa.RecordBatch]:
        """The checked batches of one window of a Parquet input (:meth:`parquet_windows`),
        as :meth:`batches` gives them; a window that yields fewer rows than its row groups
        declare is refused (a corrupt page can end a column early without an error)."""
        try:
            md = self._parquet_metadata()
            # low-cardinality text read as dictionaries, marked as text (io.textdict)
            if self._as_dictionary is None:
                self._as_dictionary = textdict.read_as_dictionary(
                    pq.ParquetFile(self.path, metadata=md).schema_arrow)
            as_dictionary = self._as_dictionary
            pf = pq.ParquetFile(self.path, metadata=md, read_dictionary=as_dictionary)
            declared = sum(pf.metadata.row_group(g).num_rows for g in window)
            read, schema = 0, None
            for b in pf.iter_batches(batch_size=self.batch_size, row_groups=window):
                read += b.num_rows
                b = self._checked(b)
                if as_dictionary:
                    if schema is None or not b.schema.equals(schema):
                        schema = textdict.marked(b.schema, as_dictionary)
                    b = pa.RecordBatch.from_arrays(b.columns, schema=schema)
                yield b
            if read != declared:
                raise InputRefused(f"{self.name}: corrupt file: {read} rows read of the "
                                   f"{declared} it declares for row groups "
                                   f"{window[0]}..{window[-1]}")
        except InputRefused:
            raise
        except (OSError, pa.ArrowException, ValueError, UnicodeDecodeError, TypeError,
                KeyError, IndexError, OverflowError, MemoryError) as exc:
            raise self.refuse(exc) from exc

    def _read_parquet(self):
        for window in self.parquet_windows():
            yield from self.window_batches(window)

    def _read_csv(self):
        with open(self.path, encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), None)
        if not header:
            raise InputRefused(f"{self.name}: empty CSV file (no header row)")
        reader = pacsv.open_csv(
            self.path,
            read_options=pacsv.ReadOptions(block_size=1 << 22),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header}, strings_can_be_null=False,
                quoted_strings_can_be_null=False))
        self.schema = self.normalised(reader.schema)
        for batch in reader:
            yield batch

    def _read_avro(self):
        with open(self.path, "rb") as fh:
            # timestamps and dates are read as the integers stored: fastavro would turn each
            # into a datetime and stop the whole file at the first one outside years 1-9999,
            # which must only reject its row (bad_ts)
            writer_schema, raw = _raw_time_container(fh)
            records = fastavro.reader(raw)
            schema, as_text = _avro_schema(writer_schema)
            self.schema = self.normalised(schema)
            chunk = []
            for record in records:
                for name in as_text:
                    record[name] = _as_text(record.get(name))
                chunk.append(record)
                if len(chunk) >= self.batch_size:
                    yield pa.RecordBatch.from_pylist(chunk, schema=schema)
                    chunk = []
            if chunk:
                yield pa.RecordBatch.from_pylist(chunk, schema=schema)

    def _read_arrow(self):
        with pa.memory_map(str(self.path)) as source:
            reader = ipc.open_file(source)
            self.schema = self.normalised(reader.schema)
            self.total_rows = sum(reader.get_batch(i).num_rows
                                  for i in range(reader.num_record_batches))
            for i in range(reader.num_record_batches):
                yield reader.get_batch(i)

    def _read_arrows(self):
        if self._spool is not None:
            reader = ipc.open_stream(self._spool)
            self.schema = self.normalised(reader.schema)
            yield from reader
        elif self.path is None:
            self._stdin_hash = _HashingReader(sys.stdin.buffer)
            source = io.BufferedReader(self._stdin_hash)
            reader = ipc.open_stream(source)
            self.schema = self.normalised(reader.schema)
            yield from reader
            source.read()  # hash any trailing bytes too
        else:
            with open(self.path, "rb") as fh:
                reader = ipc.open_stream(fh)
                self.schema = self.normalised(reader.schema)
                yield from reader


def _windows(group_rows: list[int], batch_size: int):
    """Consecutive row-group indices, cut once a window declares ``batch_size`` rows."""
    window, rows = [], 0
    for i, n in enumerate(group_rows):
        window.append(i)
        rows += n
        if rows >= batch_size:
            yield window
            window, rows = [], 0
    if window:
        yield window


def _readable_scalar(t: pa.DataType) -> bool:
    """A type the row checks read (a wrong value of it is a reject, not a crash)."""
    return (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t)
            or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_boolean(t)
            or pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_binary(t)
            or pa.types.is_large_binary(t) or pa.types.is_null(t))


_AVRO_PRIMITIVES = {
    "string": pa.string(), "long": pa.int64(), "int": pa.int32(), "boolean": pa.bool_(),
    "double": pa.float64(), "float": pa.float32(), "bytes": pa.binary(),
}
_AVRO_LOGICAL = {
    "timestamp-micros": pa.timestamp("us", "UTC"), "timestamp-millis": pa.timestamp("ms", "UTC"),
    "local-timestamp-micros": pa.timestamp("us"), "local-timestamp-millis": pa.timestamp("ms"),
    "date": pa.date32(),
}


def _varint(fh) -> int:
    shift = result = 0
    while True:
        byte = fh.read(1)
        if not byte:
            raise EOFError("truncated Avro header")
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return (result >> 1) ^ -(result & 1)  # zigzag
        shift += 7
        if shift > 63:
            raise ValueError("corrupt Avro header: a length longer than 64 bits")


def _put_varint(value: int) -> bytes:
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class _Chained(io.RawIOBase):
    """``head`` bytes, then the rest of ``fh``."""

    def __init__(self, head: bytes, fh):
        self.head, self.fh = head, fh

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n], self.head = self.head[:n], self.head[n:]
            return n
        data = self.fh.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def _raw_time_container(fh):
    """``(writer schema, stream)``: the Avro container ``fh`` with its header's schema
    rewritten without the time logical types, so that fastavro yields the stored integers
    (the data blocks do not depend on the schema's text, only on its types)."""
    if fh.read(4) != b"Obj\x01":
        raise ValueError("not an Avro object container file")
    meta = {}
    while (count := _varint(fh)) != 0:
        if count < 0:
            _varint(fh)  # the block's size in bytes
            count = -count
        for _ in range(count):
            key = fh.read(_varint(fh)).decode("utf-8")
            meta[key] = fh.read(_varint(fh))
    sync = fh.read(16)
    writer_schema = json.loads(meta["avro.schema"])
    meta["avro.schema"] = json.dumps(_raw_time(writer_schema)).encode("utf-8")
    head = bytearray(b"Obj\x01" + _put_varint(len(meta)))
    for key, value in meta.items():
        k = key.encode("utf-8")
        head += _put_varint(len(k)) + k + _put_varint(len(value)) + value
    head += _put_varint(0) + sync
    return writer_schema, io.BufferedReader(_Chained(bytes(head), fh))


def _raw_time(schema):
    """``schema`` with the time logical types dropped (read as their stored integers)."""
    if isinstance(schema, list):
        return [_raw_time(s) for s in schema]
    if isinstance(schema, dict):
        if schema.get("logicalType") in _AVRO_LOGICAL:
            return {k: v for k, v in schema.items() if k != "logicalType"}
        return {k: _raw_time(v) if k in ("type", "fields", "items", "values") else v
                for k, v in schema.items()}
    return schema


#: Avro types a multi-type union may mix: read as their text (``["null","long","string"]``
#: holding 1200 and "1200" reads "1200" both times; the row checks parse text).
_AVRO_TEXT_LIKE = {"string", "long", "int", "enum"}


class _AvroTypes:
    """Arrow types for an Avro schema, keeping the named types (records, enums, fixed)
    a later field may refer to by name."""

    def __init__(self):
        self.named: dict[str, pa.DataType] = {}

    def of(self, t, where: str) -> tuple[pa.DataType, bool]:
        """``(arrow type, as_text)``: ``as_text`` for a union of text-like types."""
        if isinstance(t, list):  # union: nullable when it holds "null"
            rest = [x for x in t if x != "null"]
            if len(rest) == 1:
                return self.of(rest[0], where)
            kinds = {x.get("type") if isinstance(x, dict) else
                     ("enum" if isinstance(self.named.get(x), _Enum) else x) for x in rest}
            if kinds <= _AVRO_TEXT_LIKE:
                return pa.string(), True
            raise ValueError(f"column {where!r}: Avro union {t!r} mixes types txcore cannot "
                             f"read as one column (it reads unions of "
                             f"{', '.join(sorted(_AVRO_TEXT_LIKE))} as text)")
        if isinstance(t, str):
            if t in _AVRO_PRIMITIVES:
                return _AVRO_PRIMITIVES[t], False
            if t in self.named:
                named = self.named[t]
                return (pa.string() if isinstance(named, _Enum) else named), False
            raise ValueError(f"column {where!r}: unsupported Avro type {t!r}")
        if not isinstance(t, dict):
            raise ValueError(f"column {where!r}: unsupported Avro type {t!r}")
        logical, base = t.get("logicalType"), t.get("type")
        if logical in _AVRO_LOGICAL:
            return _AVRO_LOGICAL[logical], False
        if logical == "decimal" and base in ("bytes", "fixed"):
            precision, scale = int(t.get("precision", 38)), int(t.get("scale", 0))
            decimal = pa.decimal128 if precision <= 38 else pa.decimal256
            return decimal(precision, scale), False
        if base == "enum":
            self._name(t, _Enum())
            return pa.string(), False
        if base == "fixed":
            arrow = pa.binary(int(t["size"]))
            self._name(t, arrow)
            return arrow, False
        if base == "record":
            fields = [pa.field(f["name"], self.of(f["type"], f"{where}.{f['name']}")[0])
                      for f in t.get("fields", [])]
            arrow = pa.struct(fields)
            self._name(t, arrow)
            return arrow, False
        if base == "array":
            return pa.list_(self.of(t["items"], f"{where}[]")[0]), False
        if base == "map":
            return pa.map_(pa.string(), self.of(t["values"], f"{where}{{}}")[0]), False
        return self.of(base, where)

    def _name(self, t: dict, arrow):
        name = t.get("name")
        if name:
            self.named[name] = arrow
            if t.get("namespace"):
                self.named[f"{t['namespace']}.{name}"] = arrow


class _Enum:
    """Marks a named Avro enum (read as its symbol's text)."""


def avro_to_arrow_schema(schema: dict) -> pa.Schema:
    """Arrow schema for an Avro record schema: nullable unions, text-like unions as text,
    enums as text, records as structs, arrays as lists, maps as maps."""
    return _avro_schema(schema)[0]


def _avro_schema(schema: dict) -> tuple[pa.Schema, list[str]]:
    """``(arrow schema, columns read as text)``."""
    types, fields, as_text = _AvroTypes(), [], []
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise ValueError("the Avro file's schema is not a record")
    for f in schema["fields"]:
        arrow, text = types.of(f["type"], f["name"])
        fields.append(pa.field(f["name"], arrow))
        if text:
            as_text.append(f["name"])
    return pa.schema(fields), as_text


def _as_text(value):
    return value if value is None or isinstance(value, str) else str(value)
