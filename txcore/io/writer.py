"""Output writers (docs/outputs.md, docs/cli.md): one batch at a time.

Writers write into the run's staging folder (:class:`txcore.state.store.Staging`);
``close`` flushes and fsyncs.  Nothing is visible in OUTDIR until the run
commits and the staging folder is published.
"""
from __future__ import annotations

import base64
import os
from contextlib import contextmanager
from pathlib import Path

import fastavro
import fastavro.write
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from txcore import durable
from txcore.cardno import redact
from txcore.errors import OutputRefused
from txcore.io import textdict

OUTPUT_FORMATS = ("parquet", "csv", "avro", "arrow")

#: Columns whose values are (nearly) all distinct within a row group: Parquet dictionary
#: encoding only costs time on them (it hashes every value, then gives up), and plain
#: pages compress better.  Every other column is dictionary-encoded.  On the benchmark
#: month this writes 20 % faster and 22 % smaller than dictionary-encoding everything.
DISTINCT_COLUMNS = frozenset({"txn_id", "orig_txn_id", "card_no", "ts", "amount",
                              "merchant_id"})


#: Columns that get min/max statistics: the ones a reader prunes row groups by (a time
#: range, one transaction, one card).  Statistics on every column cost 15 % of the
#: write and barely prune a low-cardinality or money column.
STATISTICS_COLUMNS = ("ts", "txn_id", "card_no")


def parquet_options(schema: pa.Schema) -> dict:
    """The ``pq.ParquetWriter`` options of every Parquet file txcore writes."""
    stats = [name for name in STATISTICS_COLUMNS if name in schema.names]
    return {"compression": "zstd",
            "use_dictionary": [f.name for f in schema if f.name not in DISTINCT_COLUMNS],
            "write_statistics": stats or False}


def open_parquet(sink, schema: pa.Schema) -> pq.ParquetWriter:
    """A Parquet writer of batches of ``schema``, with :func:`parquet_options`.  Columns
    read as dictionaries (:mod:`txcore.io.textdict`) are written as given, and the
    file's Arrow schema (its ``ARROW:schema`` footer entry, which readers restore types
    from) is the text one: the footer is the one a writer of the text schema writes."""
    text = textdict.contract(schema)
    if text is schema:
        return pq.ParquetWriter(sink, schema, **parquet_options(schema))
    writer = pq.ParquetWriter(sink, schema, store_schema=False, **parquet_options(text))
    writer.add_key_value_metadata({**(text.metadata or {}),
                                   b"ARROW:schema": base64.b64encode(
                                       text.serialize().to_pybytes())})
    return writer


#: Parquet row groups and Arrow record batches are written of at least this many rows
#: (or the whole output if smaller), whatever batches the input came in: small batches
#: (an input of tiny row groups, a reject file's few rows a batch) are held and written
#: together.  A batch this big or bigger is written as it is, with no copy.
MIN_ROW_GROUP_ROWS = 32_768


