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


class FileDigest:
    def __init__(self):
        self._h = hashlib.sha256()

    def add(self, priced: pa.RecordBatch):
        cols = []
        for name in COLUMNS:
            col = priced.column(name)
            if name == "ts":
                col = pc.cast(col, pa.int64())
            elif name == "txn_id":
                col = pc.cast(col, pa.string())
            cols.append(col.to_pylist())
        for row in zip(*cols):
            self._h.update(json.dumps(row, separators=(",", ":"), ensure_ascii=False)
                           .encode("utf-8") + b"\n")

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def run_digest(file_digests: list[str]) -> str:
    return hashlib.sha256("".join(d + "\n" for d in file_digests).encode()).hexdigest()
