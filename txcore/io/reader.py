"""Input (SPEC §2): every format as a stream of Arrow record batches.

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
from pathlib import Path
from typing import Iterator

import fastavro
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from fastavro.read import SchemaResolutionError
from fastavro.schema import SchemaParseException

from txcore.cardno import redact
from txcore.errors import InputRefused

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


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError as exc:
        raise InputRefused(f"{path.name}: cannot be read: {exc.strerror or exc}") from exc
    return h.hexdigest()


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
            self.name, self.stem = self.path.name, self.path.stem
            self.format = FORMATS.get(self.path.suffix.lower())
            if self.format is None:
                raise InputRefused(f"{self.name}: unsupported file type "
                                   f"(use {', '.join(sorted(FORMATS))} or -)")
            if not self.path.is_file():
                raise InputRefused(f"{self.name}: no such file")
        self._sha256 = None
        self._stdin_hash = None
        self.rows = 0
        self.total_rows: int | None = None  # known up front for Parquet and Arrow files
        self.schema: pa.Schema | None = None  # known once reading has started

    def expected_rows(self) -> int | None:
        """Rows a Parquet file declares, before reading it; else None."""
        if self.total_rows is not None or self.path is None:
            return self.total_rows
        try:
            if self.format == "parquet":
                return pq.ParquetFile(self.path).metadata.num_rows
        except (OSError, pa.ArrowException, ValueError):
            return None  # reading it will say what is wrong
        return None

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            if self._stdin_hash is not None:
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
                batch = self._checked(batch)
                self.rows += batch.num_rows
                yield batch
        except InputRefused:
            raise
        except (OSError, pa.ArrowException, ValueError, UnicodeDecodeError, EOFError,
                StopIteration, TypeError, KeyError, IndexError, AssertionError, OverflowError,
                MemoryError, SchemaParseException, SchemaResolutionError) as exc:
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
        views = {pa.string_view(): pa.string(), pa.binary_view(): pa.binary()}
        if any(f.type in views for f in batch.schema):
            batch = batch.cast(pa.schema([f.with_type(views.get(f.type, f.type))
                                          for f in batch.schema]))
        return batch

    def _read_parquet(self):
        pf = pq.ParquetFile(self.path)
        self.total_rows, self.schema = pf.metadata.num_rows, pf.schema_arrow
        md = pf.metadata
        expanded = sum(md.row_group(i).total_byte_size for i in range(md.num_row_groups))
        size = self.path.stat().st_size
        if expanded > MAX_UNCOMPRESSED and expanded > MAX_EXPANSION * size:
            raise InputRefused(f"{self.name}: refused as a decompression bomb: {size:,} bytes "
                               f"declare {expanded:,} bytes of data")
        declared = sum(md.row_group(i).num_rows for i in range(md.num_row_groups))
        if declared != md.num_rows:
            raise InputRefused(f"{self.name}: corrupt footer: row groups hold {declared} rows, "
                               f"the file declares {md.num_rows}")
        read = 0
        # one row group at a time: a reader over the whole file keeps the buffers of every
        # row group it has read until it ends (~28 MB per million rows here), so memory would
        # grow with the file; this way it stays at one row group's
        for group in range(md.num_row_groups):
            for b in pf.iter_batches(batch_size=self.batch_size, row_groups=[group]):
                read += b.num_rows
                yield b
        if read != md.num_rows:  # a corrupt page can end a column early without an error
            raise InputRefused(f"{self.name}: corrupt file: {read} rows read of the "
                               f"{md.num_rows} it declares")

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
        self.schema = reader.schema
        for batch in reader:
            yield batch

    def _read_avro(self):
        with open(self.path, "rb") as fh:
            # timestamps and dates are read as the integers stored: fastavro would turn each
            # into a datetime and stop the whole file at the first one outside years 1-9999,
            # which must only reject its row (bad_ts)
            writer_schema, raw = _raw_time_container(fh)
            records = fastavro.reader(raw)
            schema = self.schema = avro_to_arrow_schema(writer_schema)
            chunk = []
            for record in records:
                chunk.append(record)
                if len(chunk) >= self.batch_size:
                    yield pa.RecordBatch.from_pylist(chunk, schema=schema)
                    chunk = []
            if chunk:
                yield pa.RecordBatch.from_pylist(chunk, schema=schema)

    def _read_arrow(self):
        with pa.memory_map(str(self.path)) as source:
            reader = ipc.open_file(source)
            self.schema = reader.schema
            self.total_rows = sum(reader.get_batch(i).num_rows
                                  for i in range(reader.num_record_batches))
            for i in range(reader.num_record_batches):
                yield reader.get_batch(i)

    def _read_arrows(self):
        if self.path is None:
            self._stdin_hash = _HashingReader(sys.stdin.buffer)
            source = io.BufferedReader(self._stdin_hash)
            reader = ipc.open_stream(source)
            self.schema = reader.schema
            yield from reader
            source.read()  # hash any trailing bytes too
        else:
            with open(self.path, "rb") as fh:
                reader = ipc.open_stream(fh)
                self.schema = reader.schema
                yield from reader


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


def _avro_type(t) -> pa.DataType:
    if isinstance(t, list):  # union: nullable when it holds "null"
        rest = [x for x in t if x != "null"]
        if len(rest) == 1:
            return _avro_type(rest[0])
        return pa.string()
    if isinstance(t, dict):
        if t.get("logicalType") in _AVRO_LOGICAL:
            return _AVRO_LOGICAL[t["logicalType"]]
        return _avro_type(t.get("type"))
    if t in _AVRO_PRIMITIVES:
        return _AVRO_PRIMITIVES[t]
    raise ValueError(f"unsupported Avro field type {t!r}")


def avro_to_arrow_schema(schema: dict) -> pa.Schema:
    """Arrow schema for a flat Avro record schema (nullable unions allowed)."""
    return pa.schema([pa.field(f["name"], _avro_type(f["type"])) for f in schema["fields"]])
