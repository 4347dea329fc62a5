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

import pyarrow as pa
import pyarrow.compute as pc

COLUMNS = ("txn_id", "ts", "member", "cross_bank", "same_city", "fee_rule", "fee_standard",
           "fee_waived", "fee_charged", "waiver_rule", "free_slot", "discount",
           "discount_rule", "ruleset")


_CONTROL = {chr(c): f"\\u{c:04x}" for c in range(32)}
_CONTROL.update({"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _json_text(col: pa.Array) -> pa.Array:
    """Each value as ``json.dumps`` writes it (``ensure_ascii=False``), null as null."""
    if pa.types.is_boolean(col.type):
        text = pc.if_else(col, "true", "false")
    elif pa.types.is_integer(col.type):
        text = pc.cast(col, pa.string())
    else:
        text = pc.cast(col, pa.string())
        for old, new in (("\\", "\\\\"), ('"', '\\"')):
            text = pc.replace_substring(text, old, new)
        if pc.any(pc.match_substring_regex(text, "[\\x00-\\x1f]")).as_py():
            for old, new in _CONTROL.items():
                text = pc.replace_substring(text, old, new)
        text = pc.binary_join_element_wise('"', text, '"', "")
    return pc.fill_null(text, "null")


class FileDigest:
    def __init__(self):
        self._h = hashlib.sha256()

    def add(self, priced: pa.RecordBatch):
        """Hash the batch's rows, encoded column by column in Arrow (no per-row Python)."""
        if priced.num_rows == 0:
            return
        cols = []
        for name in COLUMNS:
            col = priced.column(name)
            if name == "ts":
                col = pc.cast(col, pa.int64())
            cols.append(_json_text(col))
        rows = pc.binary_join_element_wise("[", pc.binary_join_element_wise(*cols, ","), "]\n",
                                           "")
        offsets = rows.buffers()[1]
        width = 8 if pa.types.is_large_string(rows.type) else 4
        first = int.from_bytes(offsets[rows.offset * width:(rows.offset + 1) * width], "little")
        last = int.from_bytes(offsets[(rows.offset + len(rows)) * width:
                                      (rows.offset + len(rows) + 1) * width], "little")
        self._h.update(memoryview(rows.buffers()[2])[first:last])

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
