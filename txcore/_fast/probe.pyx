"""Which of a run's txn digests a state segment holds: a merge of two sorted key lists.

Both lists are sorted by ``(hi, lo)`` and hold each key once.  One pass over both that
gallops (exponential, then binary search) over the run of ``hi`` words that cannot match,
on either side: a segment of n keys against m queries costs about n log(m / n) steps,
not n + m (a day's 2 M queries walked once per segment cost more than the segments'
own keys did).  The ``lo`` words are read only where ``hi`` is equal.  Pure-Python
twin: ``probe_py.py`` (``tests/test_segments.py`` checks the two agree with Hypothesis).
"""
from libc.stdint cimport int64_t, uint64_t

CYTHON_MODULE = 1


cdef inline Py_ssize_t _first_at_least(const uint64_t[::1] a, Py_ssize_t start, Py_ssize_t end,
                                       uint64_t key) noexcept nogil:
    """The first index in ``[start, end)`` with ``a[index] >= key`` (``end`` if none);
    ``a[start] < key`` on entry.  Exponential steps, then a binary search."""
    cdef Py_ssize_t step = 1, lo = start, hi
    while start + step < end and a[start + step] < key:
        lo = start + step
        step <<= 1
    hi = start + step if start + step < end else end
    lo += 1  # a[lo - 1] < key
    while lo < hi:
        step = lo + (hi - lo) // 2
        if a[step] < key:
            lo = step + 1
        else:
            hi = step
    return lo


def merge_match(const uint64_t[::1] seg_hi, const uint64_t[::1] seg_lo,
                const uint64_t[::1] q_hi, const uint64_t[::1] q_lo,
                int64_t[::1] seg_at, int64_t[::1] q_at) -> int:
    """Fill ``seg_at[k], q_at[k]`` with the positions of each key found in both; the count."""
    cdef Py_ssize_t i = 0, j = 0, k = 0, n = seg_hi.shape[0], m = q_hi.shape[0]
    cdef uint64_t a, b
    with nogil:
        while i < n and j < m:
            a = seg_hi[i]
            b = q_hi[j]
            if a < b:
                i = _first_at_least(seg_hi, i, n, b)
            elif a > b:
                j = _first_at_least(q_hi, j, m, a)
            elif seg_lo[i] < q_lo[j]:
                i += 1
            elif seg_lo[i] > q_lo[j]:
                j += 1
            else:
                seg_at[k] = i
                q_at[k] = j
                k += 1
                i += 1
                j += 1
    return k


def radix_match(const uint64_t[::1] seg_hi, const uint64_t[::1] seg_lo,
                const uint64_t[::1] q_hi, const uint64_t[::1] q_lo,
                const int64_t[::1] table, int shift,
                int64_t[::1] seg_at, int64_t[::1] q_at) -> int:
    """What :func:`merge_match` gives, with the queries indexed by the top bits of their
    ``hi`` word: ``table[p]`` is the first query whose ``hi >> shift`` is at least ``p``
    (:func:`radix_table`).  Each segment key jumps straight to its few candidates; the
    segment is sorted, so the table and the queries are read in order.  About 3 times
    faster than galloping on random keys (whose every comparison is a coin toss for the
    branch predictor)."""
    cdef Py_ssize_t i, j, k = 0, n = seg_hi.shape[0], m = q_hi.shape[0]
    cdef uint64_t a
    with nogil:
        for i in range(n):
            a = seg_hi[i]
            j = table[a >> shift]
            while j < m and q_hi[j] < a:
                j += 1
            while j < m and q_hi[j] == a:
                if q_lo[j] == seg_lo[i]:
                    seg_at[k] = i
                    q_at[k] = j
                    k += 1
                    break
                j += 1
    return k
