"""The digest of priced columns (SPEC §7): identical inputs give identical digests.

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

COLUMNS = ("txn_id", "ts", "member", "cross_bank", "same_city", "fee_rule", "fee_standard",
           "fee_waived", "fee_charged", "waiver_rule", "free_slot", "discount",
           "discount_rule", "ruleset")


_CONTROL = {chr(c): f"\\u{c:04x}" for c in range(32)}
_CONTROL.update({"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _unquoted_json(col: pa.Array, few_values: bool) -> tuple[pa.Array, bool]:
    """``(text, quoted)``: each value's JSON text (strings escaped but not yet quoted:
    ``quoted`` says the quotes are to be added), nulls left null."""
    if pa.types.is_boolean(col.type):
        return pc.if_else(col, "true", "false"), False
    if pa.types.is_integer(col.type):
        return pc.cast(col, pa.string()), False
    text = pc.cast(col, pa.string())
    if few_values and len(text):  # rule ids: escape each distinct value once
        encoded = pc.dictionary_encode(text)
        return _escaped(encoded.dictionary).take(encoded.indices), True
    return _escaped(text), True


def _escaped(text: pa.Array) -> pa.Array:
    if pc.any(pc.match_substring_regex(text, '["\\\\\\x00-\\x1f]')).as_py():
        for old, new in (("\\", "\\\\"), ('"', '\\"'), *_CONTROL.items()):
            text = pc.replace_substring(text, old, new)
    return text


class FileDigest:
    def __init__(self):
        self._h = hashlib.sha256()

    def add(self, priced: pa.RecordBatch):
        """Hash the batch's rows: each column turned into JSON text in Arrow, the rows
        joined over the buffers in one compiled call (no per-row Python)."""
        from txcore.encoder import _buffers
        from txcore.extensions import encode
        if priced.num_rows == 0:
            return
        columns, quoted = [], []
        for name in COLUMNS:
            col = priced.column(name)
            if name == "ts":
                col = pc.cast(col, pa.int64())
            text, q = _unquoted_json(col, few_values=name != "txn_id")
            columns.append(_buffers(text))
            quoted.append(q)
        self._h.update(encode.join_rows(columns, np.array(quoted, np.uint8), priced.num_rows))

    def hexdigest(self) -> str:
        return self._h.hexdigest()


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