class BatchWriter:
    """One output file, written a batch at a time.

    Every column must be writable in ``fmt``, else :class:`OutputRefused` (exit 2) is
    raised here, before any row is written: the run stops and commits nothing."""

    def __init__(self, path: Path, schema: pa.Schema, fmt: str, sync: bool = True):
        """``sync``: fsync the file on :meth:`close` (a part a partitioned run stitches
        into its output needs not: :func:`txcore.io.stitch.stitch` syncs the output)."""
        # Parquet writes columns read as dictionaries as they are (``open_parquet``);
        # the other formats take them as the text they stand for (``textdict``)
        text = textdict.contract(schema)
        if fmt != "parquet":
            schema = text
        self.path, self.schema, self.format = Path(path), schema, fmt
        self.sync = sync
        self.rows = 0
        self._held, self._held_rows = [], 0
        self._prepare = ParquetPrep(schema) if fmt == "parquet" else None
        if fmt not in OUTPUT_FORMATS:
            raise ValueError(f"unknown output format {fmt!r}")
        problems = unwritable(text, fmt)
        if problems:
            raise OutputRefused(
                f"{self.path.name}: cannot be written as {fmt}: " + "; ".join(problems)
                + ("; --format parquet or arrow writes them" if fmt in ("csv", "avro")
                   else "; --format arrow writes them"))
        if fmt == "avro":
            avro_schema, self._avro_casts = avro_plan(schema)
        # Arrow formats write through a native file (no Python call, no GIL, per write:
        # the writer thread of --workers runs beside the pricing); Avro through Python's
        self._fh = open(self.path, "wb") if fmt == "avro" else pa.OSFile(str(self.path), "wb")
        if fmt == "parquet":
            self._w = open_parquet(self._fh, schema)
        elif fmt == "csv":
            self._w = pacsv.CSVWriter(self._fh, schema)
        elif fmt == "arrow":
            self._w = ipc.new_file(self._fh, schema)
        else:
            self._w = fastavro.write.Writer(self._fh, avro_schema)

    def write(self, batch: pa.RecordBatch):
        if batch.num_rows == 0:
            return
        self.rows += batch.num_rows
        if self.format != "parquet":
            batch = textdict.as_text(batch, self.schema)
        if self._prepare:
            batch = self._prepare(batch, self.path.name)
        self._refusing(self._write, batch)

    def _refusing(self, write, *args):
        with refusing(self.path.name, self.format):
            write(*args)

    def _write(self, batch: pa.RecordBatch):
        if self.format == "avro":
            for cast in self._avro_casts:
                batch = batch.cast(cast)
            for record in batch.to_pylist():
                self._w.write(record)
        elif self.format == "csv":
            self._w.write_batch(batch)
        elif batch.num_rows >= MIN_ROW_GROUP_ROWS and not self._held:
            self._w.write_batch(batch)  # the common case: a full batch, its own row group
        else:
            self._held.append(batch)
            self._held_rows += batch.num_rows
            if self._held_rows >= MIN_ROW_GROUP_ROWS:
                self._flush()

    def end_group(self):
        """Write the held batches now, as one row group (the next batch starts another)."""
        if self.format in ("parquet", "arrow"):
            self._refusing(self._flush)

    def _flush(self):
        """Write the held batches as one row group (Parquet) or record batch (Arrow)."""
        if not self._held:
            return
        table = pa.Table.from_batches(self._held, schema=self.schema)
        self._held, self._held_rows = [], 0
        if self.format == "parquet":
            self._w.write_table(table, row_group_size=table.num_rows)
        else:
            self._w.write_table(table.combine_chunks())

    def close(self):
        if self.format == "avro":
            self._w.flush()
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
        else:
            self._refusing(self._flush)
            self._w.close()
            self._fh.close()
            if self.sync:
                durable.fsync_file(self.path)
        if self.sync:
            durable.step(f"output:{self.path.name}")

    def discard(self):
        """Abandon the output: close quietly (the run is already failing)."""
        self._held = []
        if not self._fh.closed:
            try:
                if self.format != "avro":
                    self._w.close()
            except Exception:  # noqa: BLE001 - a half-written file is deleted below anyway
                pass
            self._fh.close()


@contextmanager
def refusing(file: str, fmt: str):
    """A value the format cannot hold (its type passed :func:`unwritable`) refuses the
    output (exit 2) instead of a traceback."""
    try:
        yield
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError, TypeError,
            OverflowError) as exc:
        raise OutputRefused(redact(f"{file}: a value cannot be written as {fmt}: {exc}")) \
            from exc


class ParquetPrep:
    """What a batch of ``schema`` needs before a Parquet writer takes it: nulls held in
    a dictionary moved to the validity bitmap (Parquet cannot write them; Arrow can),
    and every timestamp[s] checked to fit the milliseconds Parquet stores it in."""

    def __init__(self, schema: pa.Schema):
        self._dictionaries = [i for i, f in enumerate(schema)
                              if pa.types.is_dictionary(f.type)]
        self._seconds = [i for i, f in enumerate(schema) if pa.types.is_timestamp(f.type)
                         and f.type.unit == "s"]

    def __call__(self, batch: pa.RecordBatch, file: str) -> pa.RecordBatch:
        if self._dictionaries:
            batch = _nulls_out_of_dictionaries(batch, self._dictionaries)
        for i in self._seconds:
            _check_seconds(batch.column(i), file, batch.schema.field(i).name)
        return batch


