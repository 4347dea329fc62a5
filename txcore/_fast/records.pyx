"""A state's index entries as the state folder's records, by card bucket and key.

A commit writes, for each card bucket, the index entries within the window sorted by
their txn digest ``(hi, lo)`` (``txcore.state.segments``).  Three steps, each one pass
or close to it where numpy needed a dozen (a 10 M-entry commit spent ~6 s in numpy
gathers and two argsorts):

* :func:`entry_buckets` — the bucket of each entry of a compact state (its card's
  keyed digest mod P), or -1 for an entry outside the window;
* :func:`key_order` — the positions sorted by bucket, then by ``(hi, lo)``, then by
  position: a counting sort by bucket (:func:`bucket_positions`), then within a bucket
  (:func:`sort_positions`, one bucket at a time, so buckets can be sorted side by
  side) a distribution on the top bits of ``hi`` (txn digests are keyed SipHash:
  uniform, ~2 keys per bin) and an insertion sort of each bin (a heapsort if a bin is
  large, so no input is quadratic);
* :func:`entry_records` — the records of positions in that order.

Both later steps read a large state out of order, one cache miss per entry or more:
they fetch ahead (``TX_PREFETCH``) the keys of the next bins and the entries, cards and
effects of the rows to come — the gather of 10 M entries 1.6x faster.  The sort reads
its keys in place (strided views of the compact state's entries, so an entry's ``hi``
and ``lo`` share a cache line): as fast as sorting a copy of them, without the copy's
160 MB (benchmarks/README.md, "Third pass").

Pure-Python twin: ``records_py.py``; ``tests/test_records.py`` checks the two agree.
"""
from libc.stdint cimport INT64_MIN, int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

import numpy as np

from txcore._fast.kernel cimport CARD, EFFECT, ENTRY, TX_PREFETCH

CYTHON_MODULE = 1

cdef int64_t NO_LATEST = INT64_MIN  # layout.NO_LATEST
cdef uint8_t F_REVERSAL = 1, F_REVERSED = 2  # layout.F_*
cdef enum:
    AHEAD = 8  # entry_records: rows between fetching a card or effect and reading it
    AHEAD_KEYS = 32  # _sort_bucket: keys fetched ahead of the bin being sorted


cdef packed struct REC:  # layout.REC, field for field (56 bytes, as on disk)
    uint64_t card_hi
    uint64_t card_lo
    int64_t fee_standard
    int64_t discount
    int32_t day
    int32_t fee_rule
    int32_t waiver_rule
    int32_t discount_rule
    int32_t ruleset
    uint8_t flags
    uint8_t pad[3]


def rec_size() -> int:
    """``sizeof(REC)``, checked against ``layout.REC.itemsize`` at load."""
    return sizeof(REC)


def entry_buckets(const ENTRY[::1] entries, const CARD[::1] cards, int64_t latest,
                  int64_t retention, int64_t buckets, int32_t[::1] out):
    """``out[i]``: the bucket of entry ``i`` (its card's ``key_hi`` mod ``buckets``), or -1
    if ``latest - day > retention`` (unless ``latest`` is ``NO_LATEST``)."""
    cdef Py_ssize_t i, n = out.shape[0]
    with nogil:
        for i in range(n):
            if latest != NO_LATEST and latest - entries[i].day > retention:
                out[i] = -1
            else:
                out[i] = <int32_t>(cards[entries[i].card].key_hi % <uint64_t>buckets)


cdef struct KEYS:  # the sort's keys: two uint64 arrays, both ``stride`` bytes a step
    const char* hi
    const char* lo
    Py_ssize_t stride


cdef inline uint64_t _hi(const KEYS* k, int64_t a) noexcept nogil:
    return (<const uint64_t*>(k.hi + a * k.stride))[0]


cdef inline uint64_t _lo(const KEYS* k, int64_t a) noexcept nogil:
    return (<const uint64_t*>(k.lo + a * k.stride))[0]


cdef inline bint _less(const KEYS* k, int64_t a, int64_t b) noexcept nogil:
    """Whether position ``a`` sorts before ``b``: by ``(hi, lo)``, then by position."""
    if _hi(k, a) != _hi(k, b):
        return _hi(k, a) < _hi(k, b)
    if _lo(k, a) != _lo(k, b):
        return _lo(k, a) < _lo(k, b)
    return a < b


