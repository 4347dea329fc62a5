"""The prepass of a run on a state: what its rows can look up, read before pricing.

A run loads from the state folder only the index entries its rows can name — the
keyed digests of every ``txn_id`` and ``orig_txn_id`` of its inputs — and the counters
of the months from the earliest local date on (docs/state.md).  Those columns are read
first, alone where the format allows (Parquet); the digests are the compiled
encoder's, so they are the ones the engine will look up.
"""
from __future__ import annotations

import copy
import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from txcore._fast import compiled_or_twin
from txcore._fast.buffers import string_buffers
from txcore.engine.encoder import text_column
from txcore.engine.validate import text_of
from txcore.errors import InputRefused
from txcore.state.store import Query


def lookup_query(sources, keyer) -> Query | None:
    """What the run's rows can look up in the state: the keyed digests of every txn_id and
    orig_txn_id, and the earliest local date, read from those columns alone before the
    run (a Parquet file's other columns are not read).  None (load the whole state) when
    an input is stdin, which can be read only once, or cannot be read here — the run
    itself then says what is wrong with it."""
    encode = compiled_or_twin("encode")
    his, los, earliest = [], [], None
    unknown_dates = False
    try:
        for source in sources:
            if source.path is None:
                return None
            if source.format == "parquet":
                pf = pq.ParquetFile(source.path)
                wanted = [c for c in ("txn_id", "orig_txn_id", "ts")
                          if c in pf.schema_arrow.names]
                batches = (b for g in range(pf.metadata.num_row_groups)
                           for b in pf.iter_batches(row_groups=[g], columns=wanted))
            else:
                # another reader of the same kind, not yet read (CSV, Arrow, Avro, ISO 8583
                # logs are read whole twice: once here, once priced)
                batches = copy.copy(source).batches()
            for batch in batches:
                for name in ("txn_id", "orig_txn_id"):
                    if name not in batch.schema.names:
                        continue
                    arr, plain = text_column(batch, name)
                    n = batch.num_rows
                    hi, lo = np.zeros(n, np.uint64), np.zeros(n, np.uint64)
                    if arr is not None:
                        length = np.full(n, -1, np.int32)
                        encode.hash_strings(*string_buffers(arr), keyer.k0, keyer.k1, hi, lo,
                                            length)
                        valid = length >= 0
                    else:  # an odd column type: each value's text, as the validator reads it
                        texts = [None if v is None else text_of(v)
                                 for v in batch.column(name).to_pylist()]
                        valid = np.array([t is not None for t in texts], bool)
                        for i, t in enumerate(texts):
                            if t is not None:
                                hi[i], lo[i] = keyer.words(t)
                    his.append(hi[valid])
                    los.append(lo[valid])
                if "ts" not in batch.schema.names or \
                        not pa.types.is_timestamp(batch.schema.field("ts").type):
                    unknown_dates = True
                    continue
                low = pc.min(batch.column("ts").cast(pa.timestamp("us"))).as_py()
                if low is not None:
                    day = low.date() - dt.timedelta(days=1)  # any zone's local date
                    earliest = day if earliest is None or day < earliest else earliest
    except (OSError, pa.ArrowException, ValueError, InputRefused, OverflowError):
        return None
    hi = np.concatenate(his) if his else np.zeros(0, np.uint64)
    lo = np.concatenate(los) if los else np.zeros(0, np.uint64)
    return Query.of(hi, lo, None if unknown_dates else earliest)