_MS_LIMIT = (2**63 - 1) // 1000


def _check_seconds(col: pa.Array, file: str, name: str):
    """A timestamp[s] beyond what milliseconds hold (years past +-292 million) refuses the
    output (exit 2): Parquet would have to change the value to store it."""
    if col.null_count == len(col):
        return
    bounds = pc.min_max(col.cast(pa.int64()))
    if bounds["min"].as_py() < -_MS_LIMIT or bounds["max"].as_py() > _MS_LIMIT:
        raise OutputRefused(f"{file}: column {name!r} holds a timestamp[s] beyond what "
                            f"Parquet's milliseconds hold; --format arrow writes it as read")


def _nulls_out_of_dictionaries(batch: pa.RecordBatch, columns: list[int]) -> pa.RecordBatch:
    for i in columns:
        col = batch.column(i)
        if col.dictionary.null_count:
            encoded = pc.dictionary_encode(col.dictionary_decode())
            batch = batch.set_column(i, batch.schema.field(i), encoded.cast(col.type))
    return batch


# ------------------------------------------------------------------ what each format takes
def unwritable(schema: pa.Schema, fmt: str) -> list[str]:
    """``"column 'x' (type T): why"`` for every column of ``schema`` that ``fmt`` cannot
    hold.  Arrow writes every Arrow type; Parquet and CSV are asked (a one-row probe
    through the real writer, per column type, cached); Avro by :func:`avro_plan`."""
    problems = []
    for f in schema:
        why = _unwritable_type(f.type, fmt) if fmt != "avro" else _avro_problem(f)
        if why:
            problems.append(f"column {f.name!r} (type {f.type}): {why}")
    return problems


_probed: dict = {}


def _unwritable_type(t: pa.DataType, fmt: str) -> str | None:
    if fmt == "arrow":
        return None
    value = t.value_type if pa.types.is_dictionary(t) else t
    if fmt == "csv" and (pa.types.is_binary(value) or pa.types.is_large_binary(value)
                         or pa.types.is_fixed_size_binary(value)
                         or pa.types.is_binary_view(value)):
        return "csv holds text, and bytes need not be UTF-8"
    key = (str(t), fmt)
    if key not in _probed:
        batch = pa.RecordBatch.from_arrays([pa.nulls(1, t)], names=["c"])
        sink = pa.BufferOutputStream()
        try:
            if fmt == "parquet":
                with pq.ParquetWriter(sink, batch.schema) as w:
                    w.write_batch(batch)
            else:
                with pacsv.CSVWriter(sink, batch.schema) as w:
                    w.write_batch(batch)
            _probed[key] = None
        except (pa.ArrowException, ValueError, TypeError) as exc:
            _probed[key] = f"{fmt} does not hold this type ({str(exc).splitlines()[0]})"
    return _probed[key]


def _avro_problem(f: pa.Field) -> str | None:
    try:
        avro_plan(pa.schema([f]))
    except _NoAvro as exc:
        return str(exc)
    return None


class _NoAvro(ValueError):
    pass


def avro_plan(schema: pa.Schema) -> tuple[dict, list[pa.Schema]]:
    """``(avro_schema, casts)``: the Avro schema of an output, and the Arrow schemas its
    batches are cast to in turn, so that ``to_pylist`` yields what fastavro writes.

    Every field is a union with null.  Integers up to 32 bits are ``int``, int64 and
    uint32 ``long``, uint64 a ``decimal(20, 0)`` (an Avro long cannot hold it); decimals
    are Avro decimals; timestamps ``timestamp-micros`` (``local-`` without a zone), or
    ``timestamp-nanos`` as nanoseconds; durations a ``long`` in their unit (named in
    the field's ``doc``); fixed-size binaries ``fixed``; structs records; lists arrays;
    dictionaries their values.  Maps, unions and intervals raise :class:`_NoAvro`."""
    fields, first, second = _avro_record(list(schema), iter(range(1, 1 << 30)))
    avro_schema = fastavro.parse_schema({"type": "record", "name": "Row", "fields": fields})
    return avro_schema, [pa.schema(first), pa.schema(second)]


