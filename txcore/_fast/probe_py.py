"""Pure-Python (numpy) twin of ``probe.pyx``: same function, same answers."""
from __future__ import annotations

import numpy as np


def merge_match(seg_hi, seg_lo, q_hi, q_lo, seg_at, q_at) -> int:
    """Fill ``seg_at[k], q_at[k]`` with the positions of each key found in both; the count."""
    key = np.dtype([("hi", "<u8"), ("lo", "<u8")])
    seg = np.empty(len(seg_hi), key)
    seg["hi"], seg["lo"] = seg_hi, seg_lo
    q = np.empty(len(q_hi), key)
    q["hi"], q["lo"] = q_hi, q_lo
    pos = np.searchsorted(seg, q)  # structured arrays compare field by field
    inside = pos < len(seg)
    hit = np.zeros(len(q), bool)
    hit[inside] = seg[pos[inside]] == q[inside]
    found = np.flatnonzero(hit)
    seg_at[: len(found)] = pos[found]
    q_at[: len(found)] = found
    return len(found)


def radix_match(seg_hi, seg_lo, q_hi, q_lo, table, shift, seg_at, q_at) -> int:
    """What :func:`merge_match` gives (the table only speeds up the compiled version)."""
    return merge_match(seg_hi, seg_lo, q_hi, q_lo, seg_at, q_at)
