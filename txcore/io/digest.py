"""The digest of priced columns (docs/audit.md#txcore-replay): identical inputs give identical digests.

Canonical encoding, per priced row in output order: the compact JSON array

    [txn_id, ts (UTC microseconds since 1970), member, cross_bank, same_city,
     fee_rule, fee_standard, fee_waived, fee_charged, waiver_rule, free_slot,
     discount, discount_rule, ruleset]

(``json.dumps(..., separators=(",", ":"), ensure_ascii=False)``, null for null)
followed by ``\\n``, UTF-8.  A file's digest is the SHA-256 of its rows'
encodings; a run's digest is the SHA-256 of its files' hex digests, each
followed by ``\\n``, in input order — so a run split into days has the same
file digests, and the run digest of the whole is recomputed from them.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from txcore._fast import compiled_or_twin
from txcore._fast.buffers import string_buffers, validity

COLUMNS = ("txn_id", "ts", "member", "cross_bank", "same_city", "fee_rule", "fee_standard",
           "fee_waived", "fee_charged", "waiver_rule", "free_slot", "discount",
           "discount_rule", "ruleset")


def _column(col: pa.Array) -> tuple:
    """``(kind, offsets, data, values, validity, offset)`` for ``encode.digest_rows``."""
    empty8 = np.zeros(0, np.uint8)
    buffers = col.buffers()
    bits = validity(col)
    if pa.types.is_boolean(col.type):
        return 3, np.zeros(0, np.int32), np.frombuffer(buffers[1], np.uint8), \
            np.zeros(0, np.int64), bits, col.offset
    if pa.types.is_int16(col.type):
        return 2, np.zeros(0, np.int32), empty8, np.frombuffer(buffers[1], np.int16), bits, \
            col.offset
    if pa.types.is_integer(col.type) or pa.types.is_timestamp(col.type):
        col = col.cast(pa.int64()) if not pa.types.is_timestamp(col.type) else col
        buffers = col.buffers()
        return 1, np.zeros(0, np.int32), empty8, np.frombuffer(buffers[1], np.int64), bits, \
            col.offset
    offsets, data, bits, offset = string_buffers(pc.cast(col, pa.string()))
    return 0, offsets, data, np.zeros(0, np.int64), bits, offset


class FileDigest:
    def __init__(self):
        self._h = hashlib.sha256()

    def add(self, priced: pa.RecordBatch):
        """Hash the batch's rows (:func:`row_bytes`)."""
        self._h.update(row_bytes(priced))

    def add_bytes(self, rows: bytes):
        """Hash rows :func:`row_bytes` encoded elsewhere (a worker of a partitioned run)."""
        self._h.update(rows)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def row_bytes(priced: pa.RecordBatch) -> bytes:
    """The canonical encoding of the batch's rows, in one compiled pass over the Arrow
    buffers; a batch with text that needs JSON escaping is encoded by
    :func:`reference_rows`."""
    if priced.num_rows == 0:
        return b""
    rows = compiled_or_twin("encode").digest_rows(
        [_column(priced.column(name)) for name in COLUMNS], priced.num_rows)
    return rows if rows is not None else reference_rows(priced)


def reference_rows(priced: pa.RecordBatch) -> bytes:
    """The canonical encoding, row by row with :mod:`json`: what :meth:`FileDigest.add`
    must hash (tests hold the two equal)."""
    cols = []
    for name in COLUMNS:
        col = priced.column(name)
        if name == "ts":
            col = pc.cast(col, pa.int64())
        cols.append(col.to_pylist())
    return b"".join(json.dumps(row, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
                    + b"\n" for row in zip(*cols))


def run_digest(file_digests: list[str]) -> str:
    return hashlib.sha256("".join(d + "\n" for d in file_digests).encode()).hexdigest()
