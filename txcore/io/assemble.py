"""Build the priced and reject record batches from an input batch and per-row outcomes.

Shared by every backend: input columns are carried by ``take`` (no per-row
Python work on them); priced rows get ``ts`` as ``timestamp[us, UTC]``,
``amount`` as int64 and the output columns of docs/outputs.md; reject rows keep their
columns as read plus ``reject_reason`` and ``reject_detail``.  Input columns
named like an output column are replaced by the computed one.
"""
from __future__ import annotations


import pyarrow as pa

from txcore.timeconv import utc_micros
from txcore.vocab import PRICED_COLUMNS, REJECT_COLUMNS

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
