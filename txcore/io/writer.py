"""Output writers (SPEC §5, §8): one batch at a time.

Writers write into the run's staging folder (:class:`txcore.state.store.Staging`);
``close`` flushes and fsyncs.  Nothing is visible in OUTDIR until the run
commits and the staging folder is published.
"""
from __future__ import annotations

import os
from pathlib import Path

import fastavro
import fastavro.write
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from txcore import durable

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


class BatchWriter:
    def __init__(self, path: Path, schema: pa.Schema, fmt: str):
        self.path, self.schema, self.format = Path(path), schema, fmt
        self.rows = 0
        # Arrow formats write through a native file (no Python call, no GIL, per write:
        # the writer thread of --workers runs beside the pricing); Avro through Python's
        self._fh = open(self.path, "wb") if fmt == "avro" else pa.OSFile(str(self.path), "wb")
        if fmt == "parquet":
            self._w = pq.ParquetWriter(self._fh, schema, **parquet_options(schema))
        elif fmt == "csv":
            self._w = pacsv.CSVWriter(self._fh, schema)
        elif fmt == "arrow":
            self._w = ipc.new_file(self._fh, schema)
        elif fmt == "avro":
            self._w = fastavro.write.Writer(self._fh, arrow_to_avro_schema(schema))
        else:
            raise ValueError(f"unknown output format {fmt!r}")

    def write(self, batch: pa.RecordBatch):
        if batch.num_rows == 0:
            return
        self.rows += batch.num_rows
        if self.format == "avro":
            for record in batch.to_pylist():
                self._w.write(record)
        else:
            self._w.write_batch(batch)

    def close(self):
        if self.format == "avro":
            self._w.flush()
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
        else:
            self._w.close()
            self._fh.close()
            durable.fsync_file(self.path)
        durable.step(f"output:{self.path.name}")

    def discard(self):
        """Abandon the output: close quietly (the run is already failing)."""
        if not self._fh.closed:
            try:
                if self.format != "avro":
                    self._w.close()
            except Exception:  # noqa: BLE001 - a half-written file is deleted below anyway
                pass
            self._fh.close()


def _avro_field_type(t: pa.DataType):
    if pa.types.is_boolean(t):
        base = "boolean"
    elif pa.types.is_int64(t) or pa.types.is_uint32(t):
        base = "long"
    elif pa.types.is_integer(t):
        base = "int"
    elif pa.types.is_floating(t):
        base = "double"
    elif pa.types.is_timestamp(t):
        base = {"type": "long",
                "logicalType": "timestamp-micros" if t.tz else "local-timestamp-micros"}
    elif pa.types.is_date(t):
        base = {"type": "int", "logicalType": "date"}
    elif pa.types.is_binary(t) or pa.types.is_large_binary(t):
        base = "bytes"
    else:
        base = "string"
    return ["null", base]


def arrow_to_avro_schema(schema: pa.Schema) -> dict:
    return fastavro.parse_schema({
        "type": "record", "name": "Row",
        "fields": [{"name": f.name, "type": _avro_field_type(f.type), "default": None}
                   for f in schema]})
