"""Build the priced and reject record batches from an input batch and per-row outcomes.

Shared by every backend: input columns are carried by ``take``, or by
:func:`keep_rows` (the compiled engines: text copied a run of kept rows at a time) — no
per-row Python work on them; priced rows get ``ts`` as ``timestamp[us, UTC]``,
``amount`` as int64 and the output columns of docs/outputs.md; reject rows keep their
columns as read plus ``reject_reason`` and ``reject_detail``.  Input columns
named like an output column are replaced by the computed one.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from txcore._fast import compiled_or_twin
from txcore._fast.buffers import string_buffers
from txcore.timeconv import utc_micros
from txcore.vocab import PRICED_COLUMNS, REJECT_COLUMNS

_keep = compiled_or_twin("keep")

TS_TYPE = pa.timestamp("us", "UTC")
OUTPUT_FIELDS = [
    pa.field("member", pa.bool_()), pa.field("cross_bank", pa.bool_()),
    pa.field("same_city", pa.bool_()), pa.field("fee_rule", pa.string()),
    pa.field("fee_standard", pa.int64()), pa.field("fee_waived", pa.int64()),
    pa.field("fee_charged", pa.int64()), pa.field("waiver_rule", pa.string()),
    pa.field("free_slot", pa.int16()), pa.field("discount", pa.int64()),
    pa.field("discount_rule", pa.string()), pa.field("ruleset", pa.string()),
]
REJECT_FIELDS = [pa.field("reject_reason", pa.string()), pa.field("reject_detail", pa.string())]
assert tuple(f.name for f in OUTPUT_FIELDS) == PRICED_COLUMNS


def priced_schema(input_schema: pa.Schema) -> pa.Schema:
    fields = []
    for f in input_schema:
        if f.name in PRICED_COLUMNS or f.name in REJECT_COLUMNS:
            continue
        if f.name == "ts":
            f = pa.field("ts", TS_TYPE)
        elif f.name == "amount":
            f = pa.field("amount", pa.int64())
        fields.append(f)
    return pa.schema(fields + OUTPUT_FIELDS)


def rejects_schema(input_schema: pa.Schema) -> pa.Schema:
    fields = [f for f in input_schema if f.name not in REJECT_COLUMNS]
    return pa.schema(fields + REJECT_FIELDS)


def kept_runs(keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, ends)`` (int64): the runs ``[start, end)`` of consecutive rows where
    ``keep`` (one bool per row) is True, in order."""
    edges = np.diff(np.asarray(keep, np.int8), prepend=np.int8(0), append=np.int8(0))
    return (np.flatnonzero(edges == 1).astype(np.int64),
            np.flatnonzero(edges == -1).astype(np.int64))


def keep_rows(batch: pa.RecordBatch, keep: np.ndarray) -> pa.RecordBatch:
    """``batch.filter(keep)`` (``keep``: one bool per row), its text columns copied a run
    of consecutive kept rows at a time (:mod:`txcore._fast.keep`: a run's bytes in one
    copy, where Arrow's filter takes each value on its own); other columns by Arrow."""
    keep = np.asarray(keep, bool)
    kept = int(np.count_nonzero(keep))
    if kept == batch.num_rows:
        return batch
    starts, ends = kept_runs(keep)
    mask = pa.array(keep)
    columns = [keep_text(col, starts, ends, kept) if col.type == pa.string()
               else col.filter(mask) for col in batch.columns]
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


def keep_text(col: pa.Array, starts: np.ndarray, ends: np.ndarray, kept: int,
              module=None) -> pa.Array:
    """The ``kept`` rows of a ``string`` column in the runs ``[starts, ends)``
    (:func:`kept_runs`), copied by ``module`` (default: ``_fast.keep`` or its twin)."""
    module = module or _keep
    offsets, data, bits, offset = string_buffers(col)
    out_offsets = np.empty(kept + 1, np.int32)
    out_data = np.empty(module.kept_bytes(offsets, len(data), offset, starts, ends), np.uint8)
    module.keep_strings(offsets, data, offset, starts, ends, out_offsets, out_data)
    validity, nulls = None, 0
    if len(bits):  # some value is null
        out_bits = np.empty((kept + 7) // 8, np.uint8)
        nulls = kept - module.keep_bits(bits, offset, starts, ends, out_bits)
        validity = pa.py_buffer(out_bits)
    return pa.Array.from_buffers(pa.string(), kept, [validity, pa.py_buffer(out_offsets),
                                                     pa.py_buffer(out_data)], nulls)


def build_outputs(batch: pa.RecordBatch, outcomes: list) -> tuple[pa.RecordBatch, pa.RecordBatch]:
    """``outcomes[i]`` is a ``Priced`` or a ``Reject`` for row ``i`` of ``batch``."""
    priced_idx, priced, reject_idx, rejects = [], [], [], []
    for i, o in enumerate(outcomes):
        if hasattr(o, "reason"):
            reject_idx.append(i)
            rejects.append(o)
        else:
            priced_idx.append(i)
            priced.append(o)
    p_schema = priced_schema(batch.schema)
    carried = batch.take(pa.array(priced_idx, pa.int64()))
    columns = []
    for f in p_schema:
        if f.name == "ts":
            columns.append(pa.array([utc_micros(o.ts) for o in priced], pa.int64()).cast(TS_TYPE))
        elif f.name == "amount":
            columns.append(pa.array([o.amount for o in priced], pa.int64()))
        elif f.name in PRICED_COLUMNS:
            columns.append(pa.array([getattr(o, f.name) for o in priced], f.type))
        else:
            columns.append(carried.column(f.name))
    priced_batch = pa.RecordBatch.from_arrays(columns, schema=p_schema)

    return priced_batch, reject_batch(batch, reject_idx, rejects)


def reject_batch(batch: pa.RecordBatch, rows, rejects: list) -> pa.RecordBatch:
    """The reject file's batch: rows ``rows`` of ``batch`` with their columns as read,
    plus ``reject_reason`` and ``reject_detail`` of ``rejects`` (one per row)."""
    schema = rejects_schema(batch.schema)
    kept = batch.take(pa.array(rows, pa.int64()))
    columns = [kept.column(f.name) for f in schema if f.name not in REJECT_COLUMNS]
    columns += [pa.array([r.reason for r in rejects], pa.string()),
                pa.array([r.detail for r in rejects], pa.string())]
    return pa.RecordBatch.from_arrays(columns, schema=schema)