cdef inline void _insertion(const KEYS* k, int64_t* a,
                            Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef int64_t x
    for i in range(1, n):
        x = a[i]
        j = i
        while j > 0 and _less(k, x, a[j - 1]):
            a[j] = a[j - 1]
            j -= 1
        a[j] = x


cdef inline void _sift(const KEYS* k, int64_t* a, Py_ssize_t root,
                       Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t child
    cdef int64_t x
    while 2 * root + 1 < n:
        child = 2 * root + 1
        if child + 1 < n and _less(k, a[child], a[child + 1]):
            child += 1
        if not _less(k, a[root], a[child]):
            return
        x = a[root]
        a[root] = a[child]
        a[child] = x
        root = child


cdef void _heapsort(const KEYS* k, int64_t* a,
                    Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef int64_t x
    for i in range(n // 2 - 1, -1, -1):
        _sift(k, a, i, n)
    for i in range(n - 1, 0, -1):
        x = a[0]
        a[0] = a[i]
        a[i] = x
        _sift(k, a, 0, i)


cdef int _sort_bucket(const KEYS* k, const int64_t* src, int64_t* dst,
                      Py_ssize_t n) noexcept nogil:
    """``dst[:n]``: the positions ``src[:n]`` sorted (see :func:`_less`).  -1 if out of
    memory."""
    cdef int shift, bits = 0
    cdef Py_ssize_t i, start, bins, ahead
    cdef int64_t* at
    if n <= 32:
        for i in range(n):
            dst[i] = src[i]
        _insertion(k, dst, n)
        return 0
    while (<Py_ssize_t>1 << (bits + 1)) <= n // 2:  # ~2-4 keys a bin
        bits += 1
    shift = 64 - bits
    bins = <Py_ssize_t>1 << bits
    at = <int64_t*>malloc((bins + 1) * sizeof(int64_t))
    if at == NULL:
        return -1
    memset(at, 0, (bins + 1) * sizeof(int64_t))
    for i in range(n):  # distribution by the top bits, stable
        at[(_hi(k, src[i]) >> shift) + 1] += 1
    for i in range(bins):
        at[i + 1] += at[i]
    for i in range(n):
        dst[at[_hi(k, src[i]) >> shift]] = src[i]
        at[_hi(k, src[i]) >> shift] += 1
    start = 0  # at[b] is now bin b's end
    ahead = 0  # dst[:ahead]'s keys are fetched: AHEAD_KEYS positions past the bin sorted
    for i in range(bins):
        while ahead < n and ahead < at[i] + AHEAD_KEYS:
            TX_PREFETCH(k.hi + dst[ahead] * k.stride)
            ahead += 1
        if at[i] - start <= 32:
            _insertion(k, dst + start, at[i] - start)
        else:  # not uniform after all: no input makes this quadratic
            _heapsort(k, dst + start, at[i] - start)
        start = at[i]
    free(at)
    return 0


def bucket_positions(const int32_t[::1] bucket, int64_t buckets, int64_t[::1] order,
                     int64_t[::1] bounds):
    """Fill ``order[:m]`` with the positions whose ``bucket`` is in ``[0, buckets)``,
    grouped by bucket (in position order within one: a counting sort), and
    ``bounds[b]:bounds[b + 1]`` with bucket ``b``'s part; ``m`` is ``bounds[buckets]``."""
    cdef Py_ssize_t i, n = bucket.shape[0]
    cdef int64_t b
    if order.shape[0] < n or bounds.shape[0] != buckets + 1:
        raise ValueError("bucket_positions: arrays of different lengths")
    with nogil:
        for b in range(buckets + 1):
            bounds[b] = 0
        for i in range(n):
            if 0 <= bucket[i] < buckets:
                bounds[bucket[i] + 1] += 1
        for b in range(buckets):
            bounds[b + 1] += bounds[b]
        for i in range(n):  # each bucket's running end: bounds[b] moves up to bounds[b + 1]
            if 0 <= bucket[i] < buckets:
                order[bounds[bucket[i]]] = i
                bounds[bucket[i]] += 1
        for b in range(buckets - 1, 0, -1):  # back to the starts
            bounds[b] = bounds[b - 1]
        bounds[0] = 0
    return bounds[buckets]


def sort_positions(const uint64_t[:] hi, const uint64_t[:] lo, const int64_t[::1] src,
                   int64_t[::1] dst):
    """``dst``: the positions ``src`` sorted by ``(hi, lo)``, then by position.  ``hi`` and
    ``lo`` may be strided (a compact state's ``entries["key_hi"]``: no copy of the keys)."""
    cdef Py_ssize_t i, n = src.shape[0], m = hi.shape[0]
    cdef int failed = 0
    cdef KEYS keys
    if dst.shape[0] != n or lo.shape[0] != m or lo.strides[0] != hi.strides[0]:
        raise ValueError("sort_positions: arrays of different lengths or strides")
    if n == 0:
        return
    keys.hi, keys.lo, keys.stride = <const char*>&hi[0], <const char*>&lo[0], hi.strides[0]
    with nogil:
        for i in range(n):  # the sort reads hi[src[i]] unchecked
            if not 0 <= src[i] < m:
                failed = 2
                break
        if not failed:
            failed = _sort_bucket(&keys, &src[0], &dst[0], n)
    if failed == 2:
        raise ValueError("sort_positions: a position outside the keys")
    if failed:
        raise MemoryError("sort_positions")


def key_order(const uint64_t[::1] hi, const uint64_t[::1] lo, const int32_t[::1] bucket,
              int64_t buckets, int64_t[::1] order, int64_t[::1] bounds):
    """Fill ``order[:m]`` with the positions whose ``bucket`` is in ``[0, buckets)``,
    sorted by bucket, then ``(hi, lo)``, then position, and ``bounds[b]:bounds[b + 1]``
    with bucket ``b``'s part of it; ``m`` is ``bounds[buckets]``."""
    cdef int64_t b
    if lo.shape[0] != hi.shape[0] or bucket.shape[0] != hi.shape[0]:
        raise ValueError("key_order: arrays of different lengths")
    grouped = np.empty(hi.shape[0], np.int64)
    m = bucket_positions(bucket, buckets, grouped, bounds)
    for b in range(buckets):
        sort_positions(hi, lo, grouped[bounds[b]:bounds[b + 1]], order[bounds[b]:bounds[b + 1]])
    return m


def entry_records(const ENTRY[::1] entries, const CARD[::1] cards, const EFFECT[::1] effects,
                  const int32_t[::1] lookup, const int64_t[::1] order, uint64_t[::1] hi,
                  uint64_t[::1] lo, uint8_t[::1] recs):
    """``hi[k], lo[k]`` and record ``k`` (``recs`` as bytes, ``layout.REC``) of entry
    ``order[k]``: its card's digest, day, flags; for a non-reversal its effect's money
    and rule ids, the compact state's string codes mapped through ``lookup`` (-1 null);
    a reversal keeps only its reversal flags (what it did is never read back)."""
    cdef Py_ssize_t k, m = order.shape[0], n = entries.shape[0]
    cdef const ENTRY* e
    cdef const EFFECT* f
    cdef REC* r
    cdef bint outside = False
    if hi.shape[0] != m or lo.shape[0] != m or recs.shape[0] != m * <Py_ssize_t>sizeof(REC):
        raise ValueError("entry_records: arrays of different lengths")
    with nogil:
        for k in range(m):  # the gather below reads entries[order[k]] unchecked
            if not 0 <= order[k] < n:
                outside = True
                break
    if outside:
        raise ValueError("entry_records: a position outside the entries")
    with nogil:
        for k in range(m):
            # order[] jumps about a large state: each entry is fetched 2 * AHEAD rows
            # before its turn, and its card and effect AHEAD rows before, once it is in
            if k + 2 * AHEAD < m:
                TX_PREFETCH(&entries[order[k + 2 * AHEAD]])
            if k + AHEAD < m:
                e = &entries[order[k + AHEAD]]
                TX_PREFETCH(&cards[e.card])
                if not e.flags & F_REVERSAL:
                    TX_PREFETCH(&effects[e.effect])
            e = &entries[order[k]]
            r = <REC*>&recs[0] + k
            hi[k] = e.key_hi
            lo[k] = e.key_lo
            r.card_hi = cards[e.card].key_hi
            r.card_lo = cards[e.card].key_lo
            r.day = e.day
            r.pad[0] = r.pad[1] = r.pad[2] = 0
            if e.flags & F_REVERSAL:
                r.flags = e.flags & (F_REVERSAL | F_REVERSED)
                r.fee_standard = r.discount = 0
                r.fee_rule = r.waiver_rule = r.discount_rule = r.ruleset = -1
            else:
                f = &effects[e.effect]
                r.flags = e.flags
                r.fee_standard = f.fee_standard
                r.discount = f.discount
                r.fee_rule = lookup[f.fee_rule] if f.fee_rule >= 0 else -1
                r.waiver_rule = lookup[f.waiver_rule] if f.waiver_rule >= 0 else -1
                r.discount_rule = lookup[f.discount_rule] if f.discount_rule >= 0 else -1
                r.ruleset = lookup[f.ruleset] if f.ruleset >= 0 else -1
