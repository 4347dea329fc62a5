"""Pure-Python twin of ``records.pyx``: a state's index entries as the state folder's
records, by card bucket and key, in numpy (the readable version, and the fallback when
the extension is not built).  Same functions, same arguments, same results."""
from __future__ import annotations

import numpy as np

from txcore._fast import layout as L

CYTHON_MODULE = 0


def rec_size() -> int:
    return L.REC.itemsize


def entry_buckets(entries, cards, latest, retention, buckets, out):
    """See ``records.pyx``."""
    n = len(out)
    e = entries[:n]
    b = (cards["key_hi"][e["card"]] % np.uint64(buckets)).astype(np.int32)
    if latest != L.NO_LATEST:
        b[latest - e["day"].astype(np.int64) > retention] = -1
    out[:] = b


def bucket_positions(bucket, buckets, order, bounds):
    """See ``records.pyx``."""
    kept = np.flatnonzero((bucket >= 0) & (bucket < buckets))
    grouped = kept[np.argsort(bucket[kept], kind="stable")]
    order[:len(grouped)] = grouped
    bounds[:] = np.searchsorted(bucket[grouped], np.arange(buckets + 1))
    return len(grouped)


def sort_positions(hi, lo, src, dst):
    """See ``records.pyx``."""
    src = np.asarray(src)
    # lexsort: the last key first; stable, so equal keys stay in position order
    dst[:] = src[np.lexsort((src, lo[src], hi[src]))]


def key_order(hi, lo, bucket, buckets, order, bounds):
    """See ``records.pyx``."""
    grouped = np.empty(len(hi), np.int64)
    m = bucket_positions(bucket, buckets, grouped, bounds)
    for b in range(buckets):
        sort_positions(hi, lo, grouped[bounds[b]:bounds[b + 1]], order[bounds[b]:bounds[b + 1]])
    return m


def entry_records(entries, cards, effects, lookup, order, hi, lo, recs):
    """See ``records.pyx``."""
    e = entries[order]
    reversal = (e["flags"] & L.F_REVERSAL) != 0
    f = effects[np.where(reversal, 0, e["effect"])]
    r = recs.view(L.REC)
    r[:] = np.zeros(1, L.REC)
    hi[:], lo[:] = e["key_hi"], e["key_lo"]
    r["card_hi"], r["card_lo"] = cards["key_hi"][e["card"]], cards["key_lo"][e["card"]]
    r["day"] = e["day"]
    r["flags"] = np.where(reversal, e["flags"] & (L.F_REVERSAL | L.F_REVERSED), e["flags"])
    for name in ("fee_standard", "discount"):
        r[name] = np.where(reversal, 0, f[name])
    lookup = np.append(np.asarray(lookup, np.int32), np.int32(-1))  # [-1]: null
    for name in ("fee_rule", "waiver_rule", "discount_rule", "ruleset"):
        codes = f[name].astype(np.int64)
        r[name] = np.where(reversal | (codes < 0), -1, lookup[np.where(codes < 0, -1, codes)])