def _avro_record(arrow_fields: list[pa.Field], names) -> tuple[list, list, list]:
    """A record's Avro fields, and its Arrow fields for the two casts."""
    fields, first, second = [], [], []
    for f in arrow_fields:
        avro, t1, t2, doc = _avro_field(f.type, names)
        entry = {"name": f.name, "type": _nullable(avro), "default": None}
        if doc:
            entry["doc"] = doc
        fields.append(entry)
        first.append(f.with_type(t1))
        second.append(f.with_type(t2))
    return fields, first, second


def arrow_to_avro_schema(schema: pa.Schema) -> dict:
    return avro_plan(schema)[0]


def _nullable(avro):
    return "null" if avro == "null" else ["null", avro]


def _avro_field(t: pa.DataType, names) -> tuple[object, pa.DataType, pa.DataType, str | None]:
    """``(avro type, arrow type to cast to, then to, doc)`` of one Arrow type."""
    avro, t1, *rest = _avro_leaf(t, names)
    t2, doc = (rest[0], rest[1]) if len(rest) == 2 else (t1, rest[0])
    return avro, t1, t2, doc


def _avro_leaf(t: pa.DataType, names):
    T = pa.types
    if T.is_dictionary(t):
        return _avro_field(t.value_type, names)
    if T.is_null(t):
        return "null", t, None
    if T.is_boolean(t):
        return "boolean", t, None
    if T.is_uint64(t):
        return {"type": "bytes", "logicalType": "decimal", "precision": 20, "scale": 0}, \
            pa.decimal128(20, 0), None
    if T.is_int64(t) or T.is_uint32(t):
        return "long", pa.int64(), None
    if T.is_integer(t):
        return "int", pa.int32(), None
    if T.is_float16(t) or T.is_float32(t):
        return "float", pa.float32(), None
    if T.is_float64(t):
        return "double", t, None
    if T.is_decimal(t):
        return {"type": "bytes", "logicalType": "decimal", "precision": t.precision,
                "scale": t.scale}, t, None
    if T.is_string(t) or T.is_large_string(t) or T.is_string_view(t):
        return "string", pa.string(), None
    if T.is_binary(t) or T.is_large_binary(t) or T.is_binary_view(t):
        return "bytes", pa.binary(), None
    if T.is_fixed_size_binary(t):
        return {"type": "fixed", "name": f"Fixed{next(names)}", "size": t.byte_width}, t, None
    if T.is_timestamp(t):
        if t.unit == "ns":
            return {"type": "long", "logicalType": "timestamp-nanos"}, pa.int64(), \
                f"nanoseconds since 1970-01-01 ({t})"
        # as microseconds, not datetimes: an instant near 9999-12-31 in a zone east of
        # UTC has no Python datetime (the field's logical type says what the long means)
        return {"type": "long", "logicalType": "timestamp-micros" if t.tz
                else "local-timestamp-micros"}, pa.timestamp("us", t.tz), pa.int64(), None
    if T.is_date(t):
        return {"type": "int", "logicalType": "date"}, pa.date32(), pa.int32(), None
    if T.is_time32(t):
        return {"type": "int", "logicalType": "time-millis"}, pa.time32("ms"), None
    if T.is_time64(t):
        if t.unit == "us":
            return {"type": "long", "logicalType": "time-micros"}, t, None
        return "long", pa.int64(), f"{t}: nanoseconds since midnight"
    if T.is_duration(t):
        return "long", pa.int64(), f"{t}: a duration in {t.unit}"
    if T.is_struct(t):
        fields, first, second = _avro_record([t.field(i) for i in range(t.num_fields)], names)
        return {"type": "record", "name": f"Record{next(names)}", "fields": fields}, \
            pa.struct(first), pa.struct(second), None
    if T.is_list(t) or T.is_large_list(t) or T.is_fixed_size_list(t) or T.is_list_view(t) \
            or T.is_large_list_view(t):
        avro, t1, t2, _ = _avro_field(t.value_type, names)
        return {"type": "array", "items": _nullable(avro)}, \
            pa.list_(t.value_field.with_type(t1)), pa.list_(t.value_field.with_type(t2)), None
    raise _NoAvro(f"Avro has no type for {t}")
